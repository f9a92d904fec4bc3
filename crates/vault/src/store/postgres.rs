//! The production store: one PostgreSQL database (ideally its own server, run by its own
//! operator) per store. Sums are computed in SQL on exact NUMERIC values and reduced modulo
//! 2^64 (by the `gg_wrap64` function the store installs) or modulo p in the query. Batches are
//! sent with binary `COPY` into a temporary table and merged with `ON CONFLICT DO NOTHING`.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls};

use super::record::{from_sql, region_from_sql, tier_from_sql, to_sql};
use super::sql::{self, Dialect};
use super::{GroupSum, ShareRecord, ShareStore, StoreError, StoreLayout, StoreMeta, SumQuery};
use crate::time::TimeRange;

/// A share store in a PostgreSQL database.
pub struct PostgresStore {
    client: Client,
    location: String,
    layout: StoreLayout,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .field("layout", &self.layout)
            .finish()
    }
}

/// Describes a connection without its password.
fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "postgres://{}@{}:{}/{}",
        config.get_user().unwrap_or("?"),
        hosts.join(","),
        ports.join(","),
        config.get_dbname().unwrap_or("?")
    )
}

impl PostgresStore {
    /// Connects with a libpq-style connection string (`host=… port=… user=… password=…
    /// dbname=…`) and creates the schema if needed.
    pub fn connect(conninfo: &str, layout: StoreLayout) -> Result<Self, StoreError> {
        let config: Config = conninfo
            .parse()
            .map_err(|e: postgres::Error| StoreError::Config(e.to_string()))?;
        let mut client = config.connect(NoTls)?;
        // Concurrent CREATE ... IF NOT EXISTS can race on the catalog; the store is
        // initialised by one vault at a time, so one statement at a time is enough.
        // Skip the DDL when the schema is already there (one round trip instead of seven).
        let ready = client
            .query_opt(
                "SELECT 1 FROM pg_proc WHERE proname = 'gg_wrap64' AND to_regclass('refresh_done') IS NOT NULL",
                &[],
            )?
            .is_some();
        if !ready {
            for stmt in sql::schema(Dialect::Postgres, &layout) {
                client.batch_execute(&stmt)?;
            }
        }
        let cols: String = sql::columns(&layout)
            .iter()
            .map(|c| format!(", {c} BIGINT"))
            .collect();
        client.batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS incoming (interval_start BIGINT, meter BIGINT{cols}) \
             ON COMMIT DELETE ROWS"
        ))?;
        Ok(PostgresStore {
            client,
            location: describe(&config),
            layout,
        })
    }

    fn types(&self, extra_leading: usize) -> Vec<Type> {
        vec![Type::INT8; extra_leading + 2 + sql::columns(&self.layout).len()]
    }
}

fn write_rows(
    writer: &mut BinaryCopyInWriter<'_>,
    lead: Option<i64>,
    rows: &[ShareRecord],
    columns: usize,
) -> Result<(), postgres::Error> {
    for r in rows {
        let (s, m, a, b) = (
            r.interval_start,
            to_sql(r.meter),
            to_sql(r.share[0]),
            to_sql(r.share[1]),
        );
        let mut vals: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(5);
        if let Some(id) = lead.as_ref() {
            vals.push(id);
        }
        vals.push(&s);
        vals.push(&m);
        vals.push(&a);
        if columns >= 2 {
            vals.push(&b);
        }
        writer.write(&vals)?;
    }
    Ok(())
}

