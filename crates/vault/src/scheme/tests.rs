use super::*;
use crate::field;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn all_specs() -> Vec<SchemeSpec> {
    vec![
        SchemeSpec::Replicated2of3,
        SchemeSpec::Additive2of2,
        SchemeSpec::Shamir { t: 2, n: 3 },
        SchemeSpec::Shamir { t: 3, n: 5 },
        SchemeSpec::Shamir { t: 2, n: 5 },
    ]
}

fn fit(spec: SchemeSpec, v: u64) -> u64 {
    match spec {
        SchemeSpec::Shamir { .. } => v % field::P,
        _ => v,
    }
}

fn split(s: &dyn ShareScheme, v: u64, rng: &mut ChaCha20Rng) -> Vec<ShareRow> {
    let mut out = vec![[0; 2]; s.stores()];
    s.split(v, rng, &mut out).unwrap();
    out
}

/// Adds share rows column-wise, the way a store's SQL sum does.
fn sum_rows(s: &dyn ShareScheme, rows: &[Vec<ShareRow>]) -> Vec<ShareRow> {
    let m = s.modulus();
    let mut acc = vec![[0u64; 2]; s.stores()];
    for r in rows {
        for (a, b) in acc.iter_mut().zip(r) {
            a[0] = m.add(a[0], b[0]);
            a[1] = m.add(a[1], b[1]);
        }
    }
    acc
}

fn all_present(rows: &[ShareRow]) -> Vec<Option<ShareRow>> {
    rows.iter().copied().map(Some).collect()
}

proptest! {
    #[test]
    fn sums_of_shares_reconstruct_sums(values in proptest::collection::vec(any::<u64>(), 1..40), seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for spec in all_specs() {
            let s = spec.build().unwrap();
            let vals: Vec<u64> = values.iter().map(|&v| fit(spec, v)).collect();
            let rows: Vec<_> = vals.iter().map(|&v| split(&*s, v, &mut rng)).collect();
            let expected = match s.modulus() {
                Modulus::Wrap64 => vals.iter().fold(0u64, |a, &v| a.wrapping_add(v)),
                Modulus::Prime61 => vals.iter().fold(0u64, |a, &v| field::add(a, v)),
            };
            let sum = sum_rows(&*s, &rows);
            let r = s.reconstruct(&all_present(&sum)).unwrap();
            prop_assert_eq!(r.value, expected);
            // Every subset of `threshold` stores reconstructs too.
            for missing in 0..s.stores() {
                let mut partial = all_present(&sum);
                partial[missing] = None;
                let got = s.reconstruct(&partial);
                if s.stores() > s.threshold() {
                    prop_assert_eq!(got.unwrap().value, expected);
                } else {
                    let is_not_enough = matches!(got, Err(SchemeError::NotEnoughShares { .. }));
                    prop_assert!(is_not_enough);
                }
            }
        }
    }

    #[test]
    fn repair_rebuilds_the_lost_share(v in any::<u64>(), seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for spec in all_specs() {
            let s = spec.build().unwrap();
            let rows = split(&*s, fit(spec, v), &mut rng);
            for lost in 0..s.stores() {
                let available: Vec<bool> = (0..s.stores()).map(|i| i != lost).collect();
                let Some(plan) = s.repair_plan(lost, &available) else {
                    prop_assert_eq!(spec, SchemeSpec::Additive2of2);
                    continue;
                };
                let rebuilt = match plan {
                    RepairPlan::Copy(cols) => {
                        let mut r = [0u64; 2];
                        for (tc, src, sc) in cols {
                            prop_assert!(src != lost);
                            r[tc] = rows[src][sc];
                        }
                        r
                    }
                    RepairPlan::Interpolate(helpers) => {
                        let mut acc = 0;
                        for (h, c) in helpers {
                            prop_assert!(h != lost);
                            acc = field::add(acc, field::mul(c, rows[h][0]));
                        }
                        [acc, 0]
                    }
                };
                prop_assert_eq!(rebuilt, rows[lost]);
            }
        }
    }

    #[test]
    fn scheme_parser_never_panics(text in ".{0,40}") {
        if let Ok(spec) = text.parse::<SchemeSpec>() {
            prop_assert_eq!(spec.to_string(), text);
        }
    }
}

