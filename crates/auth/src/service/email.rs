//! Mailed single-use tokens: email verification, password reset and email change
//! (docs/SECURITY.md PW-9, LG-3).
//!
//! A token is 256 bits from the CSPRNG (`random_token`), mailed in a link whose fragment carries
//! it (`{public_url}/reset-password#token=…`), so it never reaches a server's access log; only
//! its SHA-256 is stored. Email-verification tokens live 24 hours (a day to get to one's inbox),
//! reset tokens 1 hour. Each is spent once by compare-and-set; a password change or a reset
//! spends every outstanding reset token of the user.
//!
//! `forgot_password` answers the same whether or not the account exists and does the same
//! database work in both cases; mail leaves off the request path (a spawned task with retries),
//! at most [`MAILS_PER_HOUR`] tokens per purpose and account, silently. A reset ends every
//! session, clears the failed-login count and issues no tokens, so a second factor is still asked
//! for at the next login. Reset links go only to a verified address (issue 16): for an unverified
//! one, `forgot_password` answers and works alike and mails nothing.
//!
//! An email change (asked through `SessionsApi::request_email_change` after the users service
//! checked the step-up proof) changes nothing at first: a `change_email` token carrying the new
//! address (sealed, bound to the user and purpose) is mailed to the new address; the answer is the
//! same whether or not the address is taken (if taken, the token carries no address, so its link
//! can apply nothing, and the taken address's owner gets a notice instead). Following the link
//! (`confirm_email_change`) has the users service apply it (verified; `Conflict` if the address
//! was taken meanwhile, and then nothing is written here either), spends the token with every
//! other change and verification token, and mails the old address a notice with an
//! `undo_email_change` link (7 days). Following that (`undo_email_change`) restores the old
//! address and ends every session of the account.

use std::time::Duration;

use api::ApiError;
use api::auth::EmailChangeRequest;
use api::users::{User, UserStatus};
use platform::bus::Event;
use platform::crypto::{random_token, sha256};
use platform::identity::Identity;
use platform::mail::{Mail, MailError};
use serde_json::json;
use uuid::Uuid;

use super::{AuthError, AuthService};
use crate::domain;
use crate::ports::{EmailTokenPurpose, NewEmailToken, PasswordReset};

/// How long an email-verification link works.
pub const VERIFY_EMAIL_TTL: time::Duration = time::Duration::hours(24);
/// How long a link mailed to the new address of an email change works.
pub const CHANGE_EMAIL_TTL: time::Duration = time::Duration::hours(24);
/// How long the old address's link that undoes an email change works: a week, since its owner
/// may not read that mailbox every day, and it is the way back from an account takeover.
pub const UNDO_EMAIL_CHANGE_TTL: time::Duration = time::Duration::days(7);
/// How long a password-reset link works (PW-9: at most an hour).
pub const RESET_PASSWORD_TTL: time::Duration = time::Duration::hours(1);
// PW-9: a reset link expires within the hour; checked when compiling.
const _: () = assert!(RESET_PASSWORD_TTL.whole_seconds() <= 3600);
/// Tokens (so mails) per account and purpose in any hour; more requests are answered alike and
/// send nothing, so nobody can flood an inbox through us.
pub const MAILS_PER_HOUR: u32 = 3;
/// Delivery attempts per mail, with a doubling pause between them.
const MAIL_ATTEMPTS: u32 = 3;

/// The link a mail carries; the token is in the fragment, which browsers never send.
pub fn link(public_url: &str, page: &str, token: &str) -> String {
    format!("{}/{page}#token={token}", public_url.trim_end_matches('/'))
}

fn verification_mail(to: &str, link: &str) -> Mail {
    Mail {
        to: to.to_string(),
        subject: "Confirm your email address for Trellis".into(),
        text: format!(
            "Hello,\n\nplease confirm that this is your email address for Trellis by opening this link \
             within 24 hours:\n\n{link}\n\nIf you did not create a Trellis account, ignore this message.\n"
        ),
    }
}

