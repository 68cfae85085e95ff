//! Notification mails on SQLite and PostgreSQL: each rule of assignment and mention, exactly one
//! mail per redelivered event, a failed send retried, a crashed sender's claim taken over, the
//! file and SMTP mailers, and the consumer on the in-process and RabbitMQ buses. Events carry ids
//! only: the text a mail shows is the task's or comment's as the projects service has it when the
//! event is delivered, and nothing is mailed about what is gone.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use api::ApiError;
use api::projects::{Comment, Priority, ProjectAccess, ProjectRole, Task, TaskStatus};
use api::users::{NewUser, NotificationSettings, Role, User, UserStatus, UsersApi};
use async_trait::async_trait;
use platform::bus::{BusError, Delivery, Event, EventBus, InProcessBus, Subscription};
use platform::db::Database;
use platform::ids::new_id;
use platform::mail::{FileMailer, Mailer, SmtpMailer};
use serde_json::{Value, json};
use test_support::{ReceivedMail, TcpProxy, TestRabbit, TestSmtp, read_mail_dir, wait};
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;
use worker::notify::{Notifier, NotifyError};

const PUBLIC_URL: &str = "https://trellis.example.com";

/// The users, project memberships, tasks and comments the notifier asks about (its two ports).
#[derive(Default)]
struct Directory {
    users: Mutex<HashMap<Uuid, (User, NotificationSettings)>>,
    members: Mutex<HashSet<(Uuid, Uuid)>>,
    tasks: Mutex<HashMap<Uuid, Task>>,
    comments: Mutex<HashMap<Uuid, Comment>>,
}

impl Directory {
    fn add(&self, name: &str, status: UserStatus) -> Uuid {
        let id = new_id();
        let now = OffsetDateTime::now_utc();
        let user = User {
            id,
            email: format!("{}@example.com", name.to_lowercase()),
            name: name.into(),
            role: Role::User,
            status,
            email_verified: true,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
        };
        let on = NotificationSettings { task_assigned: true, mentioned: true, comments: true };
        self.users.lock().unwrap().insert(id, (user, on));
        id
    }
    fn switch(&self, id: Uuid, f: impl FnOnce(&mut NotificationSettings)) {
        f(&mut self.users.lock().unwrap().get_mut(&id).unwrap().1);
    }
    fn join(&self, project: Uuid, user: Uuid) {
        self.members.lock().unwrap().insert((project, user));
    }
    fn leave(&self, project: Uuid, user: Uuid) {
        self.members.lock().unwrap().remove(&(project, user));
    }
    fn edit_task(&self, id: &Value, f: impl FnOnce(&mut Task)) {
        let id = Uuid::parse_str(id.as_str().unwrap()).unwrap();
        f(self.tasks.lock().unwrap().get_mut(&id).unwrap());
    }
    fn delete_task(&self, id: &Value) {
        self.tasks.lock().unwrap().remove(&Uuid::parse_str(id.as_str().unwrap()).unwrap());
    }
    fn edit_comment(&self, id: &Value, body: &str) {
        let id = Uuid::parse_str(id.as_str().unwrap()).unwrap();
        self.comments.lock().unwrap().get_mut(&id).unwrap().body = body.to_string();
    }
    fn delete_comment(&self, id: &Value) {
        self.comments.lock().unwrap().remove(&Uuid::parse_str(id.as_str().unwrap()).unwrap());
    }
}

#[async_trait]
impl UsersApi for Directory {
    async fn create_user(&self, _: NewUser) -> Result<User, ApiError> {
        Err(ApiError::Forbidden)
    }
    async fn get_user(&self, id: Uuid) -> Result<User, ApiError> {
        self.users.lock().unwrap().get(&id).map(|(u, _)| u.clone()).ok_or(ApiError::NotFound)
    }
    async fn find_by_email(&self, _: &str) -> Result<User, ApiError> {
        Err(ApiError::NotFound)
    }
    async fn set_mfa_enabled(&self, _: Uuid, _: bool) -> Result<(), ApiError> {
        Ok(())
    }
    async fn discard_new_user(&self, _: Uuid) -> Result<(), ApiError> {
        Ok(())
    }
    async fn set_email_verified(&self, _: Uuid) -> Result<(), ApiError> {
        Ok(())
    }
    async fn notification_settings(&self, id: Uuid) -> Result<NotificationSettings, ApiError> {
        self.users.lock().unwrap().get(&id).map(|(_, s)| *s).ok_or(ApiError::NotFound)
    }
}

