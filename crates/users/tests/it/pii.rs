//! Personal data at rest, search, preferences, export, erasure and key rotation, on both backends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use api::personal::{DataSubject, ErasureReport, PersonalData, PersonalDataApi};
use api::users::{UserListItem, UserPage};
use users::service::SearchQuery;

use super::*;

/// Keys with key-encryption keys of `versions` (each version's key fixed by its number) and one
/// index key, so that a "restart" with more versions still opens what fewer versions sealed.
pub fn keys(versions: &[u32]) -> Arc<PiiKeys> {
    let keks: Vec<(u32, [u8; 32])> = versions.iter().map(|v| (*v, [*v as u8; 32])).collect();
    Arc::new(PiiKeys::new(&keks, [0xAB; 32]).unwrap())
}

/// Another service holding data about users: exports one row per subject, and fails the next
/// `failures` erasures as if it were down.
#[derive(Default)]
pub struct Holder {
    pub erased: Mutex<Vec<DataSubject>>,
    pub failures: AtomicU32,
}

#[async_trait]
impl PersonalDataApi for Holder {
    async fn export(&self, subject: &DataSubject) -> Result<PersonalData, ApiError> {
        let mut tables = BTreeMap::new();
        tables.insert("other_things".to_string(), vec![serde_json::json!({ "owner": subject.user_id })]);
        Ok(PersonalData { tables })
    }

    async fn erase(&self, subject: &DataSubject) -> Result<ErasureReport, ApiError> {
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::Unavailable("the other service is down".into()));
        }
        self.erased.lock().unwrap().push(subject.clone());
        Ok(ErasureReport::default())
    }
}

fn actor(u: &User) -> Actor {
    Actor { user_id: u.id, role: u.role, client_ip: None }
}

impl Backend {
    async fn named(&self, name: &str, email: &str, role: Role) -> User {
        let new = NewUser { id: Uuid::now_v7(), email: email.into(), name: name.into(), role };
        self.svc.create_user(new).await.unwrap()
    }

    /// The stored row's encrypted columns: email, name, preferences, data key, email index.
    async fn raw(&self, id: Uuid) -> [Option<Vec<u8>>; 5] {
        const SQL: &str = "SELECT email, name, preferences, data_key, email_index FROM users WHERE id = ";
        match &self.db {
            Database::Sqlite(db) => db
                .read(move |c| {
                    c.query_row(&format!("{SQL}?1"), [id], |r| {
                        Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
                    })
                })
                .await
                .unwrap(),
            Database::Postgres(db) => {
                let client = db.client().await.unwrap();
                let r = client.query_one(&format!("{SQL}$1"), &[&id]).await.unwrap();
                [r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)]
            }
        }
    }

    /// Copies one user's sealed name onto another's row (an attacker with write access).
    async fn move_name(&self, from: Uuid, to: Uuid) {
        match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| {
                    tx.execute(
                        "UPDATE users SET name = (SELECT name FROM users WHERE id = ?1) WHERE id = ?2",
                        [from, to],
                    )
                    .map_err(platform::db::sqlite::map_err)?;
                    Ok(())
                })
                .await
                .unwrap();
            }
            Database::Postgres(db) => {
                let client = db.client().await.unwrap();
                client
                    .execute(
                        "UPDATE users SET name = (SELECT name FROM users WHERE id = $1) WHERE id = $2",
                        &[&from, &to],
                    )
                    .await
                    .unwrap();
            }
        }
    }

    async fn search(&self, who: &User, q: &str, cursor: Option<String>, limit: u32) -> Result<UserPage, ApiError> {
        let query = SearchQuery {
            q: (!q.is_empty()).then(|| q.to_string()),
            cursor,
            limit: Some(limit),
            ..SearchQuery::default()
        };
        self.svc.search(actor(who), query).await
    }
}

fn ids(page: &UserPage) -> Vec<Uuid> {
    page.items
        .iter()
        .map(|i| match i {
            UserListItem::Full(u) => u.id,
            UserListItem::Public(p) => p.id,
        })
        .collect()
}

