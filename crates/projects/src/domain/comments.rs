//! Comments on tasks: the body's rules and who may write, change and delete a comment.

use api::projects::ProjectRole;
use uuid::Uuid;

use super::{Description, ValidationError};

/// A comment's body: Markdown text of 1–10,000 characters, not blank. Kept as written (leading
/// indentation can matter in Markdown); line breaks and tabs are allowed, other control
/// characters are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentBody(String);

impl CommentBody {
    pub const MAX_CHARS: usize = Description::MAX_CHARS;

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.trim().is_empty() {
            return Err(ValidationError::Empty);
        }
        // A description's rules, which are the same text rules with the same limit.
        Description::parse(s).map(|d| Self(d.as_str().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `role` (an effective role, [`super::effective_role`]) may comment: owners and editors.
/// A viewer is read-only, comments included; guests are viewers at most.
pub fn can_comment(role: ProjectRole) -> bool {
    matches!(role, ProjectRole::Owner | ProjectRole::Editor)
}

/// Whether `actor` with effective role `role` may change the comment written by `author`: only
/// its author, and only while they may still comment in the project.
pub fn can_edit_comment(actor: Uuid, role: ProjectRole, author: Uuid) -> bool {
    actor == author && can_comment(role)
}

/// Whether `actor` with effective role `role` may delete the comment written by `author`: its
/// author (whatever their role now: taking back one's own words is not writing new content),
/// the project's owners and admins (who have owner authority everywhere).
pub fn can_delete_comment(actor: Uuid, role: ProjectRole, author: Uuid) -> bool {
    actor == author || role == ProjectRole::Owner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_1_to_10000_characters_not_blank() {
        assert!(CommentBody::parse("x").is_ok());
        assert!(CommentBody::parse(&"é".repeat(10_000)).is_ok());
        assert_eq!(CommentBody::parse(&"a".repeat(10_001)), Err(ValidationError::TooLong { max: 10_000 }));
        assert_eq!(CommentBody::parse(""), Err(ValidationError::Empty));
        assert_eq!(CommentBody::parse(" \n\t "), Err(ValidationError::Empty));
    }

    #[test]
    fn body_keeps_markdown_as_written_but_refuses_control_characters() {
        let md = "  - item\r\n\t```\ncode\n```\n";
        assert_eq!(CommentBody::parse(md).map(|b| b.as_str().to_string()), Ok(md.to_string()));
        assert_eq!(CommentBody::parse("a\u{0}b"), Err(ValidationError::ControlCharacter));
        assert_eq!(CommentBody::parse("a\u{1b}[31m"), Err(ValidationError::ControlCharacter));
    }

    #[test]
    fn owners_and_editors_comment_viewers_do_not() {
        assert!(can_comment(ProjectRole::Owner));
        assert!(can_comment(ProjectRole::Editor));
        assert!(!can_comment(ProjectRole::Viewer));
    }

    #[test]
    fn only_the_author_edits_and_only_while_able_to_comment() {
        let (me, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(can_edit_comment(me, ProjectRole::Editor, me));
        assert!(!can_edit_comment(me, ProjectRole::Viewer, me), "demoted to viewer");
        assert!(!can_edit_comment(other, ProjectRole::Owner, me), "not even an owner edits others' words");
    }

    #[test]
    fn authors_and_owners_delete() {
        let (me, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(can_delete_comment(me, ProjectRole::Viewer, me));
        assert!(can_delete_comment(other, ProjectRole::Owner, me));
        assert!(!can_delete_comment(other, ProjectRole::Editor, me));
    }
}
