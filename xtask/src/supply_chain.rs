//! The supply-chain check (`cargo xtask supply-chain`, part of `cargo xtask ci`; docs/SECURITY.md
//! SC-1): `cargo deny` over the Rust dependencies (advisories from the vendored RustSec snapshot in
//! `supply-chain/advisory-db`, licences, bans, sources; `deny.toml`), then the audit of the web
//! app's production dependencies (`supply-chain/npm-audit.mjs`). Nothing but crates.io (for
//! `cargo fetch`) and the npm registry (for `npm audit`, when it answers) is reached.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::util::{Result, cmd, root, run, step};

/// The folder cargo-deny 0.20 opens for its default database URL under `db-path`: the URL's last
/// segment and its XxHash64 (seed 0xca80de71). Another cargo-deny version could name it otherwise:
/// it then fails loudly ("cannot change to …advisory-db-…"), and this constant follows the pin
/// (`tools::CARGO_DENY_VERSION`).
pub const ADVISORY_DB_DIR: &str = "advisory-db-3157b0e258782691";

pub fn check() -> Result {
    let root = root();
    step("supply chain: cargo deny (advisories from the vendored snapshot, licences, bans, sources)");
    // cargo-deny reads every crate's manifest and licence files offline: download them first.
    run(cmd("cargo").args(["fetch", "--locked"]).current_dir(&root))?;
    let dbs = crate::target_dir(&root).join("advisory-dbs");
    let date = stage_advisory_db(&root.join("supply-chain/advisory-db"), &dbs)?;
    eprintln!("advisory database: the vendored snapshot of {date}");
    run(cmd("cargo")
        .args(["deny", "--offline", "--locked", "check", "--hide-inclusion-graph"])
        .env("DENY_ADVISORY_DBS", &dbs)
        .current_dir(&root))?;

    step("supply chain: the web app's production dependencies (supply-chain/npm-audit.mjs)");
    run(cmd("node").arg("supply-chain/npm-audit.mjs").current_dir(&root))
}

/// Copies the vendored database to `<dbs>/ADVISORY_DB_DIR` the way cargo-deny expects a fetched
/// one: with a `.git/FETCH_HEAD` whose modification time is the snapshot's date, so cargo-deny's
/// staleness limit (`maximum-db-staleness`) counts from when the advisories were published, not
/// from this run. Returns that date.
pub fn stage_advisory_db(vendored: &Path, dbs: &Path) -> Result<String> {
    let snapshot = fs::read_to_string(vendored.join("SNAPSHOT.md"))
        .map_err(|e| format!("{}: {e}", vendored.join("SNAPSHOT.md").display()))?;
    let date = snapshot_date(&snapshot)
        .ok_or("supply-chain/advisory-db/SNAPSHOT.md has no `Snapshot-Date: YYYY-MM-DD` line")?;
    let when = system_time_of(date).ok_or_else(|| format!("Snapshot-Date {date} is not a date"))?;
    let dest = dbs.join(ADVISORY_DB_DIR);
    let _ = fs::remove_dir_all(&dest);
    copy_dir(&vendored.join("crates"), &dest.join("crates"))
        .map_err(|e| format!("staging the advisory database: {e}"))?;
    fs::create_dir_all(dest.join(".git")).map_err(|e| e.to_string())?;
    let fetch_head = fs::File::create(dest.join(".git/FETCH_HEAD")).map_err(|e| e.to_string())?;
    fetch_head.set_modified(when).map_err(|e| e.to_string())?;
    Ok(date.to_string())
}

/// The `Snapshot-Date:` of SNAPSHOT.md.
fn snapshot_date(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("Snapshot-Date:")).map(str::trim)
}

/// Midnight UTC of `YYYY-MM-DD`.
fn system_time_of(date: &str) -> Option<SystemTime> {
    let mut parts = date.split('-');
    let (y, m, d): (i64, i64, i64) =
        (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(days * 86_400))
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_dates_become_midnight_utc() {
        assert_eq!(system_time_of("1970-01-01"), Some(SystemTime::UNIX_EPOCH));
        let secs =
            |d| system_time_of(d).and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs());
        assert_eq!(secs("2026-08-21"), Some(1_787_270_400));
        assert_eq!(secs("2000-03-01"), Some(951_868_800));
        for bad in ["2026-13-01", "2026-08", "2026-08-21-1", "yesterday", "1969-12-31"] {
            assert_eq!(system_time_of(bad), None, "{bad}");
        }
        assert_eq!(snapshot_date("# x\nSnapshot-Date: 2026-08-21\n"), Some("2026-08-21"));
    }

    #[test]
    fn the_vendored_snapshot_is_staged_with_its_date() {
        let dbs = std::env::temp_dir().join(format!("xtask-advisory-test-{}", std::process::id()));
        let date = stage_advisory_db(&root().join("supply-chain/advisory-db"), &dbs).expect("stage");
        let staged = dbs.join(ADVISORY_DB_DIR);
        let modified = fs::metadata(staged.join(".git/FETCH_HEAD")).and_then(|m| m.modified()).expect("FETCH_HEAD");
        assert_eq!(Some(modified), system_time_of(&date));
        // The whole database, not a handful of entries.
        let advisories = fs::read_dir(staged.join("crates")).expect("crates").count();
        assert!(advisories > 500, "{advisories} crates with advisories");
        let _ = fs::remove_dir_all(&dbs);
    }
}
