//! Who may find whom, over real stores: the co-members a non-admin's user search is limited to,
//! and adding a member by exact address, which answers the same whether or not the address has an
//! account (an unknown one is mailed an invitation).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use api::ApiError;
use api::projects::{AddMember, InviteMember, MemberInvited, ProjectPeople as _, ProjectRole};
use api::users::{Role, UserStatus};
use async_trait::async_trait;
use platform::mail::{Mail, MailError, Mailer};
use projects::service::Invitations;

use crate::Backend;
use crate::members::{project, service};

crate::backend_suite!(
    co_members_are_the_people_of_shared_projects,
    adding_by_address_answers_the_same_for_every_address
);

/// A mailer that keeps what it was given.
#[derive(Default)]
struct Outbox(Mutex<Vec<Mail>>);

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        self.0.lock().unwrap().push(mail.clone());
        Ok(())
    }
}

impl Outbox {
    fn to(&self, address: &str) -> Vec<Mail> {
        self.0.lock().unwrap().iter().filter(|m| m.to == address).cloned().collect()
    }
}

async fn co_members_are_the_people_of_shared_projects(b: &Backend) {
    let (svc, users) = service(b);
    let ada = users.add(Role::User, UserStatus::Active);
    let bob = users.add(Role::User, UserStatus::Active);
    let cy = users.add(Role::User, UserStatus::Active);
    let dee = users.add(Role::User, UserStatus::Active);
    assert!(svc.co_members(ada.user_id).await.unwrap().is_empty(), "no project, nobody");
    let garden = project(&svc, ada).await;
    svc.add_member(ada, garden, AddMember { user_id: bob.user_id, role: ProjectRole::Viewer }).await.unwrap();
    let shed = project(&svc, bob).await;
    svc.add_member(bob, shed, AddMember { user_id: cy.user_id, role: ProjectRole::Editor }).await.unwrap();
    project(&svc, dee).await;
    let sorted = |mut v: Vec<uuid::Uuid>| {
        v.sort();
        v
    };
    assert_eq!(sorted(svc.co_members(ada.user_id).await.unwrap()), sorted(vec![ada.user_id, bob.user_id]));
    assert_eq!(
        sorted(svc.co_members(bob.user_id).await.unwrap()),
        sorted(vec![ada.user_id, bob.user_id, cy.user_id]),
        "each once, across projects"
    );
    assert_eq!(sorted(svc.co_members(cy.user_id).await.unwrap()), sorted(vec![bob.user_id, cy.user_id]));
    assert_eq!(svc.co_members(dee.user_id).await.unwrap(), vec![dee.user_id], "alone in her project");
}

async fn adding_by_address_answers_the_same_for_every_address(b: &Backend) {
    let (svc, users) = service(b);
    let mail = Arc::new(Outbox::default());
    svc.connect_invitations(Invitations { mailer: mail.clone(), public_url: "https://trellis.example".into() });
    let ada = users.add(Role::User, UserStatus::Active);
    let bob = users.add(Role::User, UserStatus::Active);
    let gus = users.add(Role::Guest, UserStatus::Active);
    let off = users.add(Role::User, UserStatus::Inactive);
    let p = project(&svc, ada).await;
    let email = |a: projects::service::Actor| format!("{}@example.com", a.user_id.simple());
    let invite = |address: String| InviteMember { email: address, role: ProjectRole::Editor };
    let answer = |address: String| MemberInvited { email: address, role: ProjectRole::Editor };

    // A known address, written loosely; an unknown one; an inactive account; a guest; a member.
    let known = svc.invite_member(ada, p, invite(format!("  {}  ", email(bob).to_uppercase()))).await.unwrap();
    assert_eq!(known, answer(email(bob)));
    let unknown = svc.invite_member(ada, p, invite("nobody@nowhere.example".into())).await.unwrap();
    assert_eq!(unknown, answer("nobody@nowhere.example".into()), "the same answer");
    assert_eq!(svc.invite_member(ada, p, invite(email(off))).await.unwrap(), answer(email(off)));
    assert_eq!(svc.invite_member(ada, p, invite(email(gus))).await.unwrap(), answer(email(gus)));
    assert_eq!(svc.invite_member(ada, p, invite(email(bob))).await.unwrap(), answer(email(bob)), "already a member");

    // Behind the answers: the account added, the guest as a viewer, the inactive one left alone,
    // the unknown address invited (after the answer, on a task of its own).
    let members: Vec<_> = svc.list_members(ada, p).await.unwrap().into_iter().map(|m| (m.user_id, m.role)).collect();
    assert_eq!(
        members,
        vec![(ada.user_id, ProjectRole::Owner), (bob.user_id, ProjectRole::Editor), (gus.user_id, ProjectRole::Viewer)]
    );
    test_support::wait::until("the invitation mail", || {
        std::future::ready(!mail.to("nobody@nowhere.example").is_empty())
    })
    .await;
    let sent = mail.to("nobody@nowhere.example");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text.contains("https://trellis.example/register"), "{}", sent[0].text);
    for account in [bob, gus, off] {
        assert!(mail.to(&email(account)).is_empty(), "accounts get no invitation");
    }

    // Only owners; only well-formed addresses (the same rule for every address).
    assert_eq!(svc.invite_member(bob, p, invite("x@y.example".into())).await.unwrap_err(), ApiError::Forbidden);
    let stranger = users.add(Role::User, UserStatus::Active);
    assert_eq!(svc.invite_member(stranger, p, invite(email(bob))).await.unwrap_err(), ApiError::NotFound);
    assert!(matches!(svc.invite_member(ada, p, invite("not an address".into())).await, Err(ApiError::Invalid(_))));
}
