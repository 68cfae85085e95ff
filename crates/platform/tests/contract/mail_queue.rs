//! The durable mail queue (`platform::mail::MailQueue`) on SQLite and PostgreSQL, in front of a
//! real SMTP server (aiosmtpd, [`TestSmtp`]) that is down at first (a [`TcpProxy`] cut in front of
//! it): the message is stored sealed, retried with backoff while the server is down, delivered once
//! it comes back, also by a new queue after the first one stopped (a restart), and given up only
//! after its deadline.

use std::sync::Arc;
use std::time::Duration;

use platform::db::Database;
use platform::mail::queue::MIGRATIONS;
use platform::mail::{Mail, MailQueue, Mailer, QueueSettings, SmtpMailer};
use test_support::proxy::TcpProxy;
use test_support::wait::{default_limit, until};
use test_support::{TestPostgres, TestSmtp};

use crate::support::{DbFixture, query_i64};

const FROM: &str = "Trellis <no-reply@localhost>";
const TO: &str = "owner.of.the.account@example.com";

/// A sink behind a proxy that is cut: the server is down until `restore`.
async fn down_sink() -> (TestSmtp, TcpProxy) {
    let sink = TestSmtp::start().await;
    let proxy = TcpProxy::start(&format!("127.0.0.1:{}", sink.port)).await;
    proxy.cut();
    (sink, proxy)
}

fn queue(db: &Database, proxy: &TcpProxy, settings: QueueSettings) -> Arc<MailQueue> {
    let transport = Arc::new(SmtpMailer::new(&format!("smtp://{}", proxy.addr()), FROM).unwrap());
    Arc::new(MailQueue::new(db.clone(), transport, &[9; 32], settings).unwrap())
}

fn fast() -> QueueSettings {
    QueueSettings {
        deadline: Duration::from_secs(3600),
        max_backoff: Duration::from_millis(500),
        poll: Duration::from_millis(100),
    }
}

fn notice() -> Mail {
    Mail {
        to: TO.into(),
        subject: "Your Trellis password was changed".into(),
        text: "Hello,\n\nthe password of your Trellis account was just changed.\n".into(),
    }
}

async fn attempts(db: &Database) -> i64 {
    query_i64(
        db,
        "SELECT coalesce(max(attempts), 0) FROM mail_queue",
        "SELECT coalesce(max(attempts), 0)::bigint FROM mail_queue",
        vec![],
    )
    .await
    .unwrap()
}

async fn a_notice_arrives_once_the_server_is_back<F: DbFixture>() {
    let f = F::new().await;
    let db = f.db();
    db.migrate(&MIGRATIONS).await.unwrap();
    let (sink, proxy) = down_sink().await;
    let q = queue(db, &proxy, fast());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(q.clone().run(stopped));
    q.send(&notice()).await.expect("stored: Ok means durable, not delivered");
    assert_eq!(q.pending().await.unwrap(), 1);
    until("the queue retries while the server is down", || async { attempts(db).await >= 3 }).await;
    assert!(sink.messages().is_empty());
    // Sealed at rest: neither the recipient nor the subject nor the text is readable in the table.
    let stored: Vec<u8> = match db {
        Database::Sqlite(s) => {
            s.read(|c| c.query_row("SELECT sealed FROM mail_queue", [], |r| r.get(0))).await.unwrap()
        }
        Database::Postgres(p) => {
            p.client().await.unwrap().query_one("SELECT sealed FROM mail_queue", &[]).await.unwrap().get(0)
        }
    };
    let text = String::from_utf8_lossy(&stored);
    assert!(!text.contains("owner.of.the.account") && !text.contains("password"), "{text}");

    proxy.restore();
    let got = sink.wait_for(1, default_limit()).await;
    assert_eq!(got[0].header("to"), Some(TO));
    assert_eq!(got[0].header("subject"), Some("Your Trellis password was changed"));
    until("the delivered mail leaves the queue", || async { q.pending().await.unwrap() == 0 }).await;
    stop.send(true).unwrap();
    run.await.unwrap();
    assert_eq!(sink.messages().len(), 1, "delivered once");
}

async fn a_queued_notice_survives_a_restart<F: DbFixture>() {
    let f = F::new().await;
    let db = f.db();
    db.migrate(&MIGRATIONS).await.unwrap();
    let (sink, proxy) = down_sink().await;
    // The first process queues the notice, fails to deliver it, and stops.
    let first = queue(db, &proxy, fast());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(first.clone().run(stopped));
    first.send(&notice()).await.unwrap();
    until("a first attempt failed", || async { attempts(db).await >= 1 }).await;
    stop.send(true).unwrap();
    run.await.unwrap();
    drop(first);
    assert!(sink.messages().is_empty());
    // The next process, with the server back, delivers it (after the first one's lease at most).
    proxy.restore();
    let settings = QueueSettings { poll: Duration::from_millis(100), ..fast() };
    let second = queue(db, &proxy, settings);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(second.clone().run(stopped));
    let got = sink.wait_for(1, default_limit()).await;
    assert_eq!(got[0].header("subject"), Some("Your Trellis password was changed"));
    until("the queue is empty", || async { second.pending().await.unwrap() == 0 }).await;
    stop.send(true).unwrap();
    run.await.unwrap();
}

async fn a_notice_is_given_up_only_after_its_deadline<F: DbFixture>() {
    let f = F::new().await;
    let db = f.db();
    db.migrate(&MIGRATIONS).await.unwrap();
    let (sink, proxy) = down_sink().await;
    let settings = QueueSettings { deadline: Duration::from_secs(2), ..fast() };
    let q = queue(db, &proxy, settings);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(q.clone().run(stopped));
    q.send(&notice()).await.unwrap();
    until("several attempts before the deadline", || async { attempts(db).await >= 2 }).await;
    until("given up after the deadline", || async { q.pending().await.unwrap() == 0 }).await;
    assert!(attempts(db).await == 0 && sink.messages().is_empty());
    // A bad address is refused up front, never queued.
    let bad = Mail { to: "not an address".into(), ..notice() };
    assert!(q.send(&bad).await.is_err());
    assert_eq!(q.pending().await.unwrap(), 0);
    stop.send(true).unwrap();
    run.await.unwrap();
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_notice_arrives_once_the_server_is_back() {
        super::a_notice_arrives_once_the_server_is_back::<test_support::TestSqlite>().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_notice_survives_a_restart() {
        super::a_queued_notice_survives_a_restart::<test_support::TestSqlite>().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_notice_is_given_up_only_after_its_deadline() {
        super::a_notice_is_given_up_only_after_its_deadline::<test_support::TestSqlite>().await;
    }
}

mod postgres {
    use super::TestPostgres;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_notice_arrives_once_the_server_is_back() {
        super::a_notice_arrives_once_the_server_is_back::<TestPostgres>().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_notice_survives_a_restart() {
        super::a_queued_notice_survives_a_restart::<TestPostgres>().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_notice_is_given_up_only_after_its_deadline() {
        super::a_notice_is_given_up_only_after_its_deadline::<TestPostgres>().await;
    }
}
