//! Memory per simulated meter: builds N meters (default 100,000), advances each a simulated
//! 30 days, and prints the resident-set growth per meter (from /proc/self/statm) beside the
//! anchor measured in the same run, the raw load-profile bytes per meter.
//!
//! `cargo run --release -p gridguard-meter --example footprint -- [meters] [step_s]`

use std::sync::Arc;
use std::time::Instant;

use gridguard_meter::{Meter, MeterConfig, TouCalendar};

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident * 4_096)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let step: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let start = 1_780_272_000u64; // 2026-06-01 00:00
    let days = 30u64;
    let cal = Arc::new(TouCalendar::residential());
    let before = rss_bytes().unwrap_or(0);

    let t0 = Instant::now();
    let mut meters: Vec<Meter> = (0..n as u64)
        .map(|i| {
            Meter::new(
                MeterConfig::new(i, i.wrapping_mul(0x9E37_79B9)).with_step(step),
                cal.clone(),
                start,
            )
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in meters.chunks_mut(chunk) {
            s.spawn(move || {
                for m in part {
                    // Advance day by day, as a driver would.
                    for d in 1..=days {
                        if m.advance(start + d * 86_400).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    let elapsed = t0.elapsed();
    let after = rss_bytes().unwrap_or(0);

    let lp_bytes: usize = meters.iter().map(|m| m.load_profile().data_bytes()).sum();
    let heap: usize = meters.iter().map(Meter::heap_bytes).sum();
    let intervals: usize = meters.iter().map(|m| m.load_profile().len()).sum();
    let per = |x: u64| x as f64 / n as f64;
    println!("meters: {n}, simulated days: {days}, model step: {step} s, threads: {threads}");
    println!(
        "size_of::<Meter>():                 {:>8} B",
        std::mem::size_of::<Meter>()
    );
    println!(
        "heap per meter (own count):         {:>8.0} B",
        per(heap as u64)
    );
    println!(
        "RSS growth per meter (measured):    {:>8.0} B   (target <= 8192 B)",
        per(after.saturating_sub(before))
    );
    println!(
        "anchor: raw load-profile bytes:     {:>8.0} B   for {:.0} intervals per meter",
        per(lp_bytes as u64),
        per(intervals as u64)
    );
    println!(
        "simulation: {:.1} s, {:.0} meter-days/s",
        elapsed.as_secs_f64(),
        (n as u64 * days) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "projected RSS for 1,000,000 meters:  {:.2} GiB",
        per(after.saturating_sub(before)) * 1e6 / (1u64 << 30) as f64
    );
}
