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
    let mut index: HashMap<(i64, i64), usize> = HashMap::new();
    let mut keys: Vec<(i64, i64)> = Vec::new();
    let mut cells: Vec<Option<(Counts, ShareRow)>> = Vec::new();
    // Fast path: the stores ran the same query on the same keys, and usually return the
    // groups in the same order; then cells line up without hashing.
    let lead = responders
        .first()
        .and_then(|&i| answers.get(i))
        .and_then(Option::as_ref);
    let aligned = lead.is_some_and(|lead| {
        responders.iter().all(|&i| {
            answers.get(i).and_then(Option::as_ref).is_some_and(|a| {
                a.len() == lead.len()
                    && a.iter()
                        .zip(lead)
                        .all(|(x, y)| (x.k0, x.k1) == (y.k0, y.k1))
            })
        })
    });
    if aligned {
        if let Some(lead) = lead {
            keys.extend(lead.iter().map(|g| (g.k0, g.k1)));
            cells.resize(keys.len() * n, None);
            for (i, answer) in answers.iter().enumerate() {
                for (g_index, g) in answer.iter().flatten().enumerate() {
                    if let Some(cell) = cells.get_mut(g_index * n + i) {
                        *cell = Some(((g.rows, g.meters), g.share));
                    }
                }
            }
        }
    }
    if !aligned {
        index.reserve(expected);
    }
    for (i, answer) in answers.iter().enumerate().filter(|_| !aligned) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Replicated2of3;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn answers(values: &[(i64, u64)], seed: u64) -> Vec<Option<Vec<GroupSum>>> {
        let scheme = Replicated2of3;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut out = vec![Some(Vec::new()), Some(Vec::new()), Some(Vec::new())];
        let mut rows = vec![[0u64; 2]; 3];
        for &(k, v) in values {
            scheme.split(v, &mut rng, &mut rows).unwrap();
            for (a, r) in out.iter_mut().zip(&rows) {
                a.as_mut().unwrap().push(GroupSum {
                    k0: k,
                    k1: 0,
                    rows: 1,
                    meters: 1,
                    share: *r,
                });
            }
        }
        out
    }

    fn totals(c: &Combined) -> Vec<(i64, u64)> {
        let mut t: Vec<_> = c.totals.iter().map(|t| (t.k0, t.value)).collect();
        t.sort_unstable();
        t
    }

    #[test]
    fn order_of_groups_does_not_matter() {
        let values: Vec<(i64, u64)> = (0..50).map(|k| (k, (k as u64) * 1_000 + 7)).collect();
        let aligned = answers(&values, 1);
        let mut shuffled = aligned.clone();
        shuffled[1].as_mut().unwrap().reverse();
        shuffled[2].as_mut().unwrap().rotate_left(17);
        let a = combine(&Replicated2of3, &aligned, true, |_, _, _| Ok(true)).unwrap();
        let b = combine(&Replicated2of3, &shuffled, true, |_, _, _| Ok(true)).unwrap();
        assert_eq!(totals(&a), values);
        assert_eq!(totals(&b), values);
        assert!(a.checked && b.checked);
    }

    #[test]
    fn a_store_missing_a_group_is_named_by_the_counts() {
        let values: Vec<(i64, u64)> = (0..5).map(|k| (k, 10 + k as u64)).collect();
        let mut a = answers(&values, 2);
        a[2].as_mut().unwrap().remove(3);
        let c = combine(&Replicated2of3, &a, true, |_, _, _| Ok(true)).unwrap();
        assert_eq!(totals(&c), values);
        assert_eq!(c.liars.iter().copied().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn keep_can_refuse_before_reconstruction() {
        let a = answers(&[(1, 5)], 3);
        let r = combine(&Replicated2of3, &a, true, |_, _, _| {
            Err(VaultError::HouseholdDataRequired)
        });
        assert!(matches!(r, Err(VaultError::HouseholdDataRequired)));
    }
}
