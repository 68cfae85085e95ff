//! Validated values of the projects domain and the access rules: newtypes whose only constructor
//! is `parse`, so a value that exists is valid. No I/O, no serde.

pub mod attachments;
pub mod comments;
pub mod quarantine;
pub mod search;
pub mod tasks;

use api::projects::ProjectRole;
use api::users::Role;
use time::OffsetDateTime;
use uuid::Uuid;

/// Why a value was refused; the message is what the client reads next to the field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// A single-line text: trimmed, 1..=`max` characters, no control characters at all.
fn parse_line(s: &str, max: usize) -> Result<String, ValidationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ValidationError::Empty);
    }
    if s.chars().count() > max {
        return Err(ValidationError::TooLong { max });
    }
    if s.chars().any(char::is_control) {
        return Err(ValidationError::ControlCharacter);
    }
    Ok(s.to_string())
}

/// A project's name: trimmed, 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        parse_line(s, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task's title: trimmed, 1–200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTitle(String);

impl TaskTitle {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        parse_line(s, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A project's or task's description: free multi-line text (Markdown) of at most 10,000
/// characters, possibly empty. Kept as written (not trimmed: leading indentation can matter in
/// Markdown); line breaks and tabs are allowed, other control characters are not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 10_000;

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::TooLong { max: Self::MAX_CHARS });
        }
        if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(ValidationError::ControlCharacter);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the caller may do in a project: their membership role adjusted by their global role, or
/// `None` when the project is invisible to them.
///
/// - Admins act with owner authority everywhere (docs/API.md: admin is "everything"), member or not,
///   so they get `Owner`. This is also what `Project.role` reports to them: the field tells a
///   client which controls to offer, and an admin may use all of them. The actual membership
///   rows stay visible through the members list.
/// - Guests are read-only everywhere: any membership counts as `Viewer`.
/// - Everyone else gets their membership role, and no membership means no access.
pub fn effective_role(global: Role, membership: Option<ProjectRole>) -> Option<ProjectRole> {
    match (global, membership) {
        (Role::Admin, _) => Some(ProjectRole::Owner),
        (_, None) => None,
        (Role::Guest, Some(_)) => Some(ProjectRole::Viewer),
        (Role::User, Some(role)) => Some(role),
    }
}

/// Whether `role` may create and change the tasks of a project.
pub fn can_write_tasks(role: ProjectRole) -> bool {
    matches!(role, ProjectRole::Owner | ProjectRole::Editor)
}

/// Whether `global` may create projects: anyone but guests.
pub fn can_create_projects(global: Role) -> bool {
    global != Role::Guest
}

/// One project the erased user is involved in, as read inside the erasure's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Involvement {
    pub project_id: Uuid,
    /// `projects.owner_id`.
    pub owner_id: Uuid,
    /// The erased user's membership role, if they are a member.
    pub role: Option<ProjectRole>,
    /// The project's other `owner` memberships: (user, membership created_at).
    pub other_owners: Vec<(Uuid, OffsetDateTime)>,
}

/// What erasing a user does to one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectErasure {
    /// The user is its only owner: the project goes, with its members and tasks.
    Delete,
    /// Someone else owns it too: the user's membership goes (if any), and `projects.owner_id`
    /// moves to `new_owner` when it named the user.
    Leave { remove_membership: bool, new_owner: Option<Uuid> },
}

