//! Timers as data: one enum, a fixed table of deadlines, and the RFC 5191 §9 retransmission
//! parameters with the RFC 3315 style back-off.

use std::time::{Duration, Instant};

use rand_core::RngCore;

/// The timers a PANA session runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Timer {
    /// Retransmission of the outstanding request.
    Retransmit,
    /// Session lifetime: the session expires when it fires.
    Lifetime,
    /// Guard on one whole EAP authentication (initial or re-authentication).
    Auth,
    /// PaC only: start a re-authentication ahead of the lifetime.
    Reauth,
    /// PaC only: the EAP peer is slow; answer the PAR with an empty PAN and send the EAP
    /// response later in a PAR of its own (RFC 5609 EAP_RESP_TIMEOUT).
    EapResponse,
}

impl Timer {
    const ALL: [Timer; 5] = [
        Timer::Retransmit,
        Timer::Lifetime,
        Timer::Auth,
        Timer::Reauth,
        Timer::EapResponse,
    ];

    fn index(self) -> usize {
        match self {
            Timer::Retransmit => 0,
            Timer::Lifetime => 1,
            Timer::Auth => 2,
            Timer::Reauth => 3,
            Timer::EapResponse => 4,
        }
    }
}

/// A deadline per [`Timer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerTable([Option<Instant>; 5]);

impl TimerTable {
    /// Arms `timer` for `at`.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        if let Some(slot) = self.0.get_mut(timer.index()) {
            *slot = Some(at);
        }
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        if let Some(slot) = self.0.get_mut(timer.index()) {
            *slot = None;
        }
    }

    /// The deadline of `timer`.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.0.get(timer.index()).copied().flatten()
    }

    /// Disarms everything.
    pub fn clear(&mut self) {
        self.0 = [None; 5];
    }

    /// The earliest armed deadline.
    pub fn earliest(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// One timer whose deadline is at or before `now`, disarmed on the way out.
    pub fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let t = Timer::ALL
            .into_iter()
            .filter(|t| self.get(*t).is_some_and(|d| d <= now))
            .min_by_key(|t| self.get(*t))?;
        self.stop(t);
        Some(t)
    }
}

/// Retransmission parameters (RFC 5191 §9). A count of 0 means no limit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetransmitConfig {
    /// PCI_IRT: initial PCI timeout.
    pub pci_irt: Duration,
    /// PCI_MRT: maximum PCI timeout.
    pub pci_mrt: Duration,
    /// PCI_MRC: maximum PCI retransmissions (0: unlimited).
    pub pci_mrc: u32,
    /// REQ_IRT: initial request timeout.
    pub req_irt: Duration,
    /// REQ_MRT: maximum request timeout.
    pub req_mrt: Duration,
    /// REQ_MRC: maximum request retransmissions (0: unlimited).
    pub req_mrc: u32,
}

impl Default for RetransmitConfig {
    /// PCI_IRT 1 s, PCI_MRT 120 s, PCI_MRC 0, REQ_IRT 1 s, REQ_MRT 30 s, REQ_MRC 10.
    fn default() -> Self {
        Self {
            pci_irt: Duration::from_secs(1),
            pci_mrt: Duration::from_secs(120),
            pci_mrc: 0,
            req_irt: Duration::from_secs(1),
            req_mrt: Duration::from_secs(30),
            req_mrc: 10,
        }
    }
}

/// Which parameter set a request uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RetryClass {
    /// PANA-Client-Initiation.
    Pci,
    /// Every other request.
    Request,
}

impl RetransmitConfig {
    pub(crate) fn params(&self, class: RetryClass) -> (Duration, Duration, u32) {
        match class {
            RetryClass::Pci => (self.pci_irt, self.pci_mrt, self.pci_mrc),
            RetryClass::Request => (self.req_irt, self.req_mrt, self.req_mrc),
        }
    }
}

/// `d * (1 + RAND)` with RAND uniform in [-0.1, 0.1].
fn jitter(d: Duration, rng: &mut dyn RngCore) -> Duration {
    let r = f64::from(rng.next_u32()) / f64::from(u32::MAX) * 0.2 - 0.1;
    Duration::try_from_secs_f64(d.as_secs_f64() * (1.0 + r))
        .unwrap_or(d)
        .min(MAX_RT)
}

/// Upper bound on any retransmission timeout, whatever the configuration says (MRT 0 means
/// "no cap" in RFC terms; the back-off still has to stay representable).
const MAX_RT: Duration = Duration::from_secs(24 * 3600);

/// RT for the first transmission: IRT + RAND*IRT.
pub(crate) fn initial_rt(irt: Duration, rng: &mut dyn RngCore) -> Duration {
    jitter(irt, rng)
}

/// RT after a retransmission: 2*RTprev + RAND*RTprev, capped at MRT + RAND*MRT.
pub(crate) fn next_rt(prev: Duration, mrt: Duration, rng: &mut dyn RngCore) -> Duration {
    let rt = jitter(prev, rng).saturating_add(prev).min(MAX_RT);
    if !mrt.is_zero() && rt > mrt {
        jitter(mrt, rng)
    } else {
        rt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u32);
    impl RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            self.0
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.0)
        }
        fn fill_bytes(&mut self, d: &mut [u8]) {
            d.fill(0)
        }
        fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
            d.fill(0);
            Ok(())
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps_at_mrt() {
        let mut lo = Fixed(0);
        let mut hi = Fixed(u32::MAX);
        let irt = Duration::from_secs(1);
        assert_eq!(initial_rt(irt, &mut lo), Duration::from_millis(900));
        assert_eq!(initial_rt(irt, &mut hi), Duration::from_millis(1100));
        let rt = next_rt(Duration::from_secs(4), Duration::from_secs(30), &mut hi);
        assert_eq!(rt, Duration::from_millis(8400));
        let capped = next_rt(Duration::from_secs(20), Duration::from_secs(30), &mut lo);
        assert_eq!(capped, Duration::from_secs(27));
        // MRT 0 means no cap, but the timeout stays representable.
        let mut rt = Duration::from_secs(1);
        for _ in 0..200 {
            rt = next_rt(rt, Duration::ZERO, &mut hi);
        }
        assert_eq!(rt, MAX_RT);
    }

    #[test]
    fn table_hands_out_expired_timers_earliest_first() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        t.set(Timer::Lifetime, t0 + Duration::from_secs(5));
        t.set(Timer::Retransmit, t0 + Duration::from_secs(1));
        assert_eq!(t.earliest(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.take_expired(t0), None);
        let late = t0 + Duration::from_secs(9);
        assert_eq!(t.take_expired(late), Some(Timer::Retransmit));
        assert_eq!(t.take_expired(late), Some(Timer::Lifetime));
        assert_eq!(t.take_expired(late), None);
        assert_eq!(t.earliest(), None);
    }
}