fn contains(haystack: &Option<Vec<u8>>, needle: &str) -> bool {
    haystack.as_deref().is_some_and(|h| h.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

async fn personal_data_is_stored_only_sealed(b: Backend) {
    let ada = b.named("Ada Lovelace", "ada@analytical.example", Role::User).await;
    let bob = b.named("Bob Babbage", "bob@analytical.example", Role::User).await;
    let [email, name, _, key, index] = b.raw(ada.id).await;
    for (col, plain) in [(&email, "ada@analytical.example"), (&name, "Ada Lovelace"), (&name, "Lovelace")] {
        assert!(col.is_some() && !contains(col, plain), "{plain} must not be stored in plaintext");
    }
    assert!(key.is_some() && index.as_ref().is_some_and(|i| i.len() == 32));
    // Found by the blind index, and read back whole.
    assert_eq!(b.svc.find_by_email("ADA@analytical.example ").await.unwrap(), ada);
    assert_eq!(b.svc.get_user(ada.id).await.unwrap().name, "Ada Lovelace");
    // A ciphertext copied to another row does not open there (AAD binds the row).
    b.move_name(ada.id, bob.id).await;
    assert!(matches!(b.svc.get_user(bob.id).await, Err(ApiError::Internal(_))));
}

async fn search_matches_word_prefixes_with_keyset_pages(b: Backend) {
    let admin = b.named("Grace Admin", "grace@example.com", Role::Admin).await;
    let mut lovelaces = Vec::new();
    for i in 0..7 {
        lovelaces.push(b.named(&format!("Ada Lovelace {i}"), &format!("ada{i}@analytical.example"), Role::User).await);
    }
    let bob = b.named("Bob Babbage", "bob@engine.example", Role::User).await;
    let quiet = b.named("Ada Quiet", "quiet@analytical.example", Role::User).await;
    b.patch(&admin, &quiet, status(UserStatus::Inactive)).await.unwrap();

    // Word prefixes of the name or the email, every query word having to match.
    let found = b.search(&admin, "love", None, 100).await.unwrap();
    assert_eq!(ids(&found), lovelaces.iter().map(|u| u.id).collect::<Vec<_>>());
    let found = b.search(&admin, "ada analyt", None, 100).await.unwrap();
    assert_eq!(found.items.len(), 8, "seven Lovelaces and the inactive Ada, for an admin");
    assert!(matches!(found.items[0], UserListItem::Full(_)), "admins see whole users");
    assert_eq!(ids(&b.search(&admin, "engine", None, 100).await.unwrap()).len(), 1);
    assert!(b.search(&admin, "ovelace", None, 100).await.unwrap().items.is_empty(), "not a word's beginning");
    assert!(b.search(&admin, "ada babbage", None, 100).await.unwrap().items.is_empty(), "every word must match");

    // Others see active users who share a project with them only, as {id, name}, found by
    // name only.
    let user = &lovelaces[0];
    assert!(b.search(user, "ada", None, 100).await.unwrap().items.len() == 1, "only themself before any project");
    let mut project: Vec<Uuid> = lovelaces[..6].iter().map(|u| u.id).collect();
    project.push(quiet.id);
    b.people.project(&project);
    b.people.project(&[lovelaces[6].id, bob.id]);
    let found = b.search(user, "ada", None, 100).await.unwrap();
    assert_eq!(found.items.len(), 6, "the inactive Ada and the Ada in no shared project are not shown");
    assert!(!ids(&found).contains(&lovelaces[6].id), "no project in common, not found");
    let UserListItem::Public(first) = &found.items[0] else { panic!("users see {{id, name}} only") };
    assert_eq!(first.name, "Ada Lovelace 0");
    assert!(b.search(user, "analytical", None, 100).await.unwrap().items.is_empty(), "email text never matches");
    assert!(b.search(user, "ada1", None, 100).await.unwrap().items.is_empty(), "nor an address's local part");
    let everyone = b.svc.search(actor(user), SearchQuery::default()).await.unwrap();
    assert_eq!(everyone.items.len(), 6, "without q: the co-members, never everyone");
    let stranger = b.svc.search(actor(&bob), SearchQuery::default()).await.unwrap();
    assert_eq!(ids(&stranger), vec![lovelaces[6].id, bob.id], "Bob sees his one project's people");
    // An admin's search is audited with the ids it showed (not the admin themself).
    let before = b.events_of("users.searched").await.len();
    let shown = b.search(&admin, "engine", None, 100).await.unwrap();
    let audited = b.events_of("users.searched").await;
    assert_eq!(audited.len(), before + 1);
    assert_eq!(audited.last().unwrap().1, Some(admin.id));
    assert_eq!(audited.last().unwrap().2, serde_json::json!({ "user_ids": ids(&shown) }));
    b.search(&admin, "grace", None, 100).await.unwrap();
    assert_eq!(b.events_of("users.searched").await.len(), before + 1, "finding only oneself is not audited");
    let filtered = SearchQuery { status: Some(UserStatus::Inactive), ..SearchQuery::default() };
    assert_eq!(b.svc.search(actor(user), filtered).await.unwrap_err(), ApiError::Forbidden);

    // Keyset pages stay right while users are added between them.
    let page1 = b.search(&admin, "ada", None, 3).await.unwrap();
    assert_eq!(page1.items.len(), 3);
    let late = b.named("Ada Late", "late@analytical.example", Role::User).await;
    let mut seen = ids(&page1);
    let mut cursor = page1.next_cursor.clone();
    while let Some(c) = cursor {
        let page = b.search(&admin, "ada", Some(c), 3).await.unwrap();
        seen.extend(ids(&page));
        cursor = page.next_cursor;
    }
    let mut expected: Vec<Uuid> = lovelaces.iter().map(|u| u.id).chain([quiet.id, late.id]).collect();
    expected.sort();
    assert_eq!(seen, expected, "every match once, in id order, the late one included");

    // Bad input.
    for (q, field) in [("a", "q"), ("-", "q")] {
        let Err(ApiError::Invalid(errors)) = b.search(&admin, q, None, 10).await else {
            panic!("{q:?} must be refused")
        };
        assert_eq!(errors[0].field, field);
    }
    let Err(ApiError::Invalid(errors)) = b.search(&admin, "ada", Some("not-a-cursor".into()), 10).await else {
        panic!("a bad cursor must be refused")
    };
    assert_eq!(errors[0].field, "cursor");
    assert!(matches!(b.search(&admin, "ada", None, 0).await, Err(ApiError::Invalid(_))));
    assert!(matches!(b.search(&admin, "ada", None, 101).await, Err(ApiError::Invalid(_))));
}

/// An email change (issue 16) needs the caller's fresh proof and writes nothing: it asks the auth
/// service to mail a link to the new address, alike whether or not the address is taken; only
/// `apply_email_change` (auth, once the link is followed) writes it, verified, keeping the blind
/// index unique (taken by then: `Conflict`, nothing written).
async fn an_email_change_waits_for_its_link_and_needs_a_proof(b: Backend) {
    let ada = b.named("Ada", "ada@example.com", Role::User).await;
    let bob = b.named("Bob", "bob@example.com", Role::User).await;
    b.svc.set_email_verified(ada.id).await.unwrap();
    let change = |email: &str, proof: Option<&str>| UpdateUser {
        email: Some(email.into()),
        current_password: proof.map(str::to_string),
        ..UpdateUser::default()
    };
    let requested = || b.sessions.emails_changed.lock().unwrap().clone();
    // Without the proof, or with a wrong one: refused, nothing asked.
    assert_eq!(
        b.patch(&ada, &ada, change("ada@new.example", None)).await.unwrap_err(),
        UpdateError::Api(ApiError::StepUpRequired)
    );
    assert_eq!(
        b.patch(&ada, &ada, change("ada@new.example", Some("not it"))).await.unwrap_err(),
        UpdateError::Api(ApiError::StepUpFailed)
    );
    assert!(requested().is_empty());
    // With it: the address is only requested; the user is unchanged.
    let same = b.patch(&ada, &ada, change(" Ada@New.example ", Some(PASSWORD))).await.unwrap();
    assert_eq!((same.email.as_str(), same.email_verified), ("ada@example.com", true));
    assert_eq!(requested(), vec![(ada.id, "ada@new.example".to_string())]);
    // A taken address is requested alike (auth mails its owner a notice instead of a link).
    let taken = b.patch(&ada, &ada, change("bob@example.com", Some(PASSWORD))).await.unwrap();
    assert_eq!(taken, same);
    assert_eq!(requested().len(), 2);
    assert!(matches!(
        b.patch(&ada, &ada, change("not-an-email", Some(PASSWORD))).await,
        Err(UpdateError::Api(ApiError::Invalid(_)))
    ));
    assert_eq!(
        b.patch(&bob, &ada, change("x@example.com", Some(PASSWORD))).await.unwrap_err(),
        UpdateError::Api(ApiError::Forbidden)
    );
    // The link followed: applied, verified, searchable under the new address only.
    b.svc.apply_email_change(ada.id, "ada@new.example").await.unwrap();
    let now = b.svc.find_by_email("ada@new.example").await.unwrap();
    assert_eq!((now.id, now.email_verified), (ada.id, true));
    assert_eq!(b.svc.find_by_email("ada@example.com").await.unwrap_err(), ApiError::NotFound);
    let admin = b.named("Admin", "admin@example.com", Role::Admin).await;
    assert_eq!(ids(&b.search(&admin, "new", None, 10).await.unwrap()), vec![ada.id]);
    // Taken meanwhile: a clean conflict, nothing written.
    assert!(matches!(b.svc.apply_email_change(ada.id, "bob@example.com").await, Err(ApiError::Conflict(_))));
    assert_eq!(b.svc.find_by_email("bob@example.com").await.unwrap().id, bob.id);
    assert_eq!(b.svc.get_user(ada.id).await.unwrap().email, "ada@new.example");
}

async fn preferences_are_validated_private_and_sealed(b: Backend) {
    let ada = b.named("Ada", "ada@example.com", Role::User).await;
    let bob = b.named("Bob", "bob@example.com", Role::User).await;
    let defaults = b.svc.preferences(actor(&ada), ada.id).await.unwrap();
    assert_eq!(defaults, users::preferences::Preferences::default());
    let body = serde_json::json!({
        "theme": "dark", "locale": "fr-ca", "timezone": "Europe/Paris",
        "notifications": { "task_assigned": false, "mentioned": true, "comments": false, "security": true }
    });
    let switches =
        |task_assigned, mentioned, comments| api::users::NotificationSettings { task_assigned, mentioned, comments };
    assert_eq!(b.svc.notification_settings(ada.id).await.unwrap(), switches(true, true, true), "on by default");
    let saved = b.svc.set_preferences(actor(&ada), ada.id, &body).await.unwrap();
    assert_eq!(saved.locale, "fr-CA");
    // The worker reads the switches (UsersApi), opened from the sealed document.
    assert_eq!(b.svc.notification_settings(ada.id).await.unwrap(), switches(false, true, false));
    assert_eq!(b.svc.notification_settings(platform::ids::new_id()).await.unwrap_err(), ApiError::NotFound);
    assert_eq!(b.svc.preferences(actor(&ada), ada.id).await.unwrap(), saved);
    let [_, _, prefs, _, _] = b.raw(ada.id).await;
    assert!(prefs.is_some() && !contains(&prefs, "Europe/Paris"), "preferences are sealed");
    let bad = serde_json::json!({ "theme": "neon", "timezone": "Mars/Olympus", "colour": "red" });
    let Err(ApiError::Invalid(errors)) = b.svc.set_preferences(actor(&ada), ada.id, &bad).await else {
        panic!("invalid preferences must be refused")
    };
    let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    fields.sort();
    assert_eq!(fields, ["colour", "theme", "timezone"], "every bad field at once");
    assert_eq!(b.svc.preferences(actor(&ada), ada.id).await.unwrap(), saved, "nothing half-written");
    assert_eq!(b.svc.preferences(actor(&bob), ada.id).await.unwrap_err(), ApiError::Forbidden);
    assert_eq!(b.svc.set_preferences(actor(&bob), ada.id, &body).await.unwrap_err(), ApiError::Forbidden);
}

async fn export_gathers_every_service_for_the_user_or_an_admin(b: Backend) {
    let ada = b.named("Ada Lovelace", "ada@example.com", Role::User).await;
    let bob = b.named("Bob", "bob@example.com", Role::User).await;
    let admin = b.named("Admin", "admin@example.com", Role::Admin).await;
    // Step-up: the caller's own current password, with that very request.
    assert_eq!(b.svc.export(actor(&ada), ada.id, None).await.unwrap_err(), ApiError::StepUpRequired);
    assert_eq!(b.svc.export(actor(&ada), ada.id, Some("wrong")).await.unwrap_err(), ApiError::StepUpFailed);
    assert!(b.events_of("users.data_exported").await.is_empty(), "nothing exported without the proof");
    let doc = b.svc.export(actor(&ada), ada.id, Some(PASSWORD)).await.unwrap();
    let json = serde_json::to_value(&doc).unwrap();
    assert_eq!(json["user"]["email"], "ada@example.com");
    assert_eq!(json["services"]["users"]["tables"]["users"][0]["name"], "Ada Lovelace");
    assert_eq!(json["services"]["other"]["tables"]["other_things"][0]["owner"], ada.id.to_string());
    let events = json["services"]["users"]["tables"]["outbox"].as_array().unwrap();
    assert!(events.iter().any(|e| e["type"] == "user.created"), "events about the user are part of it");
    assert!(!json.to_string().contains("bob@example.com"), "nothing of anyone else");
    assert_eq!(b.svc.export(actor(&bob), ada.id, Some(PASSWORD)).await.unwrap_err(), ApiError::Forbidden);
    assert_eq!(b.svc.export(actor(&admin), ada.id, None).await.unwrap_err(), ApiError::StepUpRequired);
    b.svc.export(actor(&admin), ada.id, Some(PASSWORD)).await.unwrap();
    let exported = b.events_of("users.data_exported").await;
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[1].1, Some(admin.id), "an admin's export is recorded with the admin as actor");
}

async fn erasure_destroys_the_data_key_and_resumes_after_a_failure(b: Backend) {
    let ada = b.named("Ada Lovelace", "ada@example.com", Role::User).await;
    let admin = b.named("Admin", "admin@example.com", Role::Admin).await;
    // The user themself, and an admin, must give their own right password (step-up).
    assert_eq!(b.svc.erase(actor(&ada), ada.id, None).await.unwrap_err(), ApiError::StepUpRequired);
    assert_eq!(b.svc.erase(actor(&ada), ada.id, Some("wrong")).await.unwrap_err(), ApiError::StepUpFailed);
    assert_eq!(b.svc.erase(actor(&admin), ada.id, None).await.unwrap_err(), ApiError::StepUpRequired);
    assert_eq!(b.svc.erase(actor(&admin), ada.id, Some("wrong")).await.unwrap_err(), ApiError::StepUpFailed);
    assert_eq!(b.svc.get_user(ada.id).await.unwrap().status, UserStatus::Active, "nothing happened");
    assert!(b.events_of("users.erasure_started").await.is_empty());

    // Another service is down: the erasure starts, stops, and the user is already deleted.
    b.holder.failures.store(1, Ordering::SeqCst);
    assert!(matches!(b.svc.erase(actor(&ada), ada.id, Some(PASSWORD)).await, Err(ApiError::Unavailable(_))));
    assert_eq!(b.svc.get_user(ada.id).await.unwrap().status, UserStatus::Deleted);
    // A restart completes it.
    let mut b = b;
    b.restart(keys(&[1]));
    assert_eq!(b.svc.resume_erasures().await.unwrap(), 1);
    let subject = b.holder.erased.lock().unwrap().clone();
    assert_eq!(subject, vec![DataSubject { user_id: ada.id, email: Some("ada@example.com".into()) }]);
    let [email, name, prefs, key, index] = b.raw(ada.id).await;
    assert!(email.is_none() && name.is_none() && prefs.is_none() && key.is_none() && index.is_none());
    let gone = b.svc.get_user(ada.id).await.unwrap();
    assert_eq!((gone.name.as_str(), gone.email.as_str()), ("Deleted user", ""));
    assert_eq!(b.svc.find_by_email("ada@example.com").await.unwrap_err(), ApiError::NotFound);
    assert!(b.search(&admin, "ada", None, 10).await.unwrap().items.is_empty());
    assert_eq!(b.events_of("user.erased").await.len(), 1);
    // Again: nothing more happens.
    b.svc.erase(actor(&admin), ada.id, Some(PASSWORD)).await.unwrap();
    assert_eq!(b.svc.resume_erasures().await.unwrap(), 0);
    assert_eq!(b.holder.erased.lock().unwrap().len(), 1);
    assert_eq!(b.events_of("user.erased").await.len(), 1);
    // The address is free again.
    b.named("Ada Again", "ada@example.com", Role::User).await;
    // Others may not; the last admin may not be erased.
    let bob = b.named("Bob", "bob@example.com", Role::User).await;
    assert_eq!(b.svc.erase(actor(&bob), admin.id, Some(PASSWORD)).await.unwrap_err(), ApiError::Forbidden);
    assert!(matches!(b.svc.erase(actor(&admin), admin.id, Some(PASSWORD)).await, Err(ApiError::Conflict(_))));
}

async fn rotation_resumes_across_restarts_and_frees_the_old_key(b: Backend) {
    let mut b = b;
    let admin = b.named("Admin", "admin@example.com", Role::Admin).await;
    let mut people = vec![admin.clone()];
    for i in 0..6 {
        people.push(b.named(&format!("Person {i}"), &format!("p{i}@example.com"), Role::User).await);
    }
    let prefs = serde_json::json!({ "theme": "light", "timezone": "Asia/Tokyo" });
    b.svc.set_preferences(actor(&people[1]), people[1].id, &prefs).await.unwrap();
    // Restart with a new key version: old rows still read, new rows use the new version.
    b.restart(keys(&[1, 2]));
    assert_eq!(b.svc.count_stale_keys().await.unwrap(), 7);
    assert_eq!(b.svc.get_user(people[3].id).await.unwrap(), people[3]);
    let batch = b.svc.rekey_batch(3).await.unwrap();
    assert_eq!((batch.read, batch.written), (3, 3));
    // Stopped mid-way; a user renames themself meanwhile; restarted, it carries on.
    let renamed = UpdateUser { name: Some("Person Five".into()), ..UpdateUser::default() };
    b.patch(&people[6], &people[6], renamed).await.unwrap();
    b.restart(keys(&[1, 2]));
    assert_eq!(b.svc.count_stale_keys().await.unwrap(), 4);
    while b.svc.rekey_batch(3).await.unwrap().read > 0 {}
    assert_eq!(b.svc.count_stale_keys().await.unwrap(), 0);
    // The old key can go: everything reads with the new one alone.
    b.restart(keys(&[2]));
    for p in &people[..6] {
        let now = b.svc.get_user(p.id).await.unwrap();
        assert_eq!((now.email.as_str(), now.name.as_str()), (p.email.as_str(), p.name.as_str()));
    }
    assert_eq!(b.svc.get_user(people[6].id).await.unwrap().name, "Person Five");
    assert_eq!(b.svc.preferences(actor(&people[1]), people[1].id).await.unwrap().timezone, "Asia/Tokyo");
    assert_eq!(b.svc.find_by_email("p2@example.com").await.unwrap().id, people[3].id);
    assert_eq!(ids(&b.search(&admin, "person", None, 100).await.unwrap()).len(), 6);
}

on_both_backends!(
    personal_data_is_stored_only_sealed: Sessions::default(),
    search_matches_word_prefixes_with_keyset_pages: Sessions::default(),
    an_email_change_waits_for_its_link_and_needs_a_proof: Sessions::default(),
    preferences_are_validated_private_and_sealed: Sessions::default(),
    export_gathers_every_service_for_the_user_or_an_admin: Sessions::default(),
    erasure_destroys_the_data_key_and_resumes_after_a_failure: Sessions::default(),
    rotation_resumes_across_restarts_and_frees_the_old_key: Sessions::default(),
);
