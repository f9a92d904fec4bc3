//! The combiner: turns the partial sums returned by each store into totals, checking that the
//! stores agree, naming a store that lies, and reconstructing nothing but the totals asked for.

use std::collections::{BTreeSet, HashMap};

use crate::error::{Result, VaultError};
use crate::scheme::{SchemeError, ShareRow, ShareScheme, Verdict};
use crate::store::GroupSum;

/// One reconstructed group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Total {
    /// First part of the group key.
    pub k0: i64,
    /// Second part of the group key.
    pub k1: i64,
    /// Rows summed (agreed by the stores).
    pub rows: u64,
    /// Distinct meters (agreed by the stores).
    pub meters: u64,
    /// The reconstructed total.
    pub value: u64,
}

/// The combined answer.
#[derive(Debug, Default)]
pub struct Combined {
    /// The reconstructed groups.
    pub totals: Vec<Total>,
    /// Stores caught returning wrong sums or wrong counts.
    pub liars: BTreeSet<usize>,
    /// Whether any redundancy was available to check against.
    pub checked: bool,
    /// Groups whose stores disagreed without a single culprit (only when not strict).
    pub unresolved: usize,
    /// Stores suspected in unresolved groups.
    pub suspects: BTreeSet<usize>,
}

/// Per-group counts every store must agree on (they are public: which meters reported when):
/// `(rows, meters)`.
pub type Counts = (u64, u64);

/// Combines the stores' partial sums: groups the answers by key, checks that the stores
/// agree on each group's counts and shares, and reconstructs each group's total. `keep` sees
/// each group's key and agreed counts before anything is reconstructed and may skip it
/// (`Ok(false)`) or refuse the whole answer (`Err`).
///
/// Groups the stores' answers by key. `answers[i]` is store `i`'s answer, `None` if it was not
/// asked or failed. With `strict`, a group whose stores disagree without a single culprit is an
/// error; otherwise it is counted in `unresolved` and left out.
pub fn combine(
    scheme: &dyn ShareScheme,
    answers: &[Option<Vec<GroupSum>>],
    strict: bool,
    keep: impl Fn(i64, i64, Counts) -> Result<bool>,
) -> Result<Combined> {
    let n = answers.len();
    let responders: Vec<usize> = (0..n)
        .filter(|&i| matches!(answers.get(i), Some(Some(_))))
        .collect();
    if responders.len() < scheme.threshold() {
        return Err(VaultError::NotEnoughStores {
            needed: scheme.threshold(),
            available: responders.len(),
        });
    }
    // Flat table: group g, store i at cells[g * n + i].
    let expected = answers.iter().flatten().map(Vec::len).max().unwrap_or(0);
    let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(expected);
    let mut keys: Vec<(i64, i64)> = Vec::new();
    let mut cells: Vec<Option<(Counts, ShareRow)>> = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        for g in answer.iter().flatten() {
            let slot = *index.entry((g.k0, g.k1)).or_insert_with(|| {
                keys.push((g.k0, g.k1));
                cells.extend(std::iter::repeat(None).take(n));
                keys.len() - 1
            });
            if let Some(cell) = cells.get_mut(slot * n + i) {
                *cell = Some(((g.rows, g.meters), g.share));
            }
        }
    }
    let mut out = Combined {
        totals: Vec::with_capacity(keys.len()),
        ..Combined::default()
    };
    let mut shares: Vec<Option<ShareRow>> = vec![None; n];
    for (g, &(k0, k1)) in keys.iter().enumerate() {
        let row = cells.get(g * n..(g + 1) * n).unwrap_or(&[]);
        // Counts: a responder that lacks the group reports zero rows.
        let counts_of = |i: usize| {
            row.get(i)
                .copied()
                .flatten()
                .map(|(c, _)| c)
                .unwrap_or((0, 0))
        };
        let first = responders.first().map(|&i| counts_of(i));
        let majority = if responders.iter().all(|&i| Some(counts_of(i)) == first) {
            first
        } else {
            majority(responders.iter().map(|&i| counts_of(i)))
        };
        let Some(counts) = majority else {
            if strict {
                return Err(VaultError::Inconsistent {
                    suspects: responders.clone(),
                });
            }
            out.unresolved += 1;
            out.suspects.extend(responders.iter().copied());
            continue;
        };
        if !keep(k0, k1, counts)? {
            continue;
        }
        shares.iter_mut().for_each(|s| *s = None);
        for &i in &responders {
            if counts_of(i) == counts {
                if let Some(s) = shares.get_mut(i) {
                    *s = row.get(i).copied().flatten().map(|(_, share)| share);
                }
            } else {
                out.liars.insert(i);
            }
        }
        match scheme.reconstruct(&shares) {
            Ok(r) => {
                match r.verdict {
                    Verdict::Liar(l) => {
                        out.liars.insert(l);
                        out.checked = true;
                    }
                    Verdict::Consistent => out.checked = true,
                    Verdict::Unchecked => {}
                }
                out.totals.push(Total {
                    k0,
                    k1,
                    rows: counts.0,
                    meters: counts.1,
                    value: r.value,
                });
            }
            Err(SchemeError::Inconsistent { suspects }) => {
                if strict {
                    return Err(VaultError::Inconsistent { suspects });
                }
                out.checked = true;
                out.unresolved += 1;
                out.suspects.extend(suspects);
            }
            Err(SchemeError::NotEnoughShares { needed, have }) => {
                return Err(VaultError::NotEnoughStores {
                    needed,
                    available: have,
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !out.liars.is_empty() {
        tracing::warn!(liars = ?out.liars, "stores returned wrong sums; answer computed without them");
    }
    Ok(out)
}

/// The value more than half of the items share, if any.
fn majority(items: impl Iterator<Item = Counts> + Clone) -> Option<Counts> {
    let total = items.clone().count();
    let mut best: Option<(Counts, usize)> = None;
    for c in items.clone() {
        let k = items.clone().filter(|x| *x == c).count();
        if best.map_or(true, |(_, bk)| k > bk) {
            best = Some((c, k));
        }
    }
    best.filter(|&(_, k)| 2 * k > total).map(|(c, _)| c)
}