fn reset_mail(to: &str, link: &str) -> Mail {
    Mail {
        to: to.to_string(),
        subject: "Reset your Trellis password".into(),
        text: format!(
            "Hello,\n\nsomeone (we hope you) asked to reset the password of your Trellis account. To choose \
             a new one, open this link within 1 hour; it works once:\n\n{link}\n\nResetting signs you out \
             everywhere. Two-step verification, if you use it, stays on.\n\nIf you did not ask for this, \
             ignore this message: your password stays as it is.\n"
        ),
    }
}

fn password_reset_notice(to: &str, public_url: &str) -> Mail {
    Mail {
        to: to.to_string(),
        subject: "Your Trellis password was reset".into(),
        text: format!(
            "Hello,\n\nthe password of your Trellis account was just reset, and every session was signed \
             out.\n\nIf this was not you, reset your password again at {}/forgot-password and tell your \
             administrator.\n",
            public_url.trim_end_matches('/')
        ),
    }
}

/// To the address an account had before its email changed: no link, and not the new address.
fn email_changed_notice(to: &str) -> Mail {
    Mail {
        to: to.to_string(),
        subject: "The email address of your Trellis account was changed".into(),
        text: "Hello,\n\nthe email address of the Trellis account that used this address was just changed to \
               another one. Mail about the account now goes there, and this address no longer signs in.\n\n\
               If this was not you, tell your administrator at once.\n"
            .into(),
    }
}

/// To the new address of an email change: the link that applies it.
fn change_email_mail(to: &str, link: &str) -> Mail {
    Mail {
        to: to.to_string(),
        subject: "Confirm the new email address of your Trellis account".into(),
        text: format!(
            "Hello,\n\nsomeone (we hope you) asked to use this address for a Trellis account. To make the \
             change, open this link within 24 hours:\n\n{link}\n\nUntil then nothing changes. If you did not \
             ask for this, ignore this message.\n"
        ),
    }
}

/// To an address that is already registered, when another account asked to change to it: no link.
fn address_taken_notice(to: &str, public_url: &str) -> Mail {
    Mail {
        to: to.to_string(),
        subject: "Someone tried to use your address for another Trellis account".into(),
        text: format!(
            "Hello,\n\nsomeone asked to change the email address of a Trellis account to this address, which \
             your account already uses. Nothing was changed.\n\nIf you forgot your password, you can reset \
             it at {}/forgot-password.\n",
            public_url.trim_end_matches('/')
        ),
    }
}

/// To the old address once a change applied: the link that undoes it and signs out everywhere.
fn email_changed_undo_mail(to: &str, link: &str) -> Mail {
    Mail {
        to: to.to_string(),
        subject: "The email address of your Trellis account was changed".into(),
        text: format!(
            "Hello,\n\nthe email address of the Trellis account that used this address was just changed to \
             another one. Mail about the account now goes there, and this address no longer signs in.\n\n\
             If this was not you, open this link within 7 days: it restores this address and signs the \
             account out everywhere:\n\n{link}\n\nThen reset your password and tell your administrator.\n"
        ),
    }
}

/// To the restored address after an undo.
fn email_change_undone_notice(to: &str, public_url: &str) -> Mail {
    Mail {
        to: to.to_string(),
        subject: "The email address of your Trellis account was restored".into(),
        text: format!(
            "Hello,\n\nthe email address of your Trellis account is this one again, and every session was \
             signed out. Choose a new password at {}/forgot-password.\n",
            public_url.trim_end_matches('/')
        ),
    }
}

fn email_aad(user_id: Uuid, purpose: EmailTokenPurpose) -> Vec<u8> {
    format!("auth_email_tokens:{user_id}:{}", purpose.as_str()).into_bytes()
}

