//! `trellis audit verify`: checks the audit log's hash chain in the deployment's database.

use anyhow::Context;
use platform::db::Database;

use crate::config::Settings;

/// Prints the outcome; an error (exit code 1) when the chain is broken.
pub async fn verify(settings: &Settings) -> anyhow::Result<()> {
    let url = settings.database_url();
    let db = Database::connect(&url).await.context("cannot open the database")?;
    db.migrate(&worker::MIGRATIONS).await.context("migration failed")?;
    let v = worker::audit::AuditLog::new(db).verify().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    match v.first_broken {
        None => {
            #[allow(clippy::print_stdout)]
            {
                println!("ok: {} entries checked, the chain is intact", v.checked);
            }
            Ok(())
        }
        Some(b) => {
            let id = b.event_id.map_or_else(|| "-".to_string(), |id| id.to_string());
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "broken at seq {} (event {id}): {}; {} entries before it are intact",
                    b.seq, b.reason, v.checked
                );
            }
            anyhow::bail!("the audit log's hash chain is broken at seq {}", b.seq)
        }
    }
}