impl ShareStore for PostgresStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn layout(&self) -> StoreLayout {
        self.layout
    }

    fn meta(&mut self) -> Result<Option<StoreMeta>, StoreError> {
        let row = self
            .client
            .query_opt("SELECT meta FROM store_meta WHERE id = 1", &[])?;
        Ok(match row {
            Some(r) => Some(StoreMeta::parse(r.try_get::<_, String>(0)?.as_bytes())?),
            None => None,
        })
    }

    fn set_meta(&mut self, meta: &StoreMeta) -> Result<(), StoreError> {
        self.client.execute(
            "INSERT INTO store_meta (id, meta) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET meta = excluded.meta",
            &[&meta.to_string()],
        )?;
        Ok(())
    }

    fn put_shares(&mut self, rows: &[ShareRecord]) -> Result<(), StoreError> {
        let names: String = sql::columns(&self.layout)
            .iter()
            .map(|c| format!(", {c}"))
            .collect();
        let types = self.types(0);
        let columns = self.layout.columns;
        let mut tx = self.client.transaction()?;
        {
            let w = tx.copy_in(&format!(
                "COPY incoming (interval_start, meter{names}) FROM STDIN BINARY"
            ))?;
            let mut w = BinaryCopyInWriter::new(w, &types);
            write_rows(&mut w, None, rows, columns)?;
            w.finish()?;
        }
        tx.execute(
            &format!(
                "INSERT INTO shares (interval_start, meter{names}) SELECT interval_start, meter{names} \
                 FROM incoming ON CONFLICT DO NOTHING"
            ),
            &[],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn put_regions(&mut self, rows: &[(u64, u32)]) -> Result<(), StoreError> {
        let meters: Vec<i64> = rows.iter().map(|&(m, _)| to_sql(m)).collect();
        let regions: Vec<i64> = rows.iter().map(|&(_, r)| i64::from(r)).collect();
        // One statement for the whole batch; a later duplicate in the batch wins.
        self.client.execute(
            "INSERT INTO meters (meter, region) SELECT DISTINCT ON (m) m, r FROM \
             UNNEST($1::BIGINT[], $2::BIGINT[]) WITH ORDINALITY AS u(m, r, o) ORDER BY m, o DESC \
             ON CONFLICT (meter) DO UPDATE SET region = excluded.region",
            &[&meters, &regions],
        )?;
        Ok(())
    }

    fn put_tiers(&mut self, rows: &[(i64, u8)]) -> Result<(), StoreError> {
        let starts: Vec<i64> = rows.iter().map(|&(t, _)| t).collect();
        let tiers: Vec<i64> = rows.iter().map(|&(_, tier)| i64::from(tier)).collect();
        self.client.execute(
            "INSERT INTO intervals (interval_start, tier) SELECT DISTINCT ON (t) t, k FROM \
             UNNEST($1::BIGINT[], $2::BIGINT[]) WITH ORDINALITY AS u(t, k, o) ORDER BY t, o DESC \
             ON CONFLICT (interval_start) DO UPDATE SET tier = excluded.tier",
            &[&starts, &tiers],
        )?;
        Ok(())
    }

    fn regions(&mut self) -> Result<Vec<(u64, u32)>, StoreError> {
        let mut out = Vec::new();
        for r in self
            .client
            .query("SELECT meter, region FROM meters ORDER BY meter", &[])?
        {
            out.push((
                from_sql(r.try_get::<_, i64>(0)?),
                region_from_sql(r.try_get(1)?)?,
            ));
        }
        Ok(out)
    }

    fn tiers(&mut self) -> Result<Vec<(i64, u8)>, StoreError> {
        let mut out = Vec::new();
        for r in self.client.query(
            "SELECT interval_start, tier FROM intervals ORDER BY interval_start",
            &[],
        )? {
            out.push((r.try_get::<_, i64>(0)?, tier_from_sql(r.try_get(1)?)?));
        }
        Ok(out)
    }

    fn read_shares(&mut self, range: TimeRange) -> Result<Vec<ShareRecord>, StoreError> {
        let layout = self.layout;
        let text = sql::select_shares(Dialect::Postgres, &layout);
        let mut out = Vec::new();
        for r in self.client.query(&text, &[&range.start, &range.end])? {
            let b = if layout.columns >= 2 {
                Some(r.try_get::<_, i64>(3)?)
            } else {
                None
            };
            out.push(ShareRecord::from_sql(
                &layout,
                r.try_get(1)?,
                r.try_get(0)?,
                r.try_get(2)?,
                b,
            )?);
        }
        Ok(out)
    }

    fn read_column(
        &mut self,
        range: TimeRange,
        column: usize,
    ) -> Result<Vec<(u64, i64, u64)>, StoreError> {
        let layout = self.layout;
        let text = sql::select_column(Dialect::Postgres, &layout, column);
        let mut out = Vec::new();
        for r in self.client.query(&text, &[&range.start, &range.end])? {
            let v: i64 = r.try_get(2)?;
            let rec = ShareRecord::from_sql(&layout, r.try_get(0)?, r.try_get(1)?, v, Some(v))?;
            out.push((rec.meter, rec.interval_start, rec.share[0]));
        }
        Ok(out)
    }

    fn keys(&mut self, range: TimeRange) -> Result<Vec<(u64, i64)>, StoreError> {
        let rows = self.client.query(
            "SELECT meter, interval_start FROM shares WHERE interval_start >= $1 AND interval_start < $2 \
             ORDER BY interval_start, meter",
            &[&range.start, &range.end],
        )?;
        rows.iter()
            .map(|r| Ok((from_sql(r.try_get(0)?), r.try_get(1)?)))
            .collect()
    }

    fn contains_keys(&mut self, keys: &[(u64, i64)]) -> Result<Vec<bool>, StoreError> {
        let (starts, meters) = key_columns(keys);
        let rows = self.client.query(
            "SELECT k.n FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS k(s, m, n) \
             JOIN shares ON shares.interval_start = k.s AND shares.meter = k.m",
            &[&starts, &meters],
        )?;
        let mut found = vec![false; keys.len()];
        for r in rows {
            let n: i64 = r.try_get(0)?;
            if let Some(flag) = usize::try_from(n)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| found.get_mut(i))
            {
                *flag = true;
            }
        }
        Ok(found)
    }

    fn delete_keys(&mut self, keys: &[(u64, i64)]) -> Result<(), StoreError> {
        let (starts, meters) = key_columns(keys);
        self.client.execute(
            "DELETE FROM shares USING unnest($1::bigint[], $2::bigint[]) AS k(s, m) \
             WHERE shares.interval_start = k.s AND shares.meter = k.m",
            &[&starts, &meters],
        )?;
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.client.batch_execute(
            "BEGIN; TRUNCATE shares, meters, intervals, refresh_staged, refresh_done, store_meta; COMMIT;",
        )?;
        Ok(())
    }

    fn count(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
            .client
            .query_one("SELECT COUNT(*) FROM shares", &[])?
            .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn extent(&mut self) -> Result<Option<TimeRange>, StoreError> {
        let r = self.client.query_one(
            "SELECT MIN(interval_start), MAX(interval_start) FROM shares",
            &[],
        )?;
        let (lo, hi): (Option<i64>, Option<i64>) = (r.try_get(0)?, r.try_get(1)?);
        Ok(match (lo, hi) {
            (Some(lo), Some(hi)) => Some(TimeRange::new(lo, hi.saturating_add(1))),
            _ => None,
        })
    }

    fn sums(&mut self, query: &SumQuery) -> Result<Vec<GroupSum>, StoreError> {
        let layout = self.layout;
        let (text, args) = sql::sum_query(Dialect::Postgres, &layout, query);
        let params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let mut out = Vec::new();
        for r in self.client.query(&text, &params)? {
            let b = if layout.columns >= 2 {
                Some(r.try_get::<_, i64>(5)?)
            } else {
                None
            };
            out.push(GroupSum::from_sql(
                &layout,
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                b,
            )?);
        }
        Ok(out)
    }

    fn stage_deltas(&mut self, refresh_id: u64, deltas: &[ShareRecord]) -> Result<(), StoreError> {
        let names: String = sql::columns(&self.layout)
            .iter()
            .map(|c| format!(", {c}"))
            .collect();
        let types = self.types(1);
        let columns = self.layout.columns;
        let mut tx = self.client.transaction()?;
        {
            let w = tx.copy_in(&format!(
                "COPY refresh_staged (refresh_id, interval_start, meter{names}) FROM STDIN BINARY"
            ))?;
            let mut w = BinaryCopyInWriter::new(w, &types);
            write_rows(&mut w, Some(to_sql(refresh_id)), deltas, columns)?;
            w.finish()?;
        }
        tx.commit()?;
        Ok(())
    }

    fn apply_deltas(&mut self, refresh_id: u64) -> Result<(), StoreError> {
        let id = to_sql(refresh_id);
        let update = sql::apply_deltas(Dialect::Postgres, &self.layout);
        let mut tx = self.client.transaction()?;
        let done = tx.query_opt(
            "SELECT refresh_id FROM refresh_done WHERE refresh_id = $1",
            &[&id],
        )?;
        if done.is_none() {
            tx.execute(&update, &[&id])?;
            tx.execute("INSERT INTO refresh_done (refresh_id) VALUES ($1)", &[&id])?;
        }
        tx.execute("DELETE FROM refresh_staged WHERE refresh_id = $1", &[&id])?;
        tx.commit()?;
        Ok(())
    }

    fn discard_deltas(&mut self, refresh_id: u64) -> Result<(), StoreError> {
        self.client.execute(
            "DELETE FROM refresh_staged WHERE refresh_id = $1",
            &[&to_sql(refresh_id)],
        )?;
        Ok(())
    }

    fn refresh_state(&mut self) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
        let ids = |client: &mut Client, q: &str| -> Result<Vec<u64>, StoreError> {
            client
                .query(q, &[])?
                .iter()
                .map(|r| Ok(from_sql(r.try_get(0)?)))
                .collect()
        };
        Ok((
            ids(
                &mut self.client,
                "SELECT DISTINCT refresh_id FROM refresh_staged",
            )?,
            ids(&mut self.client, "SELECT refresh_id FROM refresh_done")?,
        ))
    }
}

/// Keys as the two array parameters `(interval starts, meters)` of an `unnest` join.
fn key_columns(keys: &[(u64, i64)]) -> (Vec<i64>, Vec<i64>) {
    keys.iter()
        .map(|&(meter, start)| (start, to_sql(meter)))
        .unzip()
}