/// Security-relevant changes the account's owner is told about by mail (docs/SECURITY.md PW-7, TO-5),
/// so that a change they did not make does not go unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Notice {
    PasswordChanged,
    SecondFactorEnabled,
    SecondFactorDisabled,
    RecoveryCodesRegenerated,
    SecondFactorReset,
}

fn notice_mail(to: &str, public_url: &str, notice: Notice) -> Mail {
    let (subject, what) = match notice {
        Notice::PasswordChanged => {
            ("Your Trellis password was changed", "the password of your Trellis account was just changed")
        }
        Notice::SecondFactorEnabled => (
            "Two-step verification is on for your Trellis account",
            "two-step verification was just turned on for your Trellis account",
        ),
        Notice::SecondFactorDisabled => (
            "Two-step verification is off for your Trellis account",
            "two-step verification was just turned off for your Trellis account",
        ),
        Notice::RecoveryCodesRegenerated => (
            "New recovery codes for your Trellis account",
            "new recovery codes were just made for your Trellis account, and the earlier ones no longer work",
        ),
        Notice::SecondFactorReset => (
            "An administrator turned off two-step verification for your Trellis account",
            "an administrator just removed the two-step verification of your Trellis account and signed it \
             out everywhere; turn it on again after your next sign-in",
        ),
    };
    Mail {
        to: to.to_string(),
        subject: subject.into(),
        text: format!(
            "Hello,\n\n{what}.\n\nIf this was not you, reset your password at {}/forgot-password and tell \
             your administrator.\n",
            public_url.trim_end_matches('/')
        ),
    }
}

impl AuthService {
    /// Tells the owner of `user` about a security-relevant change, off the request path.
    pub(super) fn notify(&self, user: &User, notice: Notice) {
        let what = match notice {
            Notice::PasswordChanged => "password_changed_notice",
            Notice::SecondFactorEnabled => "mfa_enabled_notice",
            Notice::SecondFactorDisabled => "mfa_disabled_notice",
            Notice::RecoveryCodesRegenerated => "recovery_codes_notice",
            Notice::SecondFactorReset => "mfa_reset_notice",
        };
        self.spawn_mail(notice_mail(&user.email, &self.settings.public_url, notice), user.id, what);
    }

    /// After a self-service registration: mails the verification link. Never fails the
    /// registration; the user can ask for another mail.
    pub(super) async fn send_verification_after_registration(&self, user: &User) {
        if let Err(e) = self.issue_and_mail(user, EmailTokenPurpose::VerifyEmail).await {
            tracing::warn!(user_id = %user.id, error = %e, "could not issue the email-verification token");
        }
    }

    /// Mails a new verification link to the caller unless their email is verified already.
    pub async fn resend_verification(&self, caller: &Identity) -> Result<(), AuthError> {
        let user = self.users.get_user(caller.user_id).await?;
        if !user.email_verified {
            self.issue_and_mail(&user, EmailTokenPurpose::VerifyEmail).await?;
        }
        Ok(())
    }

    /// After the users service stored a new (unverified) email for the user: in one transaction,
    /// every outstanding verification link dies (one mailed to the old address would otherwise
    /// verify the new one) and a new one is stored, with the event `auth.email_changed`; the new
    /// link goes to the new address and a notice (no link, no new address) to the old one.
    ///
    /// The new link counts against [`MAILS_PER_HOUR`] verification mails like any other: past
    /// it, the old links still die but no link is mailed (the user asks for one later with
    /// `resend`). The notice to the old address is a security notice and always goes.
    pub async fn email_changed(&self, user_id: Uuid, old_email: &str) -> Result<(), AuthError> {
        let user = self.users.get_user(user_id).await?;
        let now = self.clock.now();
        let token = random_token();
        let new = NewEmailToken {
            token_hash: sha256(token.as_bytes()),
            user_id,
            purpose: EmailTokenPurpose::VerifyEmail,
            created_at: now,
            expires_at: now + VERIFY_EMAIL_TTL,
        };
        let event = Event::new("auth.email_changed", user_id, Some(user_id), now, json!({ "user_id": user_id }));
        let since = now - time::Duration::hours(1);
        let issued = self.store.replace_verify_token(&new, since, MAILS_PER_HOUR, &event).await?;
        self.wake_relay();
        if issued {
            let link = link(&self.settings.public_url, "verify-email", &token);
            self.spawn_mail(verification_mail(&user.email, &link), user_id, "verify_email");
        } else {
            metrics::counter!("trellis_auth_mail_limited_total", "purpose" => "verify_email").increment(1);
            tracing::info!(%user_id, "hourly mail limit reached; no verification link for the new address");
        }
        if domain::normalize_email(old_email) != domain::normalize_email(&user.email) {
            self.spawn_mail(email_changed_notice(old_email), user_id, "email_changed_notice");
        }
        tracing::info!(%user_id, verification_sent = issued, "email changed; old verification links spent");
        Ok(())
    }

