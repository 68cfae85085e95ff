//! Archiving to object storage: old entries leave the table as gzip JSON Lines with their chain
//! hashes, oldest first and never the newest; verification continues from the newest archive and
//! checks the archives; an altered or deleted archive, or a table row altered after archiving, is
//! named; a crash between upload and commit leaves no hole.

use std::io::Read;

use platform::objects::{ObjectPath, ObjectStoreExt, PutPayload};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::{Backend, all, event, get};
use api::users::Role;
use axum::http::StatusCode;
use platform::bus::Event;
use platform::ids::new_id;
use worker::audit::{ARCHIVE_BATCH, RETENTION, archive_key};

test_support::backend_suite!(
    archive_then_verify,
    newest_entry_stays,
    altered_archive_is_named,
    deleted_archive_is_named,
    row_altered_after_archiving_is_named,
    crash_between_upload_and_commit_leaves_no_hole,
    broken_chain_is_not_archived,
    the_scheduled_job_archives_and_verify_holds,
);

fn days_ago(days: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() - Duration::days(days)
}

/// One year ago, as the job will run it.
fn cutoff() -> OffsetDateTime {
    OffsetDateTime::now_utc() - RETENTION
}

/// `old` entries from two years ago, then `new` recent ones, through the consumer.
async fn entries(b: &Backend, old: usize, new: usize) -> Vec<Event> {
    let w = b.worker();
    let mut out = Vec::new();
    for i in 0..old + new {
        let at = if i < old { days_ago(800 - i as i64) } else { days_ago(1) };
        let e = Event::new("task.created", new_id(), Some(new_id()), at, json!({"project_id": new_id(), "i": i}));
        assert!(w.handle(&e).await.unwrap());
        out.push(e);
    }
    out
}

async fn read_object(b: &Backend, key: &str) -> Vec<u8> {
    b.objects.get(&ObjectPath::from(key)).await.unwrap().bytes().await.unwrap().to_vec()
}

async fn archive_then_verify(b: &Backend) {
    let events = entries(b, 5, 2).await;
    let report = b.log().archive(b.objects.as_ref(), cutoff(), 2).await.unwrap();
    assert_eq!((report.archives, report.entries), (3, 5));
    assert_eq!(report.object_keys, [archive_key(1, 2), archive_key(3, 4), archive_key(5, 5)]);

    // The table keeps the recent entries; the archive holds the old ones, hashes included.
    let (items, _) = b.log().list(all()).await.unwrap();
    assert_eq!(items.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 6]);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&read_object(b, &archive_key(3, 4)).await[..]).read_to_string(&mut text).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0]["seq"].clone(), lines[0]["event_id"].clone()), (json!(3), json!(events[2].id)));
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    assert_eq!(lines[0]["data"]["i"], Value::Null, "only ids and descriptors, as in the table");
    assert_eq!(lines[0]["hash"].as_str().unwrap().len(), 64);

    let v = b.log().verify_all(Some(b.objects.as_ref())).await.unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!((v.checked, v.archives_checked), (7, 3));
    let table = b.log().verify().await.unwrap();
    assert!(table.ok && table.checked == 2, "the table's chain starts from the newest archive: {table:?}");

    // Nothing more is old enough; new entries keep chaining; verify still holds end to end.
    assert_eq!(b.log().archive(b.objects.as_ref(), cutoff(), ARCHIVE_BATCH).await.unwrap().entries, 0);
    assert!(b.worker().handle(&event("task.deleted", None, json!({}))).await.unwrap());
    let v = b.log().verify_all(Some(b.objects.as_ref())).await.unwrap();
    assert!(v.ok && v.checked == 8, "{v:?}");

    let (status, v) = get(b, Some(Role::Admin), "/api/admin/audit-log/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (v["ok"].clone(), v["checked"].clone(), v["archives_checked"].clone()),
        (json!(true), json!(8), json!(3))
    );
}

/// Only whole stretches leave, never the newest entry (appends chain to it).
async fn newest_entry_stays(b: &Backend) {
    entries(b, 4, 0).await;
    let report = b.log().archive(b.objects.as_ref(), OffsetDateTime::now_utc(), ARCHIVE_BATCH).await.unwrap();
    assert_eq!((report.archives, report.entries), (1, 3));
    let (items, _) = b.log().list(all()).await.unwrap();
    assert_eq!(items.iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);
    assert!(b.worker().handle(&event("task.deleted", None, json!({}))).await.unwrap());
    let (items, _) = b.log().list(all()).await.unwrap();
    assert_eq!(items[0].seq, 5);
    assert_eq!(items[0].prev_hash, items[1].hash);
    // An entry newer than the cutoff stops archiving even if older ones follow it.
    let w = b.worker();
    for at in [days_ago(1), days_ago(900), days_ago(900)] {
        assert!(w.handle(&Event::new("task.created", new_id(), None, at, json!({}))).await.unwrap());
    }
    let report = b.log().archive(b.objects.as_ref(), cutoff(), ARCHIVE_BATCH).await.unwrap();
    assert_eq!(report.object_keys, [archive_key(4, 4)], "seq 5 is recent: the old seq 7 and 8 wait behind it");
    let (items, _) = b.log().list(all()).await.unwrap();
    assert_eq!(items.iter().map(|e| e.seq).collect::<Vec<_>>(), [8, 7, 6, 5]);
    let v = b.log().verify_all(Some(b.objects.as_ref())).await.unwrap();
    assert!(v.ok && v.checked == 8 && v.archives_checked == 2, "{v:?}");
}

