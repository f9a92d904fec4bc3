//! Energy registers, exact in Wh (varh for reactive).

use crate::tou::TIERS;

/// The base energy registers; the derived ones (delivered + received, delivered − received)
/// are computed from them so they can never disagree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    /// Active energy delivered to the premises (Wh, import).
    pub delivered_wh: u64,
    /// Active energy received from the premises (Wh, export).
    pub received_wh: u64,
    /// Reactive energy, lagging (varh, inductive).
    pub lagging_varh: u64,
    /// Reactive energy, leading (varh, capacitive).
    pub leading_varh: u64,
}

impl Registers {
    /// Delivered + received (Wh).
    pub fn total_wh(&self) -> u64 {
        self.delivered_wh.saturating_add(self.received_wh)
    }
    /// Delivered − received (Wh), the net register.
    pub fn net_wh(&self) -> i64 {
        (i128::from(self.delivered_wh) - i128::from(self.received_wh))
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
    pub(crate) fn add(&mut self, d: &Registers) {
        self.delivered_wh = self.delivered_wh.wrapping_add(d.delivered_wh);
        self.received_wh = self.received_wh.wrapping_add(d.received_wh);
        self.lagging_varh = self.lagging_varh.wrapping_add(d.lagging_varh);
        self.leading_varh = self.leading_varh.wrapping_add(d.leading_varh);
    }
    /// Sum of several register sets.
    pub fn sum<'a>(it: impl IntoIterator<Item = &'a Registers>) -> Registers {
        let mut r = Registers::default();
        for x in it {
            r.add(x);
        }
        r
    }
}

/// Registers per TOU tier.
pub type TierRegisters = [Registers; TIERS];

/// A maximum demand and when it happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peak {
    /// Demand in W (block energy over 30 minutes).
    pub watts: u32,
    /// Meter time at which the block that set it ended (0 if none yet).
    pub at: u64,
}

/// 30-minute block demand: the running block and the maxima since the last demand reset,
/// for the total and per tier (a block counts for the tier active in its last second).
/// Blocks are aligned to :00 and :30 of the meter clock; the block in progress at
/// installation or at a clock change is shorter and still counts, and power-off time inside
/// a block simply adds no energy to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    /// Maximum demand over all tiers.
    pub max: Peak,
    /// Maximum demand per tier.
    pub tier_max: [Peak; TIERS],
    /// Demand resets so far (wraps at 255, as the C12.19 counter does).
    pub resets: u8,
    /// Delivered Wh in the block in progress.
    pub block_wh: u32,
}

impl Demand {
    /// Ends the block in progress at meter time `end` (tier index `tier`) and folds it into
    /// the maxima. A larger demand replaces the maximum; an equal one keeps the earlier time.
    pub(crate) fn close_block(&mut self, end: u64, tier: usize) {
        let watts = self.block_wh.saturating_mul(2);
        if watts > self.max.watts {
            self.max = Peak { watts, at: end };
        }
        if let Some(t) = self.tier_max.get_mut(tier) {
            if watts > t.watts {
                *t = Peak { watts, at: end };
            }
        }
        self.block_wh = 0;
    }

    /// Demand reset: clears the maxima and counts the reset.
    pub(crate) fn reset(&mut self) {
        self.max = Peak::default();
        self.tier_max = [Peak::default(); TIERS];
        self.resets = self.resets.wrapping_add(1);
    }
}