    /// Step one of an email change (see the module): the users service has checked the step-up
    /// proof and the address's syntax. Answers alike whether or not the address is taken.
    pub async fn request_email_change(&self, req: &EmailChangeRequest) -> Result<(), AuthError> {
        let user = self.users.get_user(req.user_id).await?;
        let new_email = domain::normalize_email(&req.new_email);
        if new_email == domain::normalize_email(&user.email) {
            return Ok(());
        }
        let taken = match self.users.find_by_email(&new_email).await {
            Ok(_) => true,
            Err(ApiError::NotFound) => false,
            Err(e) => return Err(e.into()),
        };
        let now = self.clock.now();
        let token = random_token();
        let purpose = EmailTokenPurpose::ChangeEmail;
        let new = NewEmailToken {
            token_hash: sha256(token.as_bytes()),
            user_id: user.id,
            purpose,
            created_at: now,
            expires_at: now + CHANGE_EMAIL_TTL,
        };
        // A taken address gets a token that carries no address: the same database work, and a
        // link that could apply nothing (it is never mailed anyway).
        let sealed =
            (!taken).then(|| self.settings.key_encryption_key.seal(new_email.as_bytes(), &email_aad(user.id, purpose)));
        let event = Event::new(
            "auth.email_change_requested",
            user.id,
            Some(req.actor_id),
            now,
            json!({ "user_id": user.id, "actor_id": req.actor_id }),
        );
        let since = now - time::Duration::hours(1);
        let issued = self.store.issue_email_change(&new, sealed.as_deref(), since, MAILS_PER_HOUR, &event).await?;
        if !issued {
            metrics::counter!("trellis_auth_mail_limited_total", "purpose" => purpose.as_str()).increment(1);
            tracing::info!(user_id = %user.id, "hourly mail limit reached; no email-change mail");
            return Ok(());
        }
        self.wake_relay();
        if taken {
            self.spawn_mail(
                address_taken_notice(&new_email, &self.settings.public_url),
                user.id,
                "address_taken_notice",
            );
        } else {
            let link = link(&self.settings.public_url, "confirm-email", &token);
            self.spawn_mail(change_email_mail(&new_email, &link), user.id, "change_email");
        }
        tracing::info!(user_id = %user.id, actor_id = %req.actor_id, "email change requested");
        Ok(())
    }

