//! The vault's query and maintenance commands over a data directory: `bill`, `totals`,
//! `readings` and `vault refresh | repair | check | status`.
//!
//! Every report is rendered by a function returning the text (`bill_report`, `totals_report`,
//! `readings_report`, …) so that the demo's summary prints exactly what the commands print.
//! Stores are numbered from 1 in everything shown here (`store-1.sqlite` is store 1); the
//! vault library numbers them from 0.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use gridguard_vault::time::{format_day, format_utc, TIERS};
use gridguard_vault::{
    Caller, CheckReport, Granularity, Integrity, Month, StoreState, StoreStatus, TimeRange, Vault,
    VaultError,
};

use crate::datadir::DataDir;

/// Default data directory of the query commands.
pub const DEFAULT_DATA_DIR: &str = "gridguard-data";

/// The vault commands (flattened into the top-level command list).
#[derive(Subcommand, Debug)]
pub enum VaultCommand {
    /// Monthly billing determinants per household (energy per TOU tier), from the shares.
    ///
    /// Shows per-household data: this command runs as the operator console, which holds the
    /// household-data permission. Prints which stores agreed and names a lying store.
    Bill {
        /// Data directory written by the head-end or the demo.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Month to bill, UTC, as YYYY-MM.
        #[arg(long)]
        month: Month,
        /// Only this meter (repeat for several).
        #[arg(long = "meter")]
        meters: Vec<u64>,
        /// Households shown at most (0: all).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// A region's energy total for a day and each of its 96 intervals, from the shares.
    ///
    /// Runs with aggregate permission only: a group of fewer households than the vault's
    /// minimum group size is refused. Without --day: one total per stored day.
    Totals {
        /// Data directory written by the head-end or the demo.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Region number.
        #[arg(long)]
        region: u32,
        /// Day, UTC, as YYYY-MM-DD.
        #[arg(long, value_parser = parse_day)]
        day: Option<TimeRange>,
    },
    /// One meter's interval readings, each reconstructed from the shares.
    ///
    /// Shows per-household data: this command runs as the operator console, which holds the
    /// household-data permission. Without --day: every stored reading of the meter.
    Readings {
        /// Data directory written by the head-end or the demo.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Meter id.
        #[arg(long)]
        meter: u64,
        /// Day, UTC, as YYYY-MM-DD.
        #[arg(long, value_parser = parse_day)]
        day: Option<TimeRange>,
    },
    /// Maintenance of the share stores.
    Vault {
        /// Data directory written by the head-end or the demo.
        #[arg(long, default_value = DEFAULT_DATA_DIR, global = true)]
        data: PathBuf,
        /// What to do.
        #[command(subcommand)]
        op: VaultOp,
    },
}

/// `gridguard vault …` operations.
#[derive(Subcommand, Debug)]
pub enum VaultOp {
    /// Re-randomise the stored shares without reconstructing any reading.
    ///
    /// Fresh shares of zero are added inside each store. Needs every store available.
    Refresh {
        /// First day, UTC, YYYY-MM-DD (default: the first stored).
        #[arg(long, value_parser = parse_day)]
        from: Option<TimeRange>,
        /// Last day included, UTC, YYYY-MM-DD (default: the last stored).
        #[arg(long, value_parser = parse_day)]
        to: Option<TimeRange>,
    },
    /// Rebuild a lost or damaged store from the other two.
    ///
    /// Only the share columns the rebuilt store holds are copied; no reading is reconstructed.
    Repair {
        /// The store, 1 to 3.
        #[arg(long)]
        store: usize,
    },
    /// Compare every store's per-day sums and name a store that lies.
    ///
    /// Exit status 1 unless all is well.
    Check,
    /// Each store's state, share rows and outbox backlog.
    Status,
}

fn parse_day(s: &str) -> Result<TimeRange, String> {
    TimeRange::parse_day(s).map_err(|e| e.to_string())
}

/// Runs one vault command, printing its report; the exit status says whether all was well.
///
/// # Errors
/// When the vault cannot be opened or the query fails.
pub fn run(command: VaultCommand) -> anyhow::Result<ExitCode> {
    let open = |data: &PathBuf| -> anyhow::Result<Vault> {
        DataDir::new(data)
            .open_vault()
            .with_context(|| format!("opening the vault in {}", data.display()))
    };
    let (text, ok) = match command {
        VaultCommand::Bill {
            data,
            month,
            meters,
            limit,
        } => {
            let mut vault = open(&data)?;
            let filter = (!meters.is_empty()).then_some(meters.as_slice());
            (bill_report(&mut vault, month, filter, limit)?, true)
        }
        VaultCommand::Totals { data, region, day } => {
            let mut vault = open(&data)?;
            totals_text(&mut vault, region, day)?
        }
        VaultCommand::Readings { data, meter, day } => {
            let mut vault = open(&data)?;
            (readings_report(&mut vault, meter, day)?, true)
        }
        VaultCommand::Vault { data, op } => {
            let mut vault = open(&data)?;
            match op {
                VaultOp::Refresh { from, to } => {
                    let range = TimeRange::new(
                        from.map_or(TimeRange::ALL.start, |d| d.start),
                        to.map_or(TimeRange::ALL.end, |d| d.end),
                    );
                    (refresh_report(&mut vault, range)?, true)
                }
                VaultOp::Repair { store } => (repair_report(&mut vault, store)?, true),
                VaultOp::Check => check_report(&mut vault)?,
                VaultOp::Status => (status_report(&mut vault)?, true),
            }
        }
    };
    print!("{text}");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Store numbers as shown to people (1-based).
fn numbered(stores: &[usize]) -> String {
    stores
        .iter()
        .map(|s| (s + 1).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A vault error, with store numbers shown 1-based where the error names stores.
fn cli_error(e: VaultError) -> anyhow::Error {
    match e {
        VaultError::Inconsistent { suspects } => anyhow::anyhow!(
            "the stores disagree and the liar cannot be singled out: one of stores {} returned \
             wrong values (run `gridguard vault check`)",
            numbered(&suspects)
        ),
        other => anyhow::Error::new(other),
    }
}

/// One line describing how far an answer was checked across stores.
pub fn integrity_line(i: &Integrity) -> String {
    let mut agreed: Vec<usize> = i
        .stores_used
        .iter()
        .copied()
        .filter(|s| !i.lying_stores.contains(s))
        .collect();
    agreed.sort_unstable();
    let mut line = format!("integrity: stores {} answered", numbered(&agreed));
    if i.checked {
        line.push_str(" and agreed (checked on redundant shares)");
    } else {
        line.push_str(" (no redundant shares to check against)");
    }
    for liar in &i.lying_stores {
        let _ = write!(
            line,
            "; STORE {} LIED (its values disagree with the others; left out of the answer)",
            liar + 1
        );
    }
    line
}

/// The billing determinants of `month`: one line per household (energy per TOU tier and in
/// total, readings present), reconstructed from the shares with the household-data
/// permission, then the integrity result. `meters` restricts the households shown (a meter
/// without readings in the month is listed as such); at most `limit` lines are printed
/// (0: all).
///
/// # Errors
/// When the vault cannot answer (too few stores, stores disagreeing without a single culprit).
pub fn bill_report(
    vault: &mut Vault,
    month: Month,
    meters: Option<&[u64]>,
    limit: usize,
) -> anyhow::Result<String> {
    let bill = vault
        .bill(month, &Caller::with_household_data())
        .map_err(cli_error)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "billing determinants for {month} (UTC), energy in Wh per TOU tier, reconstructed from the shares \
         (operator console: household-data permission)"
    );
    let mut header = format!("{:>12}", "meter");
    for t in 0..TIERS {
        let _ = write!(header, " {:>10}", format!("tier {t}"));
    }
    let _ = write!(header, " {:>12} {:>9}", "total", "intervals");
    let _ = writeln!(out, "{header}");
    let selected: Vec<_> = match meters {
        Some(wanted) => wanted
            .iter()
            .map(|m| (m, bill.lines.iter().find(|l| l.meter == *m)))
            .collect(),
        None => bill.lines.iter().map(|l| (&l.meter, Some(l))).collect(),
    };
    let shown = if limit == 0 {
        selected.len()
    } else {
        limit.min(selected.len())
    };
    for (meter, line) in selected.iter().take(shown) {
        match line {
            Some(l) => {
                let mut row = format!("{:>12}", l.meter);
                for wh in l.tier_wh {
                    let _ = write!(row, " {wh:>10}");
                }
                let total = l.tier_wh.iter().fold(0u64, |a, &v| a.wrapping_add(v));
                let _ = write!(row, " {total:>12} {:>9}", l.readings);
                let _ = writeln!(out, "{row}");
            }
            None => {
                let _ = writeln!(out, "{meter:>12} no readings stored in {month}");
            }
        }
    }
    if shown < selected.len() {
        let _ = writeln!(
            out,
            "... {} more household(s) (--limit 0 shows all)",
            selected.len() - shown
        );
    }
    let _ = writeln!(
        out,
        "{} household(s) with readings in {month}",
        bill.lines.len()
    );
    let _ = writeln!(out, "{}", integrity_line(&bill.integrity));
    Ok(out)
}

/// A region's totals with aggregate permission only: with `day`, the day's total and its
/// interval totals (one line per interval with readings); without, one total per stored day.
/// A group of fewer households than the minimum group size is refused, and the refusal is the
/// report.
///
/// # Errors
/// When the vault cannot answer for another reason than the group size.
pub fn totals_report(
    vault: &mut Vault,
    region: u32,
    day: Option<TimeRange>,
) -> anyhow::Result<String> {
    Ok(totals_text(vault, region, day)?.0)
}

/// The totals report, and whether it was answered (false: refused).
fn totals_text(
    vault: &mut Vault,
    region: u32,
    day: Option<TimeRange>,
) -> anyhow::Result<(String, bool)> {
    let caller = Caller::aggregates_only();
    let mut out = String::new();
    let refused = |out: &mut String, e: &VaultError| {
        if let VaultError::GroupTooSmall {
            start, meters, min, ..
        } = e
        {
            let _ = writeln!(
                out,
                "REFUSED: region {region} at {}: {meters} household(s), below the minimum group size {min} \
                 (a total over so few households would reveal a household's consumption)",
                format_utc(*start)
            );
        }
    };
    let Some(day) = day else {
        let _ = writeln!(
            out,
            "region {region}: total energy per stored day (UTC), reconstructed from the shares"
        );
        match vault.region_totals(Some(region), TimeRange::ALL, Granularity::Day, &caller) {
            Ok(t) => {
                let _ = writeln!(
                    out,
                    "{:>10} {:>14} {:>10} {:>9}",
                    "day", "energy Wh", "households", "readings"
                );
                for r in &t.rows {
                    let _ = writeln!(
                        out,
                        "{:>10} {:>14} {:>10} {:>9}",
                        format_day(r.start),
                        r.wh,
                        r.meters,
                        r.readings
                    );
                }
                if t.rows.is_empty() {
                    let _ = writeln!(out, "no readings stored for region {region}");
                }
                let _ = writeln!(out, "{}", integrity_line(&t.integrity));
                return Ok((out, true));
            }
            Err(e @ VaultError::GroupTooSmall { .. }) => {
                refused(&mut out, &e);
                return Ok((out, false));
            }
            Err(e) => return Err(cli_error(e)),
        }
    };
    let _ = writeln!(
        out,
        "region {region}, {} (UTC): total energy, reconstructed from the shares",
        format_day(day.start)
    );
    let daily = match vault.region_totals(Some(region), day, Granularity::Day, &caller) {
        Ok(t) => t,
        Err(e @ VaultError::GroupTooSmall { .. }) => {
            refused(&mut out, &e);
            return Ok((out, false));
        }
        Err(e) => return Err(cli_error(e)),
    };
    let Some(total) = daily.rows.first() else {
        let _ = writeln!(out, "no readings stored for region {region} on that day");
        return Ok((out, true));
    };
    let intervals = match vault.region_totals(Some(region), day, Granularity::Interval, &caller) {
        Ok(t) => t,
        Err(e @ VaultError::GroupTooSmall { .. }) => {
            let _ = writeln!(
                out,
                "day total: {} Wh from {} household(s), {} readings",
                total.wh, total.meters, total.readings
            );
            refused(&mut out, &e);
            return Ok((out, false));
        }
        Err(e) => return Err(cli_error(e)),
    };
    let _ = writeln!(
        out,
        "day total: {} Wh from {} household(s), {} readings",
        total.wh, total.meters, total.readings
    );
    let _ = writeln!(
        out,
        "{:>16} {:>12} {:>10}",
        "interval", "energy Wh", "households"
    );
    for r in &intervals.rows {
        let _ = writeln!(
            out,
            "{:>16} {:>12} {:>10}",
            format_utc(r.start),
            r.wh,
            r.meters
        );
    }
    let _ = writeln!(
        out,
        "{} of 96 intervals with readings",
        intervals.rows.len()
    );
    let mut integrity = daily.integrity.clone();
    for l in &intervals.integrity.lying_stores {
        if !integrity.lying_stores.contains(l) {
            integrity.lying_stores.push(*l);
        }
    }
    integrity.checked &= intervals.integrity.checked;
    let _ = writeln!(out, "{}", integrity_line(&integrity));
    Ok((out, true))
}

/// One meter's interval readings (of `day`, or all stored), each reconstructed from the shares
/// with the household-data permission, and their total, then the integrity result.
///
/// # Errors
/// When the vault cannot answer.
pub fn readings_report(
    vault: &mut Vault,
    meter: u64,
    day: Option<TimeRange>,
) -> anyhow::Result<String> {
    let range = day.unwrap_or(TimeRange::ALL);
    let r = vault
        .readings(meter, range, &Caller::with_household_data())
        .map_err(cli_error)?;
    let mut out = String::new();
    let when = day.map_or_else(|| "all stored days".to_string(), |d| format_day(d.start));
    let _ = writeln!(
        out,
        "meter {meter}, {when} (UTC): interval readings reconstructed from the shares \
         (operator console: household-data permission)"
    );
    let _ = writeln!(out, "{:>16} {:>10}", "interval", "energy Wh");
    let mut total = 0u64;
    for reading in &r.readings {
        total = total.wrapping_add(reading.wh);
        let _ = writeln!(
            out,
            "{:>16} {:>10}",
            format_utc(reading.interval_start),
            reading.wh
        );
    }
    let _ = writeln!(out, "{} reading(s), {total} Wh in total", r.readings.len());
    let _ = writeln!(out, "{}", integrity_line(&r.integrity));
    Ok(out)
}

/// Re-randomises the shares of `range` and says how many rows were refreshed.
///
/// # Errors
/// When a store is unavailable (a refresh needs all of them) or fails.
pub fn refresh_report(vault: &mut Vault, range: TimeRange) -> anyhow::Result<String> {
    let rows = vault.refresh(range).map_err(cli_error)?;
    Ok(format!(
        "refreshed {rows} share row(s) in each of the {} stores: fresh shares of zero added in every store; \
         no reading was reconstructed, and old copies of one store no longer combine with the others\n",
        vault.store_count()
    ))
}

/// Rebuilds store `store` (1-based) from the others and reports what was written.
///
/// # Errors
/// When `store` is not 1..=3 or the repair fails.
pub fn repair_report(vault: &mut Vault, store: usize) -> anyhow::Result<String> {
    let count = vault.store_count();
    if store == 0 || store > count {
        anyhow::bail!("--store must be 1 to {count}");
    }
    let r = vault.repair(store - 1).map_err(cli_error)?;
    let mut out = format!(
        "store {store} rebuilt: {} share row(s) copied from the columns the other stores hold \
         (no reading reconstructed)\n",
        r.rows
    );
    if r.missing > 0 {
        let _ = writeln!(
            out,
            "WARNING: {} row(s) could not be rebuilt (a helper store lacks them)",
            r.missing
        );
    }
    Ok(out)
}

fn state_text(s: &StoreStatus) -> String {
    match &s.state {
        StoreState::Healthy => "healthy".into(),
        StoreState::CatchingUp => "catching up from its outbox".into(),
        StoreState::Lost => "LOST (empty): run `gridguard vault repair --store N`".into(),
        StoreState::Unavailable(e) => format!("UNAVAILABLE: {e}"),
    }
}

fn rows_text(s: &StoreStatus) -> String {
    s.rows.map_or_else(|| "-".into(), |r| r.to_string())
}

/// The report of [`Vault::check`].
pub fn render_check(report: &CheckReport) -> String {
    let mut out = String::new();
    for s in &report.stores {
        let _ = writeln!(
            out,
            "store {} {:<40} {:>10} rows  {}",
            s.index + 1,
            s.location,
            rows_text(s),
            state_text(s)
        );
    }
    let _ = writeln!(
        out,
        "{} day(s) compared across stores{}",
        report.days_checked,
        if report.verified {
            ""
        } else {
            " (no redundancy available: not verified)"
        }
    );
    for l in &report.lying_stores {
        let _ = writeln!(
            out,
            "STORE {} LIES: its sums or counts disagree with the other stores",
            l + 1
        );
    }
    if report.unresolved_days > 0 {
        let _ = writeln!(
            out,
            "{} day(s) disagree without a single culprit: one of stores {} is wrong",
            report.unresolved_days,
            numbered(&report.suspects)
        );
    }
    let _ = writeln!(
        out,
        "{}",
        if report.all_good() {
            "check: all good"
        } else {
            "check: PROBLEMS FOUND"
        }
    );
    out
}

/// Runs [`Vault::check`] and renders it; also returns whether all was well.
///
/// # Errors
/// When too few stores answer.
pub fn check_report(vault: &mut Vault) -> anyhow::Result<(String, bool)> {
    let report = vault.check().map_err(cli_error)?;
    Ok((render_check(&report), report.all_good()))
}

/// Each store's state, share rows and outbox backlog, without comparing sums.
///
/// # Errors
/// When an outbox cannot be read.
pub fn status_report(vault: &mut Vault) -> anyhow::Result<String> {
    let status = vault.status();
    let outbox = vault.outbox_rows().map_err(cli_error)?;
    let mut out = format!(
        "vault: {}, {} stores\n",
        vault.scheme(),
        vault.store_count()
    );
    for s in &status {
        let _ = writeln!(
            out,
            "store {} {:<40} {:>10} rows  outbox {:>8} rows  {}",
            s.index + 1,
            s.location,
            rows_text(s),
            outbox.get(s.index).copied().unwrap_or(0),
            state_text(s)
        );
    }
    Ok(out)
}