#[async_trait]
impl ProjectAccess for Directory {
    async fn project_role(&self, project: Uuid, user: Uuid, _: Role) -> Result<Option<ProjectRole>, ApiError> {
        Ok(self.members.lock().unwrap().contains(&(project, user)).then_some(ProjectRole::Editor))
    }
    async fn current_task(&self, id: Uuid) -> Result<Option<Task>, ApiError> {
        Ok(self.tasks.lock().unwrap().get(&id).cloned())
    }
    async fn current_comment(&self, id: Uuid) -> Result<Option<Comment>, ApiError> {
        Ok(self.comments.lock().unwrap().get(&id).cloned())
    }
}

enum Keep {
    Sqlite(#[allow(dead_code)] test_support::TestSqlite),
    Postgres(#[allow(dead_code)] test_support::TestPostgres),
}

struct Backend {
    db: Database,
    _keep: Keep,
}

impl Backend {
    async fn sqlite() -> Backend {
        let t = test_support::TestSqlite::new().await;
        Self::ready(t.db.clone(), Keep::Sqlite(t)).await
    }
    async fn postgres() -> Backend {
        let t = test_support::TestPostgres::new().await;
        Self::ready(t.db.clone(), Keep::Postgres(t)).await
    }
    async fn ready(db: Database, keep: Keep) -> Backend {
        db.migrate(&worker::MIGRATIONS).await.unwrap();
        Backend { db, _keep: keep }
    }
    async fn exec(&self, sql: &str) {
        match &self.db {
            Database::Sqlite(db) => {
                let sql = sql.to_string();
                db.write(move |tx| tx.execute_batch(&sql).map_err(platform::db::sqlite::map_err)).await.unwrap();
            }
            Database::Postgres(db) => db.client().await.unwrap().batch_execute(sql).await.unwrap(),
        }
    }
}

/// A directory, a mail folder and a notifier writing `.eml` files into it.
struct Fixture {
    dir: Arc<Directory>,
    mail: tempfile::TempDir,
    notifier: Notifier,
    project: Uuid,
    /// Ada: a member who assigns and comments.
    ada: Uuid,
    /// Bob: a member.
    bob: Uuid,
}

fn fixture(b: &Backend) -> Fixture {
    let mail = tempfile::tempdir().unwrap();
    let mailer = Arc::new(FileMailer::new(mail.path(), "Trellis <no-reply@example.com>").unwrap());
    fixture_with(b, mailer, mail)
}

fn fixture_with(b: &Backend, mailer: Arc<dyn Mailer>, mail: tempfile::TempDir) -> Fixture {
    let dir = Arc::new(Directory::default());
    let (ada, bob) = (dir.add("Ada", UserStatus::Active), dir.add("Bob", UserStatus::Active));
    let project = new_id();
    dir.join(project, ada);
    dir.join(project, bob);
    let notifier = Notifier::new(b.db.clone(), dir.clone(), dir.clone(), mailer, PUBLIC_URL);
    Fixture { dir, mail, notifier, project, ada, bob }
}

impl Fixture {
    fn mails(&self) -> Vec<ReceivedMail> {
        read_mail_dir(self.mail.path())
    }
    /// A task of the project (in the directory), as its events show it: ids, no text.
    fn task(&self, assignee: Option<Uuid>) -> Value {
        let now = OffsetDateTime::now_utc();
        let task = Task {
            id: new_id(),
            project_id: self.project,
            title: "Plant the roses".into(),
            description: String::new(),
            status: TaskStatus::Todo,
            priority: Priority::Medium,
            assignee_id: assignee,
            due_date: None,
            labels: vec![],
            position: "m".into(),
            created_by: self.ada,
            created_at: now,
            updated_at: now,
        };
        let json = json!({"id": task.id, "project_id": self.project, "assignee_id": assignee, "status": "todo"});
        self.dir.tasks.lock().unwrap().insert(task.id, task);
        json
    }
    /// A comment on a task of the project (in the directory), as its events show it: no body.
    fn comment(&self, author: Uuid, body: &str) -> Value {
        let now = OffsetDateTime::now_utc();
        let c = Comment {
            id: new_id(),
            task_id: new_id(),
            project_id: self.project,
            author_id: author,
            body: body.into(),
            created_at: now,
            updated_at: now,
        };
        let json = json!({"id": c.id, "task_id": c.task_id, "project_id": self.project, "author_id": author});
        self.dir.comments.lock().unwrap().insert(c.id, c);
        json
    }
}

fn event(kind: &str, actor: Uuid, data: Value) -> Event {
    Event::new(kind, new_id(), Some(actor), OffsetDateTime::now_utc(), data)
}

fn comment_event(kind: &str, comment: &Value) -> Event {
    let data = json!({"comment": comment, "comment_id": comment["id"], "task_id": comment["task_id"],
        "project_id": comment["project_id"]});
    let mut e = event(kind, Uuid::parse_str(comment["author_id"].as_str().unwrap()).unwrap(), data);
    e.aggregate_id = Uuid::parse_str(comment["id"].as_str().unwrap()).unwrap();
    e
}

test_support::backend_suite!(
    an_assignment_mails_the_assignee,
    assignments_that_mail_nobody,
    a_mention_mails_members_only,
    a_redelivered_event_mails_once,
    an_edit_mails_only_the_mentions_it_adds,
    mails_show_the_text_of_now_and_nothing_that_is_gone,
    a_failed_send_is_retried_and_mails_once,
    a_crashed_senders_claim_is_taken_over_after_its_lease,
    mail_goes_over_smtp,
    the_consumer_mails_once_on_the_in_process_bus,
    the_consumer_mails_once_on_rabbitmq,
);

async fn an_assignment_mails_the_assignee(b: &Backend) {
    let f = fixture(b);
    let task = f.task(Some(f.bob));
    assert_eq!(f.notifier.handle(&event("task.created", f.ada, json!({"task": task}))).await.unwrap(), 1);
    let mails = f.mails();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.header("to"), Some("bob@example.com"));
    assert_eq!(m.header("subject"), Some("You were assigned: Plant the roses"));
    let link = format!("{PUBLIC_URL}/projects/{}/tasks/{}", f.project, task["id"].as_str().unwrap());
    assert!(m.body.contains(&link), "the task's link: {}", m.body);
    assert!(!m.body.contains("ada@example.com") && !m.body.contains("token"), "nothing else: {}", m.body);

    // A change of assignee on an existing task (the lead's top-level project_id is welcome).
    let moved = json!({"task": f.task(Some(f.ada)), "fields": ["assignee_id"], "project_id": f.project});
    assert_eq!(f.notifier.handle(&event("task.updated", f.bob, moved)).await.unwrap(), 1);
    assert_eq!(f.mails().iter().filter(|m| m.header("to") == Some("ada@example.com")).count(), 1);
}

async fn assignments_that_mail_nobody(b: &Backend) {
    let f = fixture(b);
    let n = &f.notifier;
    let none = |e: Event| async move { n.handle(&e).await.unwrap() };
    // Self-assignment.
    assert_eq!(none(event("task.created", f.bob, json!({"task": f.task(Some(f.bob))}))).await, 0);
    // No assignee; an update that does not change the assignee; an unassignment.
    assert_eq!(none(event("task.created", f.ada, json!({"task": f.task(None)}))).await, 0);
    let other_field = json!({"task": f.task(Some(f.bob)), "fields": ["title"]});
    assert_eq!(none(event("task.updated", f.ada, other_field)).await, 0);
    let cleared = json!({"task": f.task(None), "fields": ["assignee_id"]});
    assert_eq!(none(event("task.updated", f.ada, cleared)).await, 0);
    // The preference is off.
    f.dir.switch(f.bob, |s| s.task_assigned = false);
    assert_eq!(none(event("task.created", f.ada, json!({"task": f.task(Some(f.bob))}))).await, 0);
    // An inactive account, an unknown user.
    let carl = f.dir.add("Carl", UserStatus::Inactive);
    f.dir.join(f.project, carl);
    assert_eq!(none(event("task.created", f.ada, json!({"task": f.task(Some(carl))}))).await, 0);
    assert_eq!(none(event("task.created", f.ada, json!({"task": f.task(Some(new_id()))}))).await, 0);
    assert!(f.mails().is_empty());
}

async fn a_mention_mails_members_only(b: &Backend) {
    let f = fixture(b);
    let stranger = f.dir.add("Stranger", UserStatus::Active);
    let quiet = f.dir.add("Quiet", UserStatus::Active);
    f.dir.join(f.project, quiet);
    f.dir.switch(quiet, |s| s.mentioned = false);
    let body = format!("<@{}> and <@{stranger}>, see this; <@{quiet}> too. And me: <@{}>", f.bob, f.ada);
    let comment = f.comment(f.ada, &body);
    assert_eq!(f.notifier.handle(&comment_event("comment.created", &comment)).await.unwrap(), 1);
    let mails = f.mails();
    assert_eq!(mails.len(), 1, "the member only: not the non-member, the one who turned it off, the author");
    let m = &mails[0];
    assert_eq!((m.header("to"), m.header("subject")), (Some("bob@example.com"), Some("Ada mentioned you")));
    assert!(m.body.contains("> @Bob and @someone, see this; @someone too. And me: @someone"), "{}", m.body);
    let link = format!("{PUBLIC_URL}/projects/{}/tasks/{}", f.project, comment["task_id"].as_str().unwrap());
    assert!(m.body.contains(&link), "{}", m.body);
    assert!(!m.body.contains("Stranger") && !m.body.contains(&stranger.to_string()), "no one else's data");
}

async fn a_redelivered_event_mails_once(b: &Backend) {
    let f = fixture(b);
    let assigned = event("task.created", f.ada, json!({"task": f.task(Some(f.bob))}));
    let mentioned = comment_event("comment.created", &f.comment(f.ada, &format!("hey <@{}>", f.bob)));
    for _ in 0..3 {
        f.notifier.handle(&assigned).await.unwrap();
        f.notifier.handle(&mentioned).await.unwrap();
    }
    assert_eq!(f.mails().len(), 2);
}

async fn an_edit_mails_only_the_mentions_it_adds(b: &Backend) {
    let f = fixture(b);
    let carl = f.dir.add("Carl", UserStatus::Active);
    f.dir.join(f.project, carl);
    let comment = f.comment(f.ada, &format!("hey <@{}>", f.bob));
    assert_eq!(f.notifier.handle(&comment_event("comment.created", &comment)).await.unwrap(), 1);
    f.dir.edit_comment(&comment["id"], &format!("hey <@{}>, and <@{carl}>", f.bob));
    assert_eq!(f.notifier.handle(&comment_event("comment.updated", &comment)).await.unwrap(), 1);
    f.dir.edit_comment(&comment["id"], &format!("hey <@{}> and <@{carl}>!", f.bob));
    assert_eq!(f.notifier.handle(&comment_event("comment.updated", &comment)).await.unwrap(), 0);
    let to: Vec<_> = f.mails().iter().map(|m| m.header("to").unwrap().to_string()).collect();
    assert_eq!(to, ["bob@example.com", "carl@example.com"]);
}

/// Events carry no text: what a mail shows is read when the event is delivered. An edit before
/// delivery shows the new text (never the old), and a task or comment deleted, a task assigned to
/// someone else, or a recipient who left the project meanwhile mails nothing.
async fn mails_show_the_text_of_now_and_nothing_that_is_gone(b: &Backend) {
    const CANARY: &str = "canary-edited-away";
    let f = fixture(b);
    let n = &f.notifier;
    // Renamed between the write and the delivery: the mail has the new title only.
    let task = f.task(Some(f.bob));
    f.dir.edit_task(&task["id"], |t| t.title = CANARY.into());
    f.dir.edit_task(&task["id"], |t| t.title = "Water the roses".into());
    assert_eq!(n.handle(&event("task.created", f.ada, json!({"task": task}))).await.unwrap(), 1);
    assert_eq!(f.mails()[0].header("subject"), Some("You were assigned: Water the roses"));
    // Gone, reassigned, or the assignee left the project: nothing.
    let deleted = f.task(Some(f.bob));
    f.dir.delete_task(&deleted["id"]);
    assert_eq!(n.handle(&event("task.created", f.ada, json!({"task": deleted}))).await.unwrap(), 0);
    let reassigned = f.task(Some(f.bob));
    f.dir.edit_task(&reassigned["id"], |t| t.assignee_id = Some(f.ada));
    assert_eq!(n.handle(&event("task.created", f.ada, json!({"task": reassigned}))).await.unwrap(), 0);
    let carl = f.dir.add("Carl", UserStatus::Active);
    f.dir.join(f.project, carl);
    let left = f.task(Some(carl));
    f.dir.leave(f.project, carl);
    assert_eq!(n.handle(&event("task.created", f.ada, json!({"task": left}))).await.unwrap(), 0);
    // A comment edited before delivery: the mail quotes the words of now.
    let edited = f.comment(f.ada, &format!("<@{}> {CANARY}", f.bob));
    f.dir.edit_comment(&edited["id"], &format!("<@{}> look at the roses", f.bob));
    assert_eq!(n.handle(&comment_event("comment.created", &edited)).await.unwrap(), 1);
    // A comment deleted, or edited to mention nobody, before delivery: nothing.
    let deleted = f.comment(f.ada, &format!("<@{}> {CANARY}", f.bob));
    f.dir.delete_comment(&deleted["id"]);
    assert_eq!(n.handle(&comment_event("comment.created", &deleted)).await.unwrap(), 0);
    let unmentioned = f.comment(f.ada, &format!("<@{}> {CANARY}", f.bob));
    f.dir.edit_comment(&unmentioned["id"], "nobody in particular");
    assert_eq!(n.handle(&comment_event("comment.created", &unmentioned)).await.unwrap(), 0);
    let mails = f.mails();
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().any(|m| m.body.contains("> @Bob look at the roses")), "the comment of now");
    for m in &mails {
        assert!(!m.body.contains(CANARY) && !m.header("subject").unwrap().contains(CANARY), "{}", m.body);
    }
}

