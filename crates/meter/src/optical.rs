//! The optical (ANSI C12.18 style) maintenance port: logon with a user name and password,
//! lockout after repeated failures, and an audit log of every attempt.
//!
//! C12.18 carries a 10-byte user name (Logon service) and a 20-byte password (Security
//! service); both are space-padded here the same way. Passwords are stored as
//! HMAC-SHA-256(key = 16-byte random salt, message = padded password) and compared with
//! `subtle::ConstantTimeEq`. An unknown user name costs the same hash as a known one and gets
//! the same answer as a wrong password.

use std::collections::VecDeque;

use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::tables::codec::{Reader, Writer};
use crate::tables::TableError;

/// C12.18 user-name length.
pub const USER_LEN: usize = 10;
/// C12.18 password length.
pub const PASSWORD_LEN: usize = 20;

/// Port rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpticalConfig {
    /// Consecutive failed logons that lock the port.
    pub max_failures: u8,
    /// How long the port stays locked (s).
    pub lockout_s: u32,
    /// Audit entries kept (the oldest is dropped beyond this).
    pub audit_capacity: u16,
    /// A session ends after this long without activity (s).
    pub session_timeout_s: u32,
}

impl Default for OpticalConfig {
    fn default() -> Self {
        OpticalConfig {
            max_failures: 3,
            lockout_s: 900,
            audit_capacity: 64,
            session_timeout_s: 120,
        }
    }
}

impl OpticalConfig {
    /// Sets `max_failures` and `lockout_s`.
    pub fn with_lockout(mut self, max_failures: u8, lockout_s: u32) -> Self {
        self.max_failures = max_failures.max(1);
        self.lockout_s = lockout_s;
        self
    }
    /// Sets the audit capacity.
    pub fn with_audit_capacity(mut self, n: u16) -> Self {
        self.audit_capacity = n.max(1);
        self
    }
}

/// What a user may do once logged on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AccessLevel {
    /// Read tables only.
    Reader,
    /// Read tables and run procedures.
    Operator,
    /// Everything, including changing passwords.
    Master,
}

/// Result of one logon attempt as written to the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogonOutcome {
    /// Logged on.
    Success,
    /// Unknown user name or wrong password.
    BadCredentials,
    /// This failure locked the port.
    BadCredentialsLockedOut,
    /// Refused because the port was locked (the password was not checked).
    RefusedLocked,
    /// Refused because another session is open.
    RefusedBusy,
}

/// One audit-log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Simulated time of the attempt.
    pub time: u64,
    /// User name as presented (space-padded, truncated to 10 bytes).
    pub user: [u8; USER_LEN],
    /// What happened.
    pub outcome: LogonOutcome,
}

/// Why a logon was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogonError {
    /// Unknown user or wrong password (deliberately not told apart).
    #[error("bad user name or password")]
    BadCredentials,
    /// Too many failures: the port refuses logons until `until`.
    #[error("optical port locked until {until}")]
    LockedOut {
        /// Simulated time at which the lockout ends.
        until: u64,
    },
    /// Another session is open on the port.
    #[error("a session is already open")]
    Busy,
}

/// An open session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// User name (space-padded).
    pub user: [u8; USER_LEN],
    /// Access level.
    pub level: AccessLevel,
    /// Logon time.
    pub started: u64,
}

#[derive(Clone, zeroize::ZeroizeOnDrop)]
struct Account {
    #[zeroize(skip)]
    user: [u8; USER_LEN],
    #[zeroize(skip)]
    level: AccessLevel,
    salt: [u8; 16],
    hash: [u8; 32],
}

/// The optical port of one meter.
#[derive(Clone, Default)]
pub struct OpticalPort {
    config: OpticalConfig,
    accounts: Vec<Account>,
    failures: u8,
    locked_until: Option<u64>,
    session: Option<(Session, u64)>,
    audit: VecDeque<AuditEntry>,
}

impl core::fmt::Debug for OpticalPort {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpticalPort")
            .field("config", &self.config)
            .field("accounts", &self.accounts.len())
            .field("failures", &self.failures)
            .field("locked_until", &self.locked_until)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

fn pad<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [b' '; N];
    for (o, b) in out.iter_mut().zip(s.iter()) {
        *o = *b;
    }
    out
}

