//! Opt-in key log file for debugging with Wireshark (like `SSLKEYLOGFILE` for TLS).
//!
//! **Off by default.** It is enabled only by the `GRIDGUARD_KEYLOG=FILE` environment variable
//! ([`KeyLog::from_env`]) or by a driver's `--keylog FILE` option ([`KeyLog::open`]); opening
//! it emits a `tracing` warning, because anyone who can read the file can read and forge the
//! traffic protected by the logged keys. This is the only place in gridguard where key
//! material leaves memory. The module does file I/O and sits behind the default feature
//! `keylog`; the rest of the crate stays sans-IO.
//!
//! # Format
//!
//! The file is appended to. Each key is two lines: a comment line starting with `#` that says
//! what the key is, then a line in the exact format of Wireshark's C12.22 decryption table
//! (the UAT file `c1222_decryption_table`, fields "Key ID" in hexadecimal and "Key" as 16
//! octets of unquoted hex):
//!
//! ```text
//! # gridguard keylog meter="meter-0042" app=c1222-data generation=2 key-id=0x2a pana-session-id=0x00000007 pana-key-id=0x00000002 expires-in=3900s logged-at-unix=1790000000
//! "2a",00112233445566778899aabbccddeeff
//! ```
//!
//! Wireshark skips `#` lines in UAT files, so the key log *is* a valid table; to install it:
//!
//! ```text
//! grep -v '^#' keylog.txt > ~/.config/wireshark/c1222_decryption_table
//! ```
//!
//! (or copy the whole file there, comments included), or pass a single key on the command
//! line: `tshark -o 'uat:c1222_decryption_table:"2a",00112233445566778899aabbccddeeff'`.
//! Note that Wireshark's key field must *not* be quoted: a quoted value is taken as 32 ASCII
//! characters and refused ("Invalid key size; must be 16 bytes").
//!
//! Wireshark's table is keyed by the one-octet key id alone, not by meter, so when a capture
//! holds several meters whose keys share an id, keep only the lines of the meter of interest
//! (`grep -A1 'meter="meter-0042"' keylog.txt | grep '^"'`). Ids of different applications of one
//! meter never collide (see [`crate::KeyId`]).

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::key::{AppKey, Application, KeyId};
use crate::ring::{GenerationInfo, KeyRing};

/// The environment variable that enables the key log: `GRIDGUARD_KEYLOG=FILE`.
pub const KEYLOG_ENV: &str = "GRIDGUARD_KEYLOG";

/// An open key log file. See the [module documentation](self) for the format.
pub struct KeyLog {
    path: PathBuf,
    file: File,
}

impl fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl KeyLog {
    /// Opens the file named by `GRIDGUARD_KEYLOG`, or returns `Ok(None)` when the variable is
    /// unset or empty (the default: no key log).
    ///
    /// # Errors
    /// [`Error::KeyLog`] when the file cannot be opened.
    pub fn from_env() -> Result<Option<KeyLog>, Error> {
        match std::env::var_os(KEYLOG_ENV) {
            Some(path) if !path.is_empty() => KeyLog::open(PathBuf::from(path)).map(Some),
            _ => Ok(None),
        }
    }

    /// Opens (creating if needed, mode 0600 on Unix) and appends to the key log at `path`,
    /// and warns through `tracing` that keys will be written.
    ///
    /// # Errors
    /// [`Error::KeyLog`] when the file cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<KeyLog, Error> {
        let path = path.as_ref().to_path_buf();
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(&path)?;
        tracing::warn!(
            path = %path.display(),
            "key log enabled: session keys will be written in clear to this file; \
             use for debugging only and delete it afterwards"
        );
        Ok(KeyLog { path, file })
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one key (comment line + table line) and flushes.
    ///
    /// `meter` names the meter in the comment line (control characters and quotes are
    /// escaped); `now` is only used to state the remaining lifetime.
    ///
    /// # Errors
    /// [`Error::KeyLog`] when the write fails.
    pub fn log_key(
        &mut self,
        meter: &dyn fmt::Display,
        app: Application,
        key_id: KeyId,
        key: &AppKey,
        info: &GenerationInfo,
        now: Instant,
    ) -> Result<(), Error> {
        let logged_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let entry = format_entry(meter, app, key_id, key, info, now, logged_at);
        self.file.write_all(entry.as_bytes())?;
        self.file.flush()?;
        Ok(())
    }