async fn smtp_through(proxy: &TcpProxy) -> Arc<dyn Mailer> {
    Arc::new(SmtpMailer::new(&format!("smtp://{}", proxy.addr()), "Trellis <no-reply@example.com>").unwrap())
}

async fn a_failed_send_is_retried_and_mails_once(b: &Backend) {
    let smtp = TestSmtp::start().await;
    let proxy = TcpProxy::start(&format!("127.0.0.1:{}", smtp.port)).await;
    let f = fixture_with(b, smtp_through(&proxy).await, tempfile::tempdir().unwrap());
    let e = event("task.created", f.ada, json!({"task": f.task(Some(f.bob))}));
    proxy.cut();
    assert!(matches!(f.notifier.handle(&e).await, Err(NotifyError::Mail(_))), "the event goes back to the bus");
    proxy.restore();
    assert_eq!(f.notifier.handle(&e).await.unwrap(), 1, "the claim was released: the retry sends");
    assert_eq!(f.notifier.handle(&e).await.unwrap(), 0);
    // A send returns once the server answered the message's data, and the sink saves a message
    // before it answers: every mail the three attempts sent is there now.
    assert_eq!(smtp.messages().len(), 1);
}

async fn a_crashed_senders_claim_is_taken_over_after_its_lease(b: &Backend) {
    let f = fixture(b);
    let e = event("task.created", f.ada, json!({"task": f.task(Some(f.bob))}));
    let task = e.data["task"]["id"].as_str().unwrap().to_string();
    // Another consumer claimed this mail and is still within its lease: the event goes back.
    let (claim, expire) = match &b.db {
        Database::Sqlite(_) => (
            format!(
                "INSERT INTO worker_notifications VALUES (X'{}', X'{}', 'task_assigned', X'{}', 9999999999999, NULL)",
                e.id.simple(),
                f.bob.simple(),
                Uuid::parse_str(&task).unwrap().simple()
            ),
            "UPDATE worker_notifications SET lease_until = 0".to_string(),
        ),
        Database::Postgres(_) => (
            format!(
                "INSERT INTO worker_notifications VALUES ('{}', '{}', 'task_assigned', '{task}', now() + interval '1 hour', NULL)",
                e.id, f.bob
            ),
            "UPDATE worker_notifications SET lease_until = now() - interval '1 second'".to_string(),
        ),
    };
    b.exec(&claim).await;
    assert!(matches!(f.notifier.handle(&e).await, Err(NotifyError::Busy)));
    assert!(f.mails().is_empty());
    // It died before marking: once its lease is over, the redelivery sends (and only once).
    b.exec(&expire).await;
    assert_eq!(f.notifier.handle(&e).await.unwrap(), 1);
    assert_eq!(f.notifier.handle(&e).await.unwrap(), 0);
    assert_eq!(f.mails().len(), 1);
}