    /// Follows the link mailed to the new address: the users service applies the change (the
    /// address verified), then the token is spent and the old address gets the undo link.
    pub async fn confirm_email_change(&self, token: &str) -> Result<(), AuthError> {
        let now = self.clock.now();
        let hash = sha256(token.as_bytes());
        let purpose = EmailTokenPurpose::ChangeEmail;
        let Some((user_id, sealed)) = self.store.email_change(hash, purpose, now).await? else {
            return Err(AuthError::BadToken);
        };
        let new_email = self.open_email(user_id, purpose, &sealed)?;
        let user = match self.users.get_user(user_id).await {
            Ok(u) if u.status == UserStatus::Active => u,
            Ok(_) | Err(ApiError::NotFound) => return Err(AuthError::BadToken),
            Err(e) => return Err(e.into()),
        };
        let old_email = user.email.clone();
        match self.users.apply_email_change(user_id, &new_email).await {
            Ok(()) => {}
            Err(ApiError::Conflict(_)) => {
                tracing::info!(%user_id, "email change not applied: the address was taken meanwhile");
                return Err(AuthError::Conflict("the address is no longer available; nothing was changed"));
            }
            Err(ApiError::NotFound) => return Err(AuthError::BadToken),
            Err(e) => return Err(e.into()),
        }
        let undo_token = random_token();
        let undo = NewEmailToken {
            token_hash: sha256(undo_token.as_bytes()),
            user_id,
            purpose: EmailTokenPurpose::UndoEmailChange,
            created_at: now,
            expires_at: now + UNDO_EMAIL_CHANGE_TTL,
        };
        let sealed_old = self.settings.key_encryption_key.seal(
            domain::normalize_email(&old_email).as_bytes(),
            &email_aad(user_id, EmailTokenPurpose::UndoEmailChange),
        );
        let event = Event::new("auth.email_changed", user_id, Some(user_id), now, json!({ "user_id": user_id }));
        if !self.store.complete_email_change(hash, &undo, &sealed_old, &event).await? {
            // A concurrent use of the same link won (and applied the same address).
            return Err(AuthError::BadToken);
        }
        self.wake_relay();
        let link = link(&self.settings.public_url, "undo-email-change", &undo_token);
        self.spawn_mail(email_changed_undo_mail(&old_email, &link), user_id, "email_changed_notice");
        tracing::info!(%user_id, "email change confirmed");
        Ok(())
    }

    /// Follows the old address's link: the old address comes back (verified: it received the
    /// link) and every session of the account ends.
    pub async fn undo_email_change(&self, token: &str) -> Result<(), AuthError> {
        let now = self.clock.now();
        let hash = sha256(token.as_bytes());
        let purpose = EmailTokenPurpose::UndoEmailChange;
        let Some((user_id, sealed)) = self.store.email_change(hash, purpose, now).await? else {
            return Err(AuthError::BadToken);
        };
        let old_email = self.open_email(user_id, purpose, &sealed)?;
        match self.users.apply_email_change(user_id, &old_email).await {
            Ok(()) => {}
            Err(ApiError::Conflict(_)) => {
                return Err(AuthError::Conflict("the address is no longer available; nothing was changed"));
            }
            Err(ApiError::NotFound) => return Err(AuthError::BadToken),
            Err(e) => return Err(e.into()),
        }
        let event = Event::new("auth.email_change_undone", user_id, Some(user_id), now, json!({ "user_id": user_id }));
        let Some(revoked) = self.store.undo_email_change(hash, now, &event).await? else {
            return Err(AuthError::BadToken);
        };
        self.wake_relay();
        self.publish_revocations(&revoked).await;
        self.spawn_mail(
            email_change_undone_notice(&old_email, &self.settings.public_url),
            user_id,
            "email_restored_notice",
        );
        tracing::info!(%user_id, ended_sessions = revoked.len(), "email change undone; sessions ended");
        Ok(())
    }

    fn open_email(&self, user_id: Uuid, purpose: EmailTokenPurpose, sealed: &[u8]) -> Result<String, AuthError> {
        let raw = self
            .settings
            .key_encryption_key
            .open(sealed, &email_aad(user_id, purpose))
            .map_err(|_| ApiError::Internal("an email-change address cannot be opened".into()))?;
        String::from_utf8(raw).map_err(|_| ApiError::Internal("an email-change address is not text".into()).into())
    }

