//! The RADIUS crowd: meters authenticate with EAP-PSK over RADIUS against the in-process AAA server on
//! loopback, each checking that the MS-MPPE keys carry the MSK it derived.
#![allow(clippy::unwrap_used)]

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulated_meter_authenticates() {
    let report = gridguard::radius_crowd::run(300, 64, false).await.unwrap();
    assert_eq!(report.meters, 300);
    assert_eq!(report.succeeded, 300);
    assert_eq!(report.failed, 0);
}
