//! `KeyLog::from_env`: off unless `GRIDGUARD_KEYLOG` names a file. Alone in its test binary
//! because it changes the process environment.
#![cfg(feature = "keylog")]

use gridguard_keys::keylog::{KeyLog, KEYLOG_ENV};

#[test]
fn key_log_is_off_unless_the_variable_names_a_file() {
    std::env::remove_var(KEYLOG_ENV);
    assert!(KeyLog::from_env().unwrap().is_none());
    std::env::set_var(KEYLOG_ENV, "");
    assert!(KeyLog::from_env().unwrap().is_none());

    let path =
        std::env::temp_dir().join(format!("gridguard-keylog-env-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&path);
    std::env::set_var(KEYLOG_ENV, &path);
    let log = KeyLog::from_env().unwrap().expect("enabled");
    assert_eq!(log.path(), path);
    assert!(path.exists());
    drop(log);
    std::fs::remove_file(&path).unwrap();

    // A path that cannot be opened is an error, not a silent "off".
    std::env::set_var(
        KEYLOG_ENV,
        std::env::temp_dir().join("no-such-dir-gridguard/x"),
    );
    assert!(matches!(
        KeyLog::from_env(),
        Err(gridguard_keys::Error::KeyLog(_))
    ));
    std::env::remove_var(KEYLOG_ENV);
}