    /// Spends a verification token and marks the owner's email verified.
    pub async fn verify_email(&self, token: &str) -> Result<(), AuthError> {
        let now = self.clock.now();
        let hash = sha256(token.as_bytes());
        let Some(user_id) = self.store.email_token_owner(hash, EmailTokenPurpose::VerifyEmail, now).await? else {
            return Err(AuthError::BadToken);
        };
        // Marking first is idempotent: if spending fails below, the token still works next time.
        match self.users.set_email_verified(user_id).await {
            Ok(()) => {}
            Err(ApiError::NotFound) => return Err(AuthError::BadToken),
            Err(e) => return Err(e.into()),
        }
        let event = Event::new("auth.email_verified", user_id, Some(user_id), now, json!({ "user_id": user_id }));
        if !self.store.spend_verify_token(hash, now, &event).await? {
            // A concurrent use of the same link won.
            return Err(AuthError::BadToken);
        }
        self.wake_relay();
        tracing::info!(user_id = %user_id, "email verified");
        Ok(())
    }

    /// Mails a reset link if an active account has this email. The caller's answer is the same
    /// either way, and so is the database work.
    pub async fn forgot_password(&self, email: &str) -> Result<(), AuthError> {
        match self.users.find_by_email(email).await {
            // Reset links go only to an address its owner proved they read (issue 16).
            Ok(user) if user.status == UserStatus::Active && user.email_verified => {
                self.issue_and_mail(&user, EmailTokenPurpose::ResetPassword).await?;
                tracing::info!(user_id = %user.id, "password reset requested");
            }
            Ok(_) | Err(ApiError::NotFound) => {
                // The same transaction as a real issue that finds its limit reached.
                let now = self.clock.now();
                let token = NewEmailToken {
                    token_hash: [0; 32],
                    user_id: Uuid::nil(),
                    purpose: EmailTokenPurpose::ResetPassword,
                    created_at: now,
                    expires_at: now,
                };
                let event = Event::new("auth.password_reset_requested", Uuid::nil(), None, now, json!({}));
                self.store.issue_email_token(&token, now - time::Duration::hours(1), 0, &event).await?;
                tracing::info!(outcome = "no_active_account", "password reset requested");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Sets a new password with a reset token: every session ends, the failed-login count is
    /// cleared, every other reset token dies, and no token is issued (a second factor, if any,
    /// is still asked for at the next login).
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<(), AuthError> {
        let now = self.clock.now();
        let hash = sha256(token.as_bytes());
        let Some(user_id) = self.store.email_token_owner(hash, EmailTokenPurpose::ResetPassword, now).await? else {
            return Err(AuthError::BadToken);
        };
        let user = match self.users.get_user(user_id).await {
            Ok(u) if u.status == UserStatus::Active => u,
            Ok(_) | Err(ApiError::NotFound) => return Err(AuthError::BadToken),
            Err(e) => return Err(e.into()),
        };
        // The policy is checked before the token is spent, so a refused password costs nothing.
        self.check_policy("new_password", new_password, &user.email, &user.name)?;
        let reset = PasswordReset {
            token_hash: hash,
            user_id,
            password_hash: self.settings.hasher.hash(new_password).await?,
            account_key: self.settings.hasher.account_key(&domain::normalize_email(&user.email)),
            at: self.clock.now(),
        };
        let event = Event::new("auth.password_reset", user_id, Some(user_id), reset.at, json!({ "user_id": user_id }));
        let Some(revoked) = self.store.reset_password(&reset, &event).await? else {
            // Spent or expired while the password was hashed.
            return Err(AuthError::BadToken);
        };
        self.wake_relay();
        self.publish_revocations(&revoked).await;
        tracing::info!(user_id = %user_id, ended_sessions = revoked.len(), "password reset");
        self.spawn_mail(
            password_reset_notice(&user.email, &self.settings.public_url),
            user_id,
            "password_reset_notice",
        );
        Ok(())
    }

    /// Stores a new token for `user` with its event and mails the link, unless the hourly limit
    /// is reached; returns whether a mail is on its way.
    async fn issue_and_mail(&self, user: &User, purpose: EmailTokenPurpose) -> Result<bool, AuthError> {
        let now = self.clock.now();
        let token = random_token();
        let (ttl, kind, actor) = match purpose {
            EmailTokenPurpose::VerifyEmail => (VERIFY_EMAIL_TTL, "auth.email_verification_requested", Some(user.id)),
            // Anybody may ask for a reset: there is no actor to name.
            EmailTokenPurpose::ResetPassword => (RESET_PASSWORD_TTL, "auth.password_reset_requested", None),
            EmailTokenPurpose::ChangeEmail | EmailTokenPurpose::UndoEmailChange => {
                return Err(ApiError::Internal("email-change tokens are issued with their address".into()).into());
            }
        };
        let new = NewEmailToken {
            token_hash: sha256(token.as_bytes()),
            user_id: user.id,
            purpose,
            created_at: now,
            expires_at: now + ttl,
        };
        let event = Event::new(kind, user.id, actor, now, json!({ "user_id": user.id }));
        if !self.store.issue_email_token(&new, now - time::Duration::hours(1), MAILS_PER_HOUR, &event).await? {
            metrics::counter!("trellis_auth_mail_limited_total", "purpose" => purpose.as_str()).increment(1);
            tracing::info!(user_id = %user.id, purpose = purpose.as_str(), "hourly mail limit reached; nothing sent");
            return Ok(false);
        }
        self.wake_relay();
        let url = &self.settings.public_url;
        let mail = match purpose {
            EmailTokenPurpose::VerifyEmail => verification_mail(&user.email, &link(url, "verify-email", &token)),
            EmailTokenPurpose::ResetPassword => reset_mail(&user.email, &link(url, "reset-password", &token)),
            EmailTokenPurpose::ChangeEmail | EmailTokenPurpose::UndoEmailChange => return Ok(false),
        };
        self.spawn_mail(mail, user.id, purpose.as_str());
        Ok(true)
    }

    /// Sends off the request path, retrying a server that is down; a failure is logged (the
    /// user can ask again), never returned.
    pub(super) fn spawn_mail(&self, mail: Mail, user_id: Uuid, what: &'static str) {
        let mailer = self.settings.mailer.clone();
        tokio::spawn(async move {
            for attempt in 1..=MAIL_ATTEMPTS {
                match mailer.send(&mail).await {
                    Ok(()) => {
                        tracing::info!(user_id = %user_id, mail = what, "mail sent");
                        return;
                    }
                    Err(e @ MailError::Invalid(_)) => {
                        tracing::warn!(user_id = %user_id, mail = what, error = %e, "mail refused");
                        return;
                    }
                    Err(e) if attempt < MAIL_ATTEMPTS => {
                        tracing::warn!(user_id = %user_id, mail = what, attempt, error = %e, "mail not sent; retrying");
                        tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
                    }
                    Err(e) => {
                        metrics::counter!("trellis_mail_failures_total").increment(1);
                        tracing::error!(user_id = %user_id, mail = what, error = %e, "mail not sent; giving up");
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_token_in_the_fragment() {
        assert_eq!(
            link("http://127.0.0.1:8080/", "reset-password", "abc"),
            "http://127.0.0.1:8080/reset-password#token=abc"
        );
        assert_eq!(link("https://t.example", "verify-email", "x"), "https://t.example/verify-email#token=x");
    }

    #[test]
    fn mails_carry_their_link_on_a_line_of_its_own() {
        let l = link("http://h", "reset-password", "t0k3n");
        for mail in [verification_mail("a@b.c", &l), reset_mail("a@b.c", &l)] {
            assert!(mail.text.lines().any(|line| line == l), "{}", mail.subject);
            assert!(mail.text.is_ascii());
        }
        assert!(!password_reset_notice("a@b.c", "http://h").text.contains("#token="));
    }
}
