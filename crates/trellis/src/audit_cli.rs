//! `trellis audit verify` (the archives in object storage, then the table) and `trellis audit
//! archive` (moves old entries to object storage) in the deployment's database and storage. Both
//! check the chain under the MAC keys (`audit.keys`; all-in-one, `data/secrets.toml`).

use anyhow::Context;
use platform::db::Database;
use time::OffsetDateTime;

use crate::config::Settings;

async fn open(settings: &Settings) -> anyhow::Result<worker::audit::AuditLog> {
    let url = settings.database_url();
    let db = Database::connect(&url).await.context("cannot open the database")?;
    if settings.migrate_on_start {
        db.migrate(&worker::MIGRATIONS).await.context("migration failed")?;
    }
    // The chain is checked under the MAC keys, which the database does not hold: `audit.keys`, or
    // all-in-one those in `data/secrets.toml`.
    Ok(worker::audit::AuditLog::keyed(db, crate::secrets::audit_keys_offline(settings)?))
}

/// Prints the outcome; an error (exit code 1) when the chain or an archive is broken.
pub async fn verify(settings: &Settings, skip_archives: bool) -> anyhow::Result<()> {
    let log = open(settings).await?;
    let objects = if skip_archives { None } else { Some(crate::app::object_storage(settings)?.0) };
    let v = log.verify_all(objects.as_deref()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    #[allow(clippy::print_stdout)]
    match (v.broken_archive, v.first_broken) {
        (None, None) => {
            let archives =
                if skip_archives { "archives skipped".to_string() } else { format!("{} archives", v.archives_checked) };
            println!("ok: {} entries checked ({archives}), the chain is intact", v.checked);
            Ok(())
        }
        (Some(a), entry) => {
            let at = entry.map(|b| format!(" at seq {}: {}", b.seq, b.reason)).unwrap_or_default();
            println!(
                "broken archive {} (seq {}-{}): {}{at}; {} archives and {} entries before it are intact",
                a.object_key, a.first_seq, a.last_seq, a.reason, v.archives_checked, v.checked
            );
            anyhow::bail!("the audit archive {} is broken", a.object_key)
        }
        (None, Some(b)) => {
            let id = b.event_id.map_or_else(|| "-".to_string(), |id| id.to_string());
            println!("broken at seq {} (event {id}): {}; {} entries before it are intact", b.seq, b.reason, v.checked);
            anyhow::bail!("the audit log's hash chain is broken at seq {}", b.seq)
        }
    }
}

/// Archives the entries older than `older_than_days` days, `batch` per object, and prints what moved.
pub async fn archive(settings: &Settings, older_than_days: u32, batch: u32) -> anyhow::Result<()> {
    let log = open(settings).await?;
    let (objects, _) = crate::app::object_storage(settings)?;
    let cutoff = OffsetDateTime::now_utc() - time::Duration::days(i64::from(older_than_days));
    let report = log.archive(objects.as_ref(), cutoff, batch).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    #[allow(clippy::print_stdout)]
    {
        for key in &report.object_keys {
            println!("archived {key}");
        }
        println!("{} entries archived in {} objects", report.entries, report.archives);
    }
    Ok(())
}