async fn mail_goes_over_smtp(b: &Backend) {
    let smtp = TestSmtp::start().await;
    let mailer: Arc<dyn Mailer> = Arc::new(SmtpMailer::new(&smtp.url, "Trellis <no-reply@example.com>").unwrap());
    let f = fixture_with(b, mailer, tempfile::tempdir().unwrap());
    let comment = f.comment(f.ada, &format!("<@{}>: {}", f.bob, "long ".repeat(100)));
    assert_eq!(f.notifier.handle(&comment_event("comment.created", &comment)).await.unwrap(), 1);
    let got = smtp.wait_for(1, wait::default_limit()).await;
    assert_eq!(got[0].header("to"), Some("bob@example.com"));
    assert_eq!(got[0].header("subject"), Some("Ada mentioned you"));
    let quoted: String = got[0].body.lines().filter(|l| l.starts_with('>')).collect::<Vec<_>>().join(" ");
    assert!(quoted.contains('…') && quoted.chars().count() <= 300 + 10, "a short excerpt: {quoted}");
}

/// A bus whose group subscriptions record each delivery once its consumer is done with it: the
/// consume loop asks for the next delivery only after it handled and settled the previous one.
struct Watched {
    inner: Arc<dyn EventBus>,
    settled: Arc<Mutex<Vec<Uuid>>>,
}