fn hash(salt: &[u8; 16], password: &[u8]) -> [u8; 32] {
    let mut padded = Zeroizing::new(pad::<PASSWORD_LEN>(password));
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here; fall back to a
    // zero tag (which never matches a stored hash of a real password) rather than panic.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(salt) else {
        return [0; 32];
    };
    mac.update(padded.as_slice());
    padded.zeroize();
    mac.finalize().into_bytes().into()
}

impl OpticalPort {
    /// A port with no accounts (every logon fails).
    pub fn new(config: OpticalConfig) -> Self {
        OpticalPort {
            config,
            ..OpticalPort::default()
        }
    }

    /// The rules in force.
    pub fn config(&self) -> OpticalConfig {
        self.config
    }

    /// Adds or replaces the account `user` (at most 10 bytes used; longer names are
    /// truncated) with `password` (at most 20 bytes used), salting with `rng`.
    pub fn set_user<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
        user: &str,
        password: &[u8],
        level: AccessLevel,
    ) {
        let user = pad::<USER_LEN>(user.as_bytes());
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let hash = hash(&salt, password.get(..PASSWORD_LEN).unwrap_or(password));
        self.accounts.retain(|a| a.user != user);
        self.accounts.push(Account {
            user,
            level,
            salt,
            hash,
        });
    }

    fn log(&mut self, time: u64, user: [u8; USER_LEN], outcome: LogonOutcome) {
        while self.audit.len() >= usize::from(self.config.audit_capacity.max(1)) {
            self.audit.pop_front();
        }
        self.audit.push_back(AuditEntry {
            time,
            user,
            outcome,
        });
    }

    /// The open session, if any and not timed out at `now`.
    pub fn session(&self, now: u64) -> Option<Session> {
        self.session
            .filter(|(_, last)| now < last.saturating_add(u64::from(self.config.session_timeout_s)))
            .map(|(s, _)| s)
    }

    /// Records activity on the open session (resets its timeout).
    pub fn touch(&mut self, now: u64) {
        if self.session(now).is_some() {
            if let Some((_, last)) = self.session.as_mut() {
                *last = now;
            }
        } else {
            self.session = None;
        }
    }

    /// Ends the open session.
    pub fn logoff(&mut self) {
        self.session = None;
    }

    /// Until when the port is locked, if it is locked at `now`.
    pub fn locked_until(&self, now: u64) -> Option<u64> {
        self.locked_until.filter(|&u| now < u)
    }

    /// Tries to log on. Every attempt is written to the audit log.
    pub fn logon(&mut self, user: &str, password: &[u8], now: u64) -> Result<Session, LogonError> {
        let name = pad::<USER_LEN>(user.as_bytes());
        if let Some(until) = self.locked_until(now) {
            self.log(now, name, LogonOutcome::RefusedLocked);
            return Err(LogonError::LockedOut { until });
        }
        if self.locked_until.take().is_some() {
            // The lockout has run out: start counting afresh.
            self.failures = 0;
        }
        if self.session(now).is_some() {
            self.log(now, name, LogonOutcome::RefusedBusy);
            return Err(LogonError::Busy);
        }
        let name_ok = user.len() <= USER_LEN;
        let password_ok = password.len() <= PASSWORD_LEN;
        let account = self.accounts.iter().find(|a| a.user == name && name_ok);
        // Same work whether or not the user exists.
        let dummy_salt = [0u8; 16];
        let salt = account.map_or(&dummy_salt, |a| &a.salt);
        let presented = hash(salt, password.get(..PASSWORD_LEN).unwrap_or(password));
        let matched = match account {
            Some(a) => bool::from(a.hash.ct_eq(&presented)) && password_ok,
            None => false,
        };
        if let (true, Some(a)) = (matched, account) {
            let session = Session {
                user: name,
                level: a.level,
                started: now,
            };
            self.failures = 0;
            self.session = Some((session, now));
            self.log(now, name, LogonOutcome::Success);
            return Ok(session);
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.config.max_failures.max(1) {
            let until = now.saturating_add(u64::from(self.config.lockout_s));
            self.locked_until = Some(until);
            self.failures = 0;
            self.log(now, name, LogonOutcome::BadCredentialsLockedOut);
        } else {
            self.log(now, name, LogonOutcome::BadCredentials);
        }
        Err(LogonError::BadCredentials)
    }

    /// The audit log, oldest first.
    pub fn audit_log(&self) -> impl Iterator<Item = &AuditEntry> + '_ {
        self.audit.iter()
    }

    /// Heap bytes owned.
    pub fn heap_bytes(&self) -> usize {
        self.accounts.capacity() * core::mem::size_of::<Account>()
            + self.audit.capacity() * core::mem::size_of::<AuditEntry>()
    }
}