    /// Appends the three keys of the current generation of `ring` (nothing if it has no
    /// unexpired current generation). Returns how many keys were written.
    ///
    /// # Errors
    /// [`Error::KeyLog`] when the write fails.
    pub fn log_current(
        &mut self,
        meter: &dyn fmt::Display,
        ring: &KeyRing,
        now: Instant,
    ) -> Result<usize, Error> {
        let Some(info) = ring.current().cloned() else {
            return Ok(0);
        };
        let mut written = 0;
        for app in Application::ALL {
            if let Ok(k) = ring.sending_key(app, now) {
                self.log_key(meter, app, k.key_id, k.key, &info, now)?;
                written += 1;
            }
        }
        Ok(written)
    }
}

/// The Wireshark `c1222_decryption_table` line of a key, without the line end:
/// `"<key id in hex>",<32 hex digits>`.
pub fn uat_line(key_id: KeyId, key: &AppKey) -> String {
    format!("\"{:02x}\",{}", key_id.value(), hex::encode(key.as_bytes()))
}

fn format_entry(
    meter: &dyn fmt::Display,
    app: Application,
    key_id: KeyId,
    key: &AppKey,
    info: &GenerationInfo,
    now: Instant,
    logged_at_unix: u64,
) -> String {
    let meter_text: String = meter.to_string().escape_default().collect();
    let expires_in = info.expires_at.saturating_duration_since(now).as_secs();
    let mut out = String::with_capacity(256);
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# gridguard keylog meter=\"{meter_text}\" app={app} generation={} key-id={key_id} \
         pana-session-id={:#010x} pana-key-id={:#010x} expires-in={expires_in}s \
         logged-at-unix={logged_at_unix}",
        info.generation, info.pana_session_id, info.pana_key_id,
    );
    out.push_str(&uat_line(key_id, key));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn info(now: Instant) -> GenerationInfo {
        GenerationInfo {
            generation: 2,
            pana_session_id: 7,
            pana_key_id: 2,
            key_ids: [
                (Application::C1222Data, KeyId(0x2a)),
                (Application::DemandResponse, KeyId(0x41)),
                (Application::LinkLayer, KeyId(0x80)),
            ],
            created_at: now,
            expires_at: now + Duration::from_secs(3900),
        }
    }

    #[test]
    fn entry_is_comment_plus_uat_line() {
        let now = Instant::now();
        let key = AppKey::from_bytes([
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        let text = format_entry(
            &"meter-0042",
            Application::C1222Data,
            KeyId(0x0a),
            &key,
            &info(now),
            now,
            1_790_000_000,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            "# gridguard keylog meter=\"meter-0042\" app=c1222-data generation=2 key-id=0x0a \
             pana-session-id=0x00000007 pana-key-id=0x00000002 expires-in=3900s \
             logged-at-unix=1790000000"
        );
        assert_eq!(lines[1], "\"0a\",00112233445566778899aabbccddeeff");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn meter_name_cannot_inject_lines() {
        let now = Instant::now();
        let key = AppKey::from_bytes([1; 16]);
        let text = format_entry(
            &"evil\n\"ff\",00000000000000000000000000000000",
            Application::LinkLayer,
            KeyId(0x80),
            &key,
            &info(now),
            now,
            0,
        );
        assert_eq!(text.lines().count(), 2);
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 1);
        assert!(text.contains("meter=\"evil\\n\\\"ff\\\",000"));
    }
}
