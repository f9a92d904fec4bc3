//! SQL text shared by the SQLite and PostgreSQL stores. Only the dialect details differ:
//! placeholders, and how a sum or a sum of two values is reduced (mod 2^64 or mod p).

use super::{Granularity, StoreLayout, SumQuery};
use crate::scheme::Modulus;
use crate::time::DAY_SECS;

/// The two SQL dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// The field prime as SQL text.
const P_SQL: &str = "2305843009213693951";

impl Dialect {
    /// Placeholder number `n` (1-based).
    fn ph(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// Sum of a column over a group, reduced.
    fn sum(self, col: &str, m: Modulus) -> String {
        match (self, m) {
            // SQLite's native SUM is fast but refuses to overflow 64 bits: sum the signed high
            // and the unsigned low 32-bit halves natively (no overflow below 2^31 rows) and
            // join them once per group, mod 2^64 or mod p.
            (Dialect::Sqlite, Modulus::Wrap64) => {
                format!("gg_wjoin(SUM({col} >> 32), SUM({col} & 4294967295))")
            }
            (Dialect::Sqlite, Modulus::Prime61) => {
                format!("gg_pjoin(SUM({col} >> 32), SUM({col} & 4294967295))")
            }
            (Dialect::Postgres, Modulus::Wrap64) => format!("gg_wrap64(SUM({col}))"),
            (Dialect::Postgres, Modulus::Prime61) => format!("(SUM({col}) % {P_SQL})::BIGINT"),
        }
    }

    /// Sum of two values, reduced.
    fn add(self, x: &str, y: &str, m: Modulus) -> String {
        match (self, m) {
            (Dialect::Sqlite, Modulus::Wrap64) => format!("gg_wadd({x}, {y})"),
            (Dialect::Sqlite, Modulus::Prime61) => format!("gg_padd({x}, {y})"),
            (Dialect::Postgres, Modulus::Wrap64) => format!("gg_wrap64({x}::NUMERIC + {y})"),
            // Both below 2^61: the sum fits a BIGINT.
            (Dialect::Postgres, Modulus::Prime61) => format!("(({x} + {y}) % {P_SQL})"),
        }
    }
}

/// Share column names of a layout.
pub(crate) fn columns(layout: &StoreLayout) -> &'static [&'static str] {
    if layout.columns >= 2 {
        &["a", "b"]
    } else {
        &["a"]
    }
}

fn col_defs(layout: &StoreLayout) -> String {
    columns(layout)
        .iter()
        .map(|c| format!(", {c} BIGINT NOT NULL"))
        .collect()
}

/// Statements creating the schema (idempotent).
pub(crate) fn schema(d: Dialect, layout: &StoreLayout) -> Vec<String> {
    let without_rowid = if d == Dialect::Sqlite {
        " WITHOUT ROWID"
    } else {
        ""
    };
    let cols = col_defs(layout);
    let mut v = vec![
        format!(
            "CREATE TABLE IF NOT EXISTS shares (interval_start BIGINT NOT NULL, meter BIGINT NOT NULL{cols}, \
             PRIMARY KEY (interval_start, meter)){without_rowid}"
        ),
        "CREATE TABLE IF NOT EXISTS meters (meter BIGINT PRIMARY KEY, region BIGINT NOT NULL)".into(),
        "CREATE TABLE IF NOT EXISTS intervals (interval_start BIGINT PRIMARY KEY, tier BIGINT NOT NULL)"
            .into(),
        "CREATE TABLE IF NOT EXISTS store_meta (id BIGINT PRIMARY KEY, meta TEXT NOT NULL)".into(),
        format!(
            "CREATE TABLE IF NOT EXISTS refresh_staged (refresh_id BIGINT NOT NULL, interval_start BIGINT NOT NULL, \
             meter BIGINT NOT NULL{cols}, PRIMARY KEY (refresh_id, interval_start, meter)){without_rowid}"
        ),
        "CREATE TABLE IF NOT EXISTS refresh_done (refresh_id BIGINT PRIMARY KEY)".into(),
    ];
    if d == Dialect::Postgres {
        // Reduce an exact NUMERIC to the signed 64-bit pattern of its value mod 2^64.
        v.push(
            "CREATE OR REPLACE FUNCTION gg_wrap64(x NUMERIC) RETURNS BIGINT LANGUAGE SQL IMMUTABLE STRICT AS \
             $$ SELECT (((x % 18446744073709551616) + 27670116110564327424) % 18446744073709551616 \
             - 9223372036854775808)::BIGINT $$"
                .into(),
        );
    }
    v
}