/// Most accounts or audit entries kept across a reboot (a count is one byte or two).
const MAX_SAVED_ACCOUNTS: usize = u8::MAX as usize;

fn level_code(l: AccessLevel) -> u8 {
    match l {
        AccessLevel::Reader => 0,
        AccessLevel::Operator => 1,
        AccessLevel::Master => 2,
    }
}

fn outcome_code(o: LogonOutcome) -> u8 {
    match o {
        LogonOutcome::Success => 0,
        LogonOutcome::BadCredentials => 1,
        LogonOutcome::BadCredentialsLockedOut => 2,
        LogonOutcome::RefusedLocked => 3,
        LogonOutcome::RefusedBusy => 4,
    }
}

impl OpticalPort {
    /// Appends what the port keeps across a reboot (its non-volatile memory): the failure
    /// count, the lockout, the accounts as salted hashes (never a password) and the audit
    /// log. An open session is not kept: a reboot ends it.
    pub(crate) fn save(&self, w: &mut Writer) {
        w.u8(self.failures);
        match self.locked_until {
            Some(t) => {
                w.u8(1);
                w.u64(t);
            }
            None => w.u8(0),
        }
        let accounts = self.accounts.iter().take(MAX_SAVED_ACCOUNTS);
        w.u8(accounts.len() as u8);
        for a in accounts {
            w.bytes(&a.user);
            w.u8(level_code(a.level));
            w.bytes(&a.salt);
            w.bytes(&a.hash);
        }
        let audit = self.audit.iter().take(usize::from(u16::MAX));
        w.u16(audit.len() as u16);
        for e in audit {
            w.u64(e.time);
            w.bytes(&e.user);
            w.u8(outcome_code(e.outcome));
        }
    }

