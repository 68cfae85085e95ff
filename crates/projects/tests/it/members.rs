//! Changing projects and their members over real stores: who may rename, delete and manage
//! members; a project keeps an owner; guests are viewers at most; `If-Match`; events; a removed
//! member's tasks are unassigned and they lose access at once.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use api::ApiError;
use api::projects::{
    AddMember, ChangeMember, CreateProject, CreateTask, ProjectAccess as _, ProjectRole, UpdateProject,
};
use api::users::{NewUser, Role, User, UserStatus, UsersApi};
use async_trait::async_trait;
use platform::clock::SystemClock;
use platform::ids::new_id;
use projects::ProjectsService;
use projects::service::{Actor, ChangeError, member_etag, project_etag};
use uuid::Uuid;

use crate::Backend;

crate::backend_suite!(
    owners_manage_members_and_a_project_keeps_an_owner,
    only_active_users_join_and_guests_only_as_viewers,
    a_removed_member_loses_access_and_their_tasks,
    editors_rename_owners_delete_with_if_match,
    member_changes_honour_if_match,
);

/// The users service's side of the seam: a directory of accounts.
#[derive(Default)]
pub(crate) struct Directory(Mutex<HashMap<Uuid, User>>);

impl Directory {
    /// A directory of `users`.
    pub(crate) fn with(users: Vec<User>) -> Self {
        Self(Mutex::new(users.into_iter().map(|u| (u.id, u)).collect()))
    }

    pub(crate) fn add(&self, role: Role, status: UserStatus) -> Actor {
        let id = new_id();
        let now = time::OffsetDateTime::now_utc();
        let user = User {
            id,
            email: format!("{}@example.com", id.simple()),
            name: "Someone".into(),
            role,
            status,
            email_verified: true,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
        };
        self.0.lock().unwrap().insert(id, user);
        Actor { user_id: id, role }
    }
}