/// A multi-row `INSERT` of `rows` share rows into `table`, ignoring rows whose key exists.
/// Parameters, row after row: interval_start, meter, then the share columns.
pub(crate) fn insert_shares(d: Dialect, layout: &StoreLayout, table: &str, rows: usize) -> String {
    let cols = columns(layout);
    let names: String = cols.iter().map(|c| format!(", {c}")).collect();
    let per_row = 2 + cols.len();
    let tuples: Vec<String> = (0..rows)
        .map(|r| {
            let phs: Vec<String> = (1..=per_row).map(|i| d.ph(r * per_row + i)).collect();
            format!("({})", phs.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {table} (interval_start, meter{names}) VALUES {} ON CONFLICT DO NOTHING",
        tuples.join(", ")
    )
}

/// `SELECT interval_start, meter, share columns FROM shares` over a range (params 1, 2).
pub(crate) fn select_shares(d: Dialect, layout: &StoreLayout) -> String {
    let names: String = columns(layout).iter().map(|c| format!(", {c}")).collect();
    format!(
        "SELECT interval_start, meter{names} FROM shares WHERE interval_start >= {} AND interval_start < {} \
         ORDER BY interval_start, meter",
        d.ph(1),
        d.ph(2)
    )
}

/// The statement adding staged deltas of refresh `$1` to the shares.
pub(crate) fn apply_deltas(d: Dialect, layout: &StoreLayout) -> String {
    let sets: Vec<String> = columns(layout)
        .iter()
        .map(|c| {
            format!(
                "{c} = {}",
                d.add(&format!("shares.{c}"), &format!("d.{c}"), layout.modulus)
            )
        })
        .collect();
    format!(
        "UPDATE shares SET {} FROM refresh_staged d WHERE d.refresh_id = {} \
         AND d.interval_start = shares.interval_start AND d.meter = shares.meter",
        sets.join(", "),
        d.ph(1)
    )
}

/// An aggregate query: its text and its parameters. Result columns: k0, k1, rows, meters,
/// then one reduced sum per share column.
pub(crate) fn sum_query(d: Dialect, layout: &StoreLayout, q: &SumQuery) -> (String, Vec<i64>) {
    let sums: String = columns(layout)
        .iter()
        .map(|c| format!(", {}", d.sum(&format!("s.{c}"), layout.modulus)))
        .collect();
    let in_range = format!(
        "s.interval_start >= {} AND s.interval_start < {}",
        d.ph(1),
        d.ph(2)
    );
    match *q {
        SumQuery::ByMeterTier { range } => (
            format!(
                "SELECT s.meter, COALESCE(i.tier, 0), COUNT(*), CAST(1 AS BIGINT){sums} FROM shares s \
                 LEFT JOIN intervals i ON i.interval_start = s.interval_start WHERE {in_range} \
                 GROUP BY s.meter, COALESCE(i.tier, 0)"
            ),
            vec![range.start, range.end],
        ),
        SumQuery::ByRegion {
            region,
            range,
            granularity,
        } => {
            let (key, meters) = match granularity {
                Granularity::Interval => ("s.interval_start".to_string(), "COUNT(*)"),
                Granularity::Day => (
                    format!("(s.interval_start - s.interval_start % {DAY_SECS})"),
                    "COUNT(DISTINCT s.meter)",
                ),
            };
            let (filter, params) = match region {
                Some(r) => (
                    format!(" AND m.region = {}", d.ph(3)),
                    vec![range.start, range.end, i64::from(r)],
                ),
                None => (String::new(), vec![range.start, range.end]),
            };
            (
                format!(
                    "SELECT m.region, {key}, COUNT(*), {meters}{sums} FROM shares s \
                     JOIN meters m ON m.meter = s.meter WHERE {in_range}{filter} GROUP BY m.region, {key}"
                ),
                params,
            )
        }
        SumQuery::ByDay { range } => {
            let key = format!("(s.interval_start - s.interval_start % {DAY_SECS})");
            (
                format!(
                    "SELECT {key}, CAST(0 AS BIGINT), COUNT(*), COUNT(DISTINCT s.meter){sums} FROM shares s \
                     WHERE {in_range} GROUP BY {key}"
                ),
                vec![range.start, range.end],
            )
        }
        SumQuery::MeterIntervals { meter, range } => (
            format!(
                "SELECT s.interval_start, CAST(0 AS BIGINT), COUNT(*), CAST(1 AS BIGINT){sums} FROM shares s \
                 WHERE {in_range} AND s.meter = {} GROUP BY s.interval_start ORDER BY s.interval_start",
                d.ph(3)
            ),
            vec![range.start, range.end, super::record::to_sql(meter)],
        ),
    }
}

/// `SELECT meter, interval_start, <column>` over a range (params 1, 2).
pub(crate) fn select_column(d: Dialect, layout: &StoreLayout, column: usize) -> String {
    let name = columns(layout).get(column).copied().unwrap_or("a");
    format!(
        "SELECT meter, interval_start, {name} FROM shares WHERE interval_start >= {} AND interval_start < {} \
         ORDER BY interval_start, meter",
        d.ph(1),
        d.ph(2)
    )
}