    /// Reads what [`OpticalPort::save`] wrote, under the rules `config` (the audit log is cut
    /// to its capacity, oldest entries first).
    pub(crate) fn restore(config: OpticalConfig, r: &mut Reader<'_>) -> Result<Self, TableError> {
        let bad = |at: usize, what: &'static str| TableError::BadValue { at, what };
        let mut port = OpticalPort::new(config);
        port.failures = r.u8()?;
        let at = r.pos();
        port.locked_until = match r.u8()? {
            0 => None,
            1 => Some(r.u64()?),
            _ => return Err(bad(at, "optical lockout flag")),
        };
        let n = usize::from(r.u8()?);
        for _ in 0..n {
            let user = r.array()?;
            let at = r.pos();
            let level = match r.u8()? {
                0 => AccessLevel::Reader,
                1 => AccessLevel::Operator,
                2 => AccessLevel::Master,
                _ => return Err(bad(at, "optical access level")),
            };
            let salt = r.array()?;
            let hash = r.array()?;
            port.accounts.push(Account {
                user,
                level,
                salt,
                hash,
            });
        }
        let n = usize::from(r.u16()?);
        for _ in 0..n {
            let time = r.u64()?;
            let user = r.array()?;
            let at = r.pos();
            let outcome = match r.u8()? {
                0 => LogonOutcome::Success,
                1 => LogonOutcome::BadCredentials,
                2 => LogonOutcome::BadCredentialsLockedOut,
                3 => LogonOutcome::RefusedLocked,
                4 => LogonOutcome::RefusedBusy,
                _ => return Err(bad(at, "optical audit outcome")),
            };
            port.log(time, user, outcome);
        }
        Ok(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn port(max: u8, lock: u32) -> OpticalPort {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut p = OpticalPort::new(OpticalConfig::default().with_lockout(max, lock));
        p.set_user(&mut rng, "tech", b"correct horse", AccessLevel::Operator);
        p.set_user(&mut rng, "admin", b"battery staple", AccessLevel::Master);
        p
    }

    #[test]
    fn right_password_logs_on_wrong_one_is_refused() {
        let mut p = port(3, 900);
        assert_eq!(
            p.logon("tech", b"correct hors", 10),
            Err(LogonError::BadCredentials)
        );
        assert_eq!(
            p.logon("nobody", b"correct horse", 11),
            Err(LogonError::BadCredentials)
        );
        assert_eq!(
            p.logon("admin", b"correct horse", 12),
            Err(LogonError::BadCredentials)
        );
        // Third failure locked the port: even the right password is refused now.
        assert_eq!(
            p.logon("tech", b"correct horse", 13),
            Err(LogonError::LockedOut { until: 912 })
        );
        let s = p.logon("tech", b"correct horse", 912).unwrap();
        assert_eq!(s.level, AccessLevel::Operator);
        assert_eq!(&s.user, b"tech      ");
        // Only one session at a time.
        assert_eq!(
            p.logon("admin", b"battery staple", 913),
            Err(LogonError::Busy)
        );
        p.logoff();
        assert_eq!(
            p.logon("admin", b"battery staple", 914).unwrap().level,
            AccessLevel::Master
        );
        let log: Vec<_> = p.audit_log().map(|e| (e.time, e.outcome)).collect();
        assert_eq!(
            log,
            vec![
                (10, LogonOutcome::BadCredentials),
                (11, LogonOutcome::BadCredentials),
                (12, LogonOutcome::BadCredentialsLockedOut),
                (13, LogonOutcome::RefusedLocked),
                (912, LogonOutcome::Success),
                (913, LogonOutcome::RefusedBusy),
                (914, LogonOutcome::Success),
            ]
        );
        assert_eq!(&p.audit_log().nth(1).unwrap().user, b"nobody    ");
    }

    #[test]
    fn success_resets_the_failure_count_and_sessions_time_out() {
        let mut p = port(2, 60);
        assert!(p.logon("tech", b"x", 0).is_err());
        assert!(p.logon("tech", b"correct horse", 1).is_ok());
        assert_eq!(
            p.session(100),
            Some(Session {
                user: pad(b"tech"),
                level: AccessLevel::Operator,
                started: 1
            })
        );
        p.touch(100);
        assert!(p.session(219).is_some());
        assert!(p.session(220).is_none());
        // The earlier failure was forgotten: one more failure does not lock.
        assert_eq!(p.logon("tech", b"y", 300), Err(LogonError::BadCredentials));
        assert!(p.locked_until(300).is_none());
        assert_eq!(p.logon("tech", b"y", 301), Err(LogonError::BadCredentials));
        assert_eq!(p.locked_until(301), Some(361));
    }

    #[test]
    fn overlong_credentials_never_match_and_log_is_bounded() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut p = OpticalPort::new(
            OpticalConfig::default()
                .with_lockout(200, 1)
                .with_audit_capacity(5),
        );
        p.set_user(&mut rng, "u", b"01234567890123456789", AccessLevel::Reader);
        // 21 bytes whose first 20 match: refused.
        assert!(p.logon("u", b"012345678901234567890", 0).is_err());
        // A name longer than 10 bytes whose first 10 match "u" padded: refused.
        assert!(p.logon("u          x", b"01234567890123456789", 1).is_err());
        for t in 2..20 {
            let _ = p.logon("u", b"bad", t);
        }
        assert_eq!(p.audit_log().count(), 5);
        assert_eq!(p.audit_log().next().unwrap().time, 15);
        assert!(p.logon("u", b"01234567890123456789", 30).is_ok());
    }

    #[test]
    fn salts_differ_so_equal_passwords_hash_differently() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut p = OpticalPort::new(OpticalConfig::default());
        p.set_user(&mut rng, "a", b"same", AccessLevel::Reader);
        p.set_user(&mut rng, "b", b"same", AccessLevel::Reader);
        assert_ne!(p.accounts[0].hash, p.accounts[1].hash);
        assert!(!format!("{p:?}").contains("same"));
    }
}