/// The rule of erasure for one project. The user is an owner when their membership says so or
/// `projects.owner_id` names them; with no other owner the project is deleted (even if editors
/// or viewers remain: nobody would be left to manage it). Otherwise the oldest other owner
/// membership (ties by user id, so the choice is deterministic) inherits `owner_id`.
pub fn plan_erasure(user: Uuid, p: &Involvement) -> ProjectErasure {
    let is_owner = p.role == Some(ProjectRole::Owner) || p.owner_id == user;
    let heir = p.other_owners.iter().filter(|(u, _)| *u != user).min_by_key(|(u, at)| (*at, *u)).map(|(u, _)| *u);
    match heir {
        None if is_owner => ProjectErasure::Delete,
        heir => ProjectErasure::Leave {
            remove_membership: p.role.is_some(),
            new_owner: if p.owner_id == user { heir } else { None },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn involvement(owner_id: Uuid, role: Option<ProjectRole>, others: &[(Uuid, i64)]) -> Involvement {
        Involvement {
            project_id: Uuid::from_u128(99),
            owner_id,
            role,
            other_owners: others
                .iter()
                .map(|&(u, s)| (u, OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(s)))
                .collect(),
        }
    }

    #[test]
    fn a_sole_owner_s_project_is_deleted_even_with_other_members() {
        let (me, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let p = involvement(me, Some(ProjectRole::Owner), &[]);
        assert_eq!(plan_erasure(me, &p), ProjectErasure::Delete);
        // owner_id names the user but the membership row is missing: still the only owner.
        let p = involvement(me, None, &[]);
        assert_eq!(plan_erasure(me, &p), ProjectErasure::Delete);
        // An owner membership without owner_id, and no other owner (owner_id names a non-owner).
        let p = involvement(other, Some(ProjectRole::Owner), &[]);
        assert_eq!(plan_erasure(me, &p), ProjectErasure::Delete);
    }

    #[test]
    fn with_another_owner_the_user_leaves_and_the_oldest_owner_inherits() {
        let (me, a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3), Uuid::from_u128(4));
        let p = involvement(me, Some(ProjectRole::Owner), &[(a, 20), (c, 10), (b, 10)]);
        assert_eq!(plan_erasure(me, &p), ProjectErasure::Leave { remove_membership: true, new_owner: Some(b) });
        // Someone else holds owner_id: it stays.
        let p = involvement(a, Some(ProjectRole::Owner), &[(a, 0)]);
        assert_eq!(plan_erasure(me, &p), ProjectErasure::Leave { remove_membership: true, new_owner: None });
    }

    #[test]
    fn editors_and_viewers_only_leave() {
        let (me, a) = (Uuid::from_u128(1), Uuid::from_u128(2));
        for role in [ProjectRole::Editor, ProjectRole::Viewer] {
            let p = involvement(a, Some(role), &[(a, 0)]);
            assert_eq!(plan_erasure(me, &p), ProjectErasure::Leave { remove_membership: true, new_owner: None });
            // Even in a project that has no owner membership left: only the user's row goes.
            let p = involvement(a, Some(role), &[]);
            assert_eq!(plan_erasure(me, &p), ProjectErasure::Leave { remove_membership: true, new_owner: None });
        }
    }

    #[test]
    fn project_name_is_trimmed() {
        assert_eq!(ProjectName::parse("  Apollo \n").map(|n| n.as_str().to_string()), Ok("Apollo".into()));
    }

    #[test]
    fn project_name_rejects_empty_and_blank() {
        assert_eq!(ProjectName::parse(""), Err(ValidationError::Empty));
        assert_eq!(ProjectName::parse(" \t "), Err(ValidationError::Empty));
    }

    #[test]
    fn project_name_length_counts_characters_not_bytes() {
        assert!(ProjectName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(ProjectName::parse(&"a".repeat(101)), Err(ValidationError::TooLong { max: 100 }));
        // Surrounding whitespace does not count.
        assert!(ProjectName::parse(&format!("  {}  ", "a".repeat(100))).is_ok());
    }

    #[test]
    fn project_name_rejects_inner_control_characters() {
        assert_eq!(ProjectName::parse("a\nb"), Err(ValidationError::ControlCharacter));
        assert_eq!(ProjectName::parse("a\u{7}b"), Err(ValidationError::ControlCharacter));
        assert_eq!(ProjectName::parse("a\u{9b}b"), Err(ValidationError::ControlCharacter));
    }

    #[test]
    fn task_title_bounds() {
        assert!(TaskTitle::parse("x").is_ok());
        assert!(TaskTitle::parse(&"x".repeat(200)).is_ok());
        assert_eq!(TaskTitle::parse(&"x".repeat(201)), Err(ValidationError::TooLong { max: 200 }));
        assert_eq!(TaskTitle::parse("   "), Err(ValidationError::Empty));
        assert_eq!(TaskTitle::parse("a\tb"), Err(ValidationError::ControlCharacter));
    }

    #[test]
    fn description_allows_empty_and_line_breaks_but_not_other_controls() {
        assert_eq!(Description::parse("").map(|d| d.as_str().to_string()), Ok(String::new()));
        assert_eq!(
            Description::parse("  - item\r\n\tmore\n").map(|d| d.as_str().to_string()),
            Ok("  - item\r\n\tmore\n".into())
        );
        assert_eq!(Description::parse("a\u{0}b"), Err(ValidationError::ControlCharacter));
        assert_eq!(Description::parse("a\u{1b}[31m"), Err(ValidationError::ControlCharacter));
    }

    #[test]
    fn description_is_at_most_10000_characters() {
        assert!(Description::parse(&"ü".repeat(10_000)).is_ok());
        assert_eq!(Description::parse(&"a".repeat(10_001)), Err(ValidationError::TooLong { max: 10_000 }));
    }

    #[test]
    fn admins_have_owner_authority_everywhere() {
        assert_eq!(effective_role(Role::Admin, None), Some(ProjectRole::Owner));
        assert_eq!(effective_role(Role::Admin, Some(ProjectRole::Viewer)), Some(ProjectRole::Owner));
    }

    #[test]
    fn non_members_have_no_access() {
        assert_eq!(effective_role(Role::User, None), None);
        assert_eq!(effective_role(Role::Guest, None), None);
    }

    #[test]
    fn guests_are_read_only_whatever_their_membership() {
        for m in [ProjectRole::Owner, ProjectRole::Editor, ProjectRole::Viewer] {
            let role = effective_role(Role::Guest, Some(m));
            assert_eq!(role, Some(ProjectRole::Viewer));
            assert!(!role.is_some_and(can_write_tasks));
        }
        assert!(!can_create_projects(Role::Guest));
        assert!(can_create_projects(Role::User));
    }

    #[test]
    fn users_get_their_membership_role() {
        for m in [ProjectRole::Owner, ProjectRole::Editor, ProjectRole::Viewer] {
            assert_eq!(effective_role(Role::User, Some(m)), Some(m));
        }
        assert!(can_write_tasks(ProjectRole::Owner));
        assert!(can_write_tasks(ProjectRole::Editor));
        assert!(!can_write_tasks(ProjectRole::Viewer));
    }
}
