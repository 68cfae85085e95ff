//! Validated values of a task beyond its title and description: labels and due dates. No I/O.

use time::Date;

/// Why labels were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("must have at most {max} labels")]
    TooMany { max: usize },
    #[error("label {index} must not be empty")]
    Empty { index: usize },
    #[error("label {index} must be at most {max} characters")]
    TooLong { index: usize, max: usize },
    #[error("label {index} must not contain control characters")]
    ControlCharacter { index: usize },
}

/// A task's labels: each trimmed, 1–50 characters without control characters; duplicates (after
/// trimming, compared exactly) dropped keeping the first; at most 20 once de-duplicated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels(Vec<String>);

impl Labels {
    pub const MAX_LABELS: usize = 20;
    pub const MAX_CHARS: usize = 50;

    /// `index` in errors counts from 0, in the list as given.
    pub fn parse(raw: &[String]) -> Result<Self, LabelsError> {
        let mut out: Vec<String> = Vec::with_capacity(raw.len().min(Self::MAX_LABELS));
        for (index, label) in raw.iter().enumerate() {
            let label = label.trim();
            if label.is_empty() {
                return Err(LabelsError::Empty { index });
            }
            if label.chars().count() > Self::MAX_CHARS {
                return Err(LabelsError::TooLong { index, max: Self::MAX_CHARS });
            }
            if label.chars().any(char::is_control) {
                return Err(LabelsError::ControlCharacter { index });
            }
            if !out.iter().any(|l| l == label) {
                out.push(label.to_string());
            }
        }
        if out.len() > Self::MAX_LABELS {
            return Err(LabelsError::TooMany { max: Self::MAX_LABELS });
        }
        Ok(Self(out))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// Why a date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a date, YYYY-MM-DD")]
pub struct DateError;

/// A calendar date written exactly `YYYY-MM-DD` (years 0001–9999, what both databases store).
pub fn parse_date(s: &str) -> Result<Date, DateError> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    if !shape || s.starts_with("0000") {
        return Err(DateError);
    }
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| DateError)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(raw: &[&str]) -> Result<Vec<String>, LabelsError> {
        Labels::parse(&raw.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(Labels::into_vec)
    }

    #[test]
    fn labels_are_trimmed_and_deduplicated_in_order() {
        assert_eq!(labels(&[" b ", "a", "b", "a "]), Ok(vec!["b".to_string(), "a".to_string()]));
        assert_eq!(labels(&[]), Ok(vec![]));
        // Case matters: "Bug" and "bug" are two labels.
        assert_eq!(labels(&["Bug", "bug"]).map(|l| l.len()), Ok(2));
    }

    #[test]
    fn label_bounds() {
        assert!(labels(&[&"é".repeat(50)]).is_ok());
        assert_eq!(labels(&["ok", &"x".repeat(51)]), Err(LabelsError::TooLong { index: 1, max: 50 }));
        assert_eq!(labels(&["  "]), Err(LabelsError::Empty { index: 0 }));
        assert_eq!(labels(&["a\u{7}b"]), Err(LabelsError::ControlCharacter { index: 0 }));
        let twenty: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert!(Labels::parse(&twenty).is_ok());
        let mut more = twenty.clone();
        more.push("20".into());
        assert_eq!(Labels::parse(&more), Err(LabelsError::TooMany { max: 20 }));
        // 21 entries that are 20 labels once de-duplicated are fine.
        more[20] = "0".into();
        assert!(Labels::parse(&more).is_ok());
    }

    #[test]
    fn dates_are_exactly_yyyy_mm_dd() {
        assert_eq!(parse_date("2030-02-28").map(|d| d.to_string()), Ok("2030-02-28".into()));
        for bad in
            ["2030-02-30", "2030-2-28", "30-02-28", "2030-02-28T00:00", "+030-02-28", "0000-01-01", "", "abcd-ef-gh"]
        {
            assert_eq!(parse_date(bad), Err(DateError), "{bad}");
        }
        assert!(parse_date("0001-01-01").is_ok());
        assert!(parse_date("9999-12-31").is_ok());
    }
}
