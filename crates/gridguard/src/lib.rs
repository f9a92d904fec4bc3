//! gridguard's servers and tools, as a library so that the integration tests and the benchmark drive
//! exactly what the command line runs.

pub mod aaa;
pub mod amso_cli;
pub mod compact_rng;
pub mod datadir;
pub mod demo;
pub mod eap_client;
pub mod event_log;
pub mod fleet;
pub mod fleet_cli;
pub mod headend_service;
pub mod ingest_load;
pub mod inspect;
pub mod meter_agent;
pub mod pana_cli;
pub mod pana_paa;
pub mod pana_pac;
pub mod radius_crowd;
pub mod sim_clock;
pub mod simulate;
pub mod udp_driver;
pub mod vault_cli;