#[async_trait]
impl UsersApi for Directory {
    async fn create_user(&self, _: NewUser) -> Result<User, ApiError> {
        Err(ApiError::Forbidden)
    }
    async fn get_user(&self, id: Uuid) -> Result<User, ApiError> {
        self.0.lock().unwrap().get(&id).cloned().ok_or(ApiError::NotFound)
    }
    async fn find_by_email(&self, email: &str) -> Result<User, ApiError> {
        self.0.lock().unwrap().values().find(|u| u.email == email).cloned().ok_or(ApiError::NotFound)
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
    async fn notification_settings(&self, _: Uuid) -> Result<api::users::NotificationSettings, ApiError> {
        Ok(api::users::NotificationSettings { task_assigned: true, mentioned: true, comments: true })
    }
}

pub(crate) fn service(b: &Backend) -> (ProjectsService, Arc<Directory>) {
    let svc = ProjectsService::new(Arc::clone(&b.store), Arc::new(SystemClock), None);
    let users = Arc::new(Directory::default());
    svc.connect_users(users.clone());
    (svc, users)
}

pub(crate) async fn project(svc: &ProjectsService, owner: Actor) -> Uuid {
    let input = CreateProject { name: "Garden".into(), description: String::new() };
    svc.create_project(owner, input).await.unwrap().id
}

fn add(user: Actor, role: ProjectRole) -> AddMember {
    AddMember { user_id: user.user_id, role }
}

async fn owners_manage_members_and_a_project_keeps_an_owner(b: &Backend) {
    let (svc, users) = service(b);
    let ada = users.add(Role::User, UserStatus::Active);
    let bob = users.add(Role::User, UserStatus::Active);
    let cy = users.add(Role::User, UserStatus::Active);
    let p = project(&svc, ada).await;
    let added = svc.add_member(ada, p, add(bob, ProjectRole::Editor)).await.unwrap();
    assert_eq!((added.user_id, added.role), (bob.user_id, ProjectRole::Editor));
    assert!(matches!(svc.add_member(ada, p, add(bob, ProjectRole::Viewer)).await, Err(ApiError::Conflict(_))));
    // Editors do not manage members; strangers do not even see the project.
    assert_eq!(svc.add_member(bob, p, add(cy, ProjectRole::Viewer)).await.unwrap_err(), ApiError::Forbidden);
    assert_eq!(svc.list_members(cy, p).await.unwrap_err(), ApiError::NotFound);
    assert_eq!(svc.add_member(cy, p, add(cy, ProjectRole::Owner)).await.unwrap_err(), ApiError::NotFound);
    let members = svc.list_members(bob, p).await.unwrap();
    assert_eq!(
        members.iter().map(|m| (m.user_id, m.role)).collect::<Vec<_>>(),
        vec![(ada.user_id, ProjectRole::Owner), (bob.user_id, ProjectRole::Editor)]
    );
    // The only owner can neither step down nor leave.
    let demote = ChangeMember { role: ProjectRole::Editor };
    assert!(matches!(
        svc.change_member(ada, p, ada.user_id, demote.clone(), None).await,
        Err(ChangeError::Api(ApiError::Conflict(_)))
    ));
    assert!(matches!(svc.remove_member(ada, p, ada.user_id, None).await, Err(ChangeError::Api(ApiError::Conflict(_)))));
    // With a second owner, the first may go; the project's owner_id follows.
    let promote = ChangeMember { role: ProjectRole::Owner };
    assert_eq!(svc.change_member(ada, p, bob.user_id, promote, None).await.unwrap().role, ProjectRole::Owner);
    svc.remove_member(ada, p, ada.user_id, None).await.unwrap();
    assert_eq!(svc.get_project(bob, p).await.unwrap().owner_id, bob.user_id);
    assert_eq!(svc.get_project(ada, p).await.unwrap_err(), ApiError::NotFound, "she left");
    assert_eq!(
        svc.remove_member(bob, p, cy.user_id, None).await.unwrap_err(),
        ChangeError::Api(ApiError::NotFound),
        "not a member"
    );
    let changes: Vec<_> = b.outbox().await.into_iter().filter(|e| e.event_type == "member.changed").collect();
    let kinds: Vec<&str> = changes.iter().map(|e| e.data["change"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["added", "role_changed", "removed"]);
}

async fn only_active_users_join_and_guests_only_as_viewers(b: &Backend) {
    let (svc, users) = service(b);
    let ada = users.add(Role::User, UserStatus::Active);
    let gone = users.add(Role::User, UserStatus::Inactive);
    let guest = users.add(Role::Guest, UserStatus::Active);
    let p = project(&svc, ada).await;
    let ghost = Actor { user_id: new_id(), role: Role::User };
    for who in [gone, ghost] {
        let Err(ApiError::Invalid(e)) = svc.add_member(ada, p, add(who, ProjectRole::Viewer)).await else {
            panic!("only active users join")
        };
        assert_eq!(e[0].field, "user_id");
    }
    let Err(ApiError::Invalid(e)) = svc.add_member(ada, p, add(guest, ProjectRole::Editor)).await else {
        panic!("a guest is a viewer at most")
    };
    assert_eq!(e[0].field, "role");
    svc.add_member(ada, p, add(guest, ProjectRole::Viewer)).await.unwrap();
    let promote = ChangeMember { role: ProjectRole::Owner };
    assert!(matches!(
        svc.change_member(ada, p, guest.user_id, promote, None).await,
        Err(ChangeError::Api(ApiError::Invalid(_)))
    ));
    // A guest member reads, and may leave.
    assert_eq!(svc.get_project(guest, p).await.unwrap().role, ProjectRole::Viewer);
    svc.remove_member(guest, p, guest.user_id, None).await.unwrap();
}

async fn a_removed_member_loses_access_and_their_tasks(b: &Backend) {
    let (svc, users) = service(b);
    let ada = users.add(Role::User, UserStatus::Active);
    let bob = users.add(Role::User, UserStatus::Active);
    let p = project(&svc, ada).await;
    svc.add_member(ada, p, add(bob, ProjectRole::Editor)).await.unwrap();
    let input = CreateTask {
        title: "Dig".into(),
        description: String::new(),
        status: None,
        priority: None,
        ..Default::default()
    };
    let task = svc.create_task(bob, p, input).await.unwrap();
    b.assign(task.id, bob.user_id).await;
    // Other services ask through `ProjectAccess`: a member sees it with their role, an admin as
    // an owner, a guest member as a viewer at most, a stranger and a missing project not at all.
    let access = |project, who: Actor| {
        let svc = &svc;
        async move { svc.project_role(project, who.user_id, who.role).await.unwrap() }
    };
    assert_eq!(access(p, bob).await, Some(ProjectRole::Editor));
    assert_eq!(access(p, Actor { user_id: bob.user_id, role: Role::Guest }).await, Some(ProjectRole::Viewer));
    assert_eq!(access(p, Actor { user_id: new_id(), role: Role::Admin }).await, Some(ProjectRole::Owner));
    assert_eq!(access(new_id(), ada).await, None);
    svc.remove_member(ada, p, bob.user_id, None).await.unwrap();
    assert_eq!(svc.get_project(bob, p).await.unwrap_err(), ApiError::NotFound);
    assert_eq!(access(p, bob).await, None, "a removed member no longer sees it");
    let tasks = svc.list_tasks(ada, p, Default::default(), Default::default()).await.unwrap();
    assert_eq!(tasks.items[0].assignee_id, None, "a task cannot stay assigned to a non-member");
    assert_eq!(tasks.items[0].created_by, bob.user_id, "what they made stays theirs");
}

async fn editors_rename_owners_delete_with_if_match(b: &Backend) {
    let (svc, users) = service(b);
    let ada = users.add(Role::User, UserStatus::Active);
    let bob = users.add(Role::User, UserStatus::Active);
    let vi = users.add(Role::User, UserStatus::Active);
    let p = project(&svc, ada).await;
    svc.add_member(ada, p, add(bob, ProjectRole::Editor)).await.unwrap();
    svc.add_member(ada, p, add(vi, ProjectRole::Viewer)).await.unwrap();
    let before = svc.get_project(ada, p).await.unwrap();
    let rename = |name: &str| UpdateProject { name: Some(name.into()), description: None };
    assert_eq!(
        svc.update_project(vi, p, rename("Mine"), None).await.unwrap_err(),
        ChangeError::Api(ApiError::Forbidden)
    );
    let renamed = svc.update_project(bob, p, rename("  Kitchen garden "), None).await.unwrap();
    assert_eq!(renamed.name, "Kitchen garden");
    assert_eq!(renamed.role, ProjectRole::Editor);
    let old_tag = project_etag(before.updated_at);
    assert_eq!(
        svc.update_project(ada, p, rename("Stale"), Some(&old_tag)).await.unwrap_err(),
        ChangeError::PreconditionFailed
    );
    assert!(matches!(svc.update_project(ada, p, rename(""), None).await, Err(ChangeError::Api(ApiError::Invalid(_)))));
    let updated = b.outbox().await.into_iter().filter(|e| e.event_type == "project.updated").count();
    assert_eq!(updated, 1);
    // Only owners (and admins) delete; with a stale tag nothing happens.
    assert_eq!(svc.delete_project(bob, p, None).await.unwrap_err(), ChangeError::Api(ApiError::Forbidden));
    assert_eq!(svc.delete_project(ada, p, Some(&old_tag)).await.unwrap_err(), ChangeError::PreconditionFailed);
    let tag = project_etag(renamed.updated_at);
    svc.delete_project(ada, p, Some(&tag)).await.unwrap();
    assert_eq!(svc.get_project(ada, p).await.unwrap_err(), ApiError::NotFound);
    let admin = Actor { user_id: new_id(), role: Role::Admin };
    assert_eq!(svc.get_project(admin, p).await.unwrap_err(), ApiError::NotFound, "gone for everyone");
    assert!(svc.list_members(admin, p).await.is_err());
    assert!(b.outbox().await.iter().any(|e| e.event_type == "project.deleted" && e.aggregate_id == p));
}

async fn member_changes_honour_if_match(b: &Backend) {
    let (svc, users) = service(b);
    let ada = users.add(Role::User, UserStatus::Active);
    let bob = users.add(Role::User, UserStatus::Active);
    let p = project(&svc, ada).await;
    let added = svc.add_member(ada, p, add(bob, ProjectRole::Editor)).await.unwrap();
    let first = member_etag(&added);
    assert_eq!(member_etag(&svc.get_member(bob, p, bob.user_id).await.unwrap()), first, "GET answers the same tag");

    let to = |role| ChangeMember { role };
    let changed = svc.change_member(ada, p, bob.user_id, to(ProjectRole::Viewer), Some(&first)).await.unwrap();
    let second = member_etag(&changed);
    assert_ne!(first, second, "a new role is a new version");
    assert_eq!(
        svc.change_member(ada, p, bob.user_id, to(ProjectRole::Editor), Some(&first)).await.unwrap_err(),
        ChangeError::PreconditionFailed
    );
    assert_eq!(
        svc.remove_member(ada, p, bob.user_id, Some(&first)).await.unwrap_err(),
        ChangeError::PreconditionFailed
    );
    assert_eq!(svc.get_member(ada, p, bob.user_id).await.unwrap().role, ProjectRole::Viewer, "nothing written");

    // The store re-checks the role inside its transaction: a change read against another role
    // (a concurrent writer came first) writes nothing.
    let event = platform::bus::Event::new("member.changed", p, None, crate::now(), serde_json::json!({}));
    let stale = projects::ports::MemberUpdate {
        role: Some(ProjectRole::Owner),
        at: crate::now(),
        expected: Some(ProjectRole::Editor),
    };
    let outcome = b.store.change_member(p, bob.user_id, stale, &event).await.unwrap();
    assert_eq!(outcome, projects::ports::MemberChange::Stale);

    svc.remove_member(ada, p, bob.user_id, Some(&second)).await.unwrap();
    assert_eq!(svc.get_member(ada, p, bob.user_id).await.unwrap_err(), ApiError::NotFound);
}