#[test]
fn wrap_around_and_field_edges() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for spec in all_specs() {
        let s = spec.build().unwrap();
        let edge = match s.modulus() {
            Modulus::Wrap64 => vec![0, 1, u64::MAX, u64::MAX - 1, 1 << 63],
            Modulus::Prime61 => vec![0, 1, field::P - 1, field::P - 2, 1 << 60],
        };
        for &v in &edge {
            let rows = split(&*s, v, &mut rng);
            assert_eq!(s.reconstruct(&all_present(&rows)).unwrap().value, v);
        }
        let rows: Vec<_> = edge.iter().map(|&v| split(&*s, v, &mut rng)).collect();
        let sum = sum_rows(&*s, &rows);
        let expect = edge.iter().fold(0u64, |a, &v| s.modulus().add(a, v));
        assert_eq!(s.reconstruct(&all_present(&sum)).unwrap().value, expect);
    }
}

#[test]
fn shamir_rejects_values_outside_the_field() {
    let s = SchemeSpec::Shamir { t: 2, n: 3 }.build().unwrap();
    let mut out = vec![[0; 2]; 3];
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    assert_eq!(
        s.split(field::P, &mut rng, &mut out),
        Err(SchemeError::ValueOutOfField(field::P))
    );
}

#[test]
fn replicated_names_a_store_that_adds_a_constant() {
    let s = Replicated2of3;
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for liar in 0..3 {
        let mut rows = split(&s, 123_456, &mut rng);
        rows[liar][0] = rows[liar][0].wrapping_add(1000);
        rows[liar][1] = rows[liar][1].wrapping_add(1000);
        let r = s.reconstruct(&all_present(&rows)).unwrap();
        assert_eq!(r.verdict, Verdict::Liar(liar));
        assert_eq!(r.value, 123_456);
    }
}

#[test]
fn replicated_one_column_lie_is_detected_between_two_suspects() {
    let s = Replicated2of3;
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut rows = split(&s, 99, &mut rng);
    rows[1][1] ^= 1; // part 2 as held by store 1; its other copy is store 2 column 0
    assert_eq!(
        s.reconstruct(&all_present(&rows)),
        Err(SchemeError::Inconsistent {
            suspects: vec![1, 2]
        })
    );
    // With one store missing the remaining pair still cross-checks one part.
    let mut two = all_present(&rows);
    two[0] = None;
    assert!(matches!(
        s.reconstruct(&two),
        Err(SchemeError::Inconsistent { .. })
    ));
}

#[test]
fn shamir_detects_with_t_plus_1_and_names_with_t_plus_2() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let s = Shamir::new(2, 4).unwrap();
    for liar in 0..4 {
        let mut rows = split(&s, 777, &mut rng);
        rows[liar][0] = field::add(rows[liar][0], 5);
        let r = s.reconstruct(&all_present(&rows)).unwrap();
        assert_eq!(r.verdict, Verdict::Liar(liar));
        assert_eq!(r.value, 777);
    }
    let s3 = Shamir::new(2, 3).unwrap();
    let mut rows = split(&s3, 777, &mut rng);
    rows[0][0] = field::add(rows[0][0], 5);
    assert!(matches!(
        s3.reconstruct(&all_present(&rows)),
        Err(SchemeError::Inconsistent { .. })
    ));
}

#[test]
fn spec_text_round_trips() {
    for spec in all_specs() {
        assert_eq!(spec.to_string().parse::<SchemeSpec>().unwrap(), spec);
    }
    for bad in [
        "",
        "shamir-1-of-3",
        "shamir-4-of-3",
        "shamir-2-of-33",
        "shamir-2-of-",
        "rot13",
    ] {
        assert!(bad.parse::<SchemeSpec>().is_err(), "{bad}");
    }
}