struct WatchedSubscription {
    inner: Box<dyn Subscription>,
    current: Option<Uuid>,
    settled: Arc<Mutex<Vec<Uuid>>>,
}

#[async_trait]
impl Subscription for WatchedSubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        if let Some(id) = self.current.take() {
            self.settled.lock().unwrap().push(id);
        }
        let next = self.inner.next().await;
        if let Some(Ok(d)) = &next {
            self.current = Some(d.event.id);
        }
        next
    }
}

#[async_trait]
impl EventBus for Watched {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        self.inner.publish(event).await
    }
    async fn subscribe(&self, group: &str) -> Result<Box<dyn Subscription>, BusError> {
        let inner = self.inner.subscribe(group).await?;
        Ok(Box::new(WatchedSubscription { inner, current: None, settled: self.settled.clone() }))
    }
    async fn subscribe_broadcast(&self) -> Result<Box<dyn Subscription>, BusError> {
        self.inner.subscribe_broadcast().await
    }
    async fn ping(&self) -> Result<(), BusError> {
        self.inner.ping().await
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

/// Runs the notifier as the `notifications` group on `bus`, publishes `e` twice (a redelivery)
/// and an event it ignores, waits until the consumer has handled all three, and expects one mail.
async fn consumed_once(f: Fixture, bus: Arc<dyn EventBus>) {
    let settled = Arc::new(Mutex::new(Vec::new()));
    let bus: Arc<dyn EventBus> = Arc::new(Watched { inner: bus, settled: settled.clone() });
    let (stop, stopped) = watch::channel(false);
    let mail = f.mail.path().to_path_buf();
    let (ada, bob) = (f.ada, f.bob);
    let task = f.task(Some(bob));
    let notifier = f.notifier;
    let consumer = notifier.spawn(bus.clone(), stopped).await;
    let e = event("task.created", ada, json!({"task": task}));
    let other = event("project.created", ada, json!({"project_id": new_id()}));
    bus.publish(&e).await.unwrap();
    bus.publish(&other).await.unwrap();
    bus.publish(&e).await.unwrap();
    let handled =
        |settled: &[Uuid]| settled.iter().filter(|id| **id == e.id).count() >= 2 && settled.contains(&other.id);
    wait::until("the consumer to handle both deliveries of the event and the other one", || async {
        handled(&settled.lock().unwrap())
    })
    .await;
    // The file mailer has written a mail by the time its send returns.
    let mails = read_mail_dir(&mail);
    assert_eq!(mails.len(), 1, "one mail, the second delivery mailed nothing");
    assert_eq!(mails[0].header("to"), Some("bob@example.com"));
    stop.send(true).unwrap();
    let stopped = tokio::time::timeout(wait::default_limit(), consumer).await;
    stopped.unwrap_or_else(|_| panic!("the consumer did not stop on shutdown")).unwrap();
}

async fn the_consumer_mails_once_on_the_in_process_bus(b: &Backend) {
    consumed_once(fixture(b), Arc::new(InProcessBus::new())).await;
}

async fn the_consumer_mails_once_on_rabbitmq(b: &Backend) {
    let rabbit = TestRabbit::new(&[worker::notify::GROUP]);
    consumed_once(fixture(b), Arc::new(rabbit.bus().await)).await;
}