async fn altered_archive_is_named(b: &Backend) {
    entries(b, 5, 1).await;
    b.log().archive(b.objects.as_ref(), cutoff(), 2).await.unwrap();
    let key = archive_key(3, 4);
    let mut bytes = read_object(b, &key).await;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    b.objects.put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes)).await.unwrap();
    let v = b.log().verify_all(Some(b.objects.as_ref())).await.unwrap();
    assert!(!v.ok);
    let broken = v.broken_archive.clone().unwrap();
    assert_eq!((broken.object_key.as_str(), broken.reason.as_str()), (key.as_str(), "sha256_mismatch"));
    assert_eq!((broken.first_seq, broken.last_seq, v.archives_checked, v.checked), (3, 4, 1, 2));
    assert!(b.log().verify().await.unwrap().ok, "the table alone is intact");
    let (_, json) = get(b, Some(Role::Admin), "/api/admin/audit-log/verify").await;
    assert_eq!((json["ok"].clone(), json["broken_archive"]["object_key"].clone()), (json!(false), json!(key)));
}

async fn deleted_archive_is_named(b: &Backend) {
    entries(b, 5, 1).await;
    b.log().archive(b.objects.as_ref(), cutoff(), 2).await.unwrap();
    b.objects.delete(&ObjectPath::from(archive_key(5, 5).as_str())).await.unwrap();
    let v = b.log().verify_all(Some(b.objects.as_ref())).await.unwrap();
    let broken = v.broken_archive.unwrap();
    assert_eq!((broken.object_key, broken.reason.as_str()), (archive_key(5, 5), "object_missing"));
    assert_eq!(v.archives_checked, 2);
    assert!(!v.ok);
    // Without the archives, the table still links to the newest record.
    assert!(b.log().verify_all(None).await.unwrap().ok);
}

async fn row_altered_after_archiving_is_named(b: &Backend) {
    let events = entries(b, 3, 3).await;
    b.log().archive(b.objects.as_ref(), cutoff(), ARCHIVE_BATCH).await.unwrap();
    b.exec("UPDATE audit_log SET action = 'task.deleted' WHERE seq = 5").await;
    let v = b.log().verify_all(Some(b.objects.as_ref())).await.unwrap();
    assert!(!v.ok && v.broken_archive.is_none(), "{v:?}");
    assert_eq!(v.first_bad_id, Some(events[4].id));
    assert_eq!((v.checked, v.archives_checked), (4, 1), "three archived and seq 4 were intact");
    // The first row left in the table must link to the newest archive.
    b.exec(&format!("UPDATE audit_log SET prev_hash = '{}' WHERE seq = 4", "0".repeat(64))).await;
    let broken = b.log().verify().await.unwrap().first_broken.unwrap();
    assert_eq!((broken.seq, broken.event_id, broken.reason.as_str()), (4, Some(events[3].id), "prev_hash_mismatch"));
}

/// An object uploaded by a run that died before its commit is no record: the next run writes
/// the same key again and records it.
async fn crash_between_upload_and_commit_leaves_no_hole(b: &Backend) {
    entries(b, 3, 1).await;
    let key = archive_key(1, 3);
    b.objects.put(&ObjectPath::from(key.as_str()), PutPayload::from_static(b"half a previous run")).await.unwrap();
    let v = b.log().verify_all(Some(b.objects.as_ref())).await.unwrap();
    assert!(v.ok && v.archives_checked == 0, "an unrecorded object is not an archive: {v:?}");
    let report = b.log().archive(b.objects.as_ref(), cutoff(), ARCHIVE_BATCH).await.unwrap();
    assert_eq!(report.object_keys, [key]);
    let v = b.log().verify_all(Some(b.objects.as_ref())).await.unwrap();
    assert!(v.ok && v.checked == 4 && v.archives_checked == 1, "{v:?}");
}

/// A stretch is checked before it leaves: a broken chain stays in the table, to be named by verify.
async fn broken_chain_is_not_archived(b: &Backend) {
    entries(b, 4, 1).await;
    b.exec("UPDATE audit_log SET action = 'task.deleted' WHERE seq = 3").await;
    let err = b.log().archive(b.objects.as_ref(), cutoff(), 2).await.unwrap_err();
    assert!(err.to_string().contains("seq 3"), "{err}");
    let (items, _) = b.log().list(all()).await.unwrap();
    assert_eq!(items.iter().map(|e| e.seq).min(), Some(3), "seq 1-2 archived, the break and what follows stay");
    let v = b.log().verify_all(Some(b.objects.as_ref())).await.unwrap();
    assert_eq!((v.first_broken.unwrap().seq, v.archives_checked), (3, 1));
}

/// `audit-archive` as the scheduler and `trellis jobs run` run it: through the job runner's
/// lease, entries past the retention leave, counted per kind, and the chain still verifies.
async fn the_scheduled_job_archives_and_verify_holds(b: &Backend) {
    b.db.migrate(&platform::jobs::MIGRATIONS).await.unwrap();
    entries(b, 3, 2).await;
    let job = worker::retention::AuditArchiveJob::new(b.log(), b.objects.clone(), Duration::days(365));
    let clock = std::sync::Arc::new(platform::clock::ManualClock::new(OffsetDateTime::now_utc()));
    let runner = platform::jobs::JobRunner::new(&b.db, clock);
    let report = match runner.run(&job, tokio::sync::watch::channel(false).1).await.unwrap() {
        platform::jobs::RunOutcome::Ran(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!((report.get("audit_archives"), report.get("audit_entries")), (1, 3), "{report:?}");
    let v = b.log().verify_all(Some(b.objects.as_ref())).await.unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!((v.archives_checked, v.checked), (1, 5), "every entry checked, archived or not: {v:?}");
}
