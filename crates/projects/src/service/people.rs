//! Who may find whom: the co-members a non-admin's user search is limited to
//! (`api::projects::ProjectPeople`), and adding a member by exact email address, which answers
//! the same whether or not the address has an account (an unknown one gets an invitation mail).

use std::sync::Arc;

use api::ApiError;
use api::projects::{AddMember, InviteMember, MemberInvited, ProjectPeople, ProjectRole};
use api::users::{Role, UserStatus};
use async_trait::async_trait;
use platform::mail::{Mail, Mailer};
use uuid::Uuid;

use super::{Actor, ProjectsService, invalid};

/// What an invitation mail needs: the mailer and the address of the web app.
pub struct Invitations {
    pub mailer: Arc<dyn Mailer>,
    /// `https://trellis.example.com`, without a trailing slash.
    pub public_url: String,
}

/// Trims and lowercases an address and checks its shape (the same rule for every address, so a
/// 422 says nothing about accounts).
fn parse_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if ok { Ok(email) } else { Err(invalid("email", "is not an email address")) }
}

impl ProjectsService {
    /// Connects the mailer for invitations. Until then, an unknown address is answered like any
    /// other and only logged as not invited.
    pub fn connect_invitations(&self, invitations: Invitations) {
        if self.invitations.set(invitations).is_err() {
            tracing::warn!("the invitation mailer was already connected");
        }
    }

    /// `POST /api/projects/{id}/members` with `{email, role}`, by owners. The answer is the same
    /// for every well-formed address (docs/SECURITY.md: no account enumeration): an active
    /// account is added (a guest as a viewer whatever the role asked, already a member stays as
    /// it is), an inactive one is left alone, and an unknown address gets an invitation to
    /// register, mailed after the answer. Full invitations (accepted by the invitee, pending in
    /// the member list) come in a later issue; until then the member list shows who was added.
    pub async fn invite_member(&self, actor: Actor, id: Uuid, input: InviteMember) -> Result<MemberInvited, ApiError> {
        let (_, role) = self.visible_project(actor, id).await?;
        if role != ProjectRole::Owner {
            return Err(ApiError::Forbidden);
        }
        let email = parse_email(&input.email)?;
        let answer = MemberInvited { email: email.clone(), role: input.role };
        match self.users()?.find_by_email(&email).await {
            Ok(user) if user.status == UserStatus::Active => {
                let role = if user.role == Role::Guest { ProjectRole::Viewer } else { input.role };
                match self.add_member(actor, id, AddMember { user_id: user.id, role }).await {
                    // Already a member: the answer stays the same.
                    Ok(_) | Err(ApiError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(_) => {}
            Err(ApiError::NotFound) => self.send_invitation(email),
            Err(e) => return Err(e),
        }
        Ok(answer)
    }

    /// Mails an invitation to register, on a task of its own so that the answer takes no longer
    /// for an unknown address than for a known one. Logs never name the address.
    fn send_invitation(&self, email: String) {
        let Some(inv) = self.invitations.get() else {
            tracing::warn!("no mailer connected: an invitation to register was not sent");
            return;
        };
        let mailer = inv.mailer.clone();
        let mail = Mail {
            to: email,
            subject: "You are invited to Trellis".into(),
            text: format!(
                "Someone invited you to join a project on Trellis.\n\n\
                 To accept, create an account with this address at {}/register; the project's \
                 owner can then add you.\n\nIf you did not expect this, ignore this message.\n",
                inv.public_url
            ),
        };
        tokio::spawn(async move {
            match mailer.send(&mail).await {
                Ok(()) => tracing::info!("invitation to register sent"),
                Err(e) => tracing::warn!(error = %e, "could not send an invitation to register"),
            }
        });
    }
}

#[async_trait]
impl ProjectPeople for ProjectsService {
    async fn co_members(&self, user: Uuid) -> Result<Vec<Uuid>, ApiError> {
        Ok(self.members.co_members(user).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::parse_email;

    #[test]
    fn addresses_are_normalized_and_checked_by_shape_only() {
        assert_eq!(parse_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "@example.com", "ada@example", "ada@.com", "a da@example.com", "<a@b.c>"] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }
}
