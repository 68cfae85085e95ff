//! The quarantine states of attachments as both stores spell them (docs/SECURITY.md UP-5).

use api::projects::{AttachmentScan, AttachmentStatus};

/// The stored spelling of `s`.
pub fn status_str(s: AttachmentStatus) -> &'static str {
    match s {
        AttachmentStatus::Quarantined => "quarantined",
        AttachmentStatus::Available => "available",
        AttachmentStatus::Rejected => "rejected",
    }
}

/// The status spelled `s`, if any.
pub fn parse_status(s: &str) -> Option<AttachmentStatus> {
    [AttachmentStatus::Quarantined, AttachmentStatus::Available, AttachmentStatus::Rejected]
        .into_iter()
        .find(|v| status_str(*v) == s)
}

/// The stored spelling of `s`.
pub fn scan_str(s: AttachmentScan) -> &'static str {
    match s {
        AttachmentScan::None => "none",
        AttachmentScan::Pending => "pending",
        AttachmentScan::Clean => "clean",
        AttachmentScan::Infected => "infected",
    }
}

/// The scan spelled `s`, if any.
pub fn parse_scan(s: &str) -> Option<AttachmentScan> {
    [AttachmentScan::None, AttachmentScan::Pending, AttachmentScan::Clean, AttachmentScan::Infected]
        .into_iter()
        .find(|v| scan_str(*v) == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_match_serde() {
        for s in [AttachmentStatus::Quarantined, AttachmentStatus::Available, AttachmentStatus::Rejected] {
            assert_eq!(parse_status(status_str(s)), Some(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::from(status_str(s))));
        }
        for s in [AttachmentScan::None, AttachmentScan::Pending, AttachmentScan::Clean, AttachmentScan::Infected] {
            assert_eq!(parse_scan(scan_str(s)), Some(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::from(scan_str(s))));
        }
        assert_eq!(parse_status("deleted"), None);
        assert_eq!(parse_scan(""), None);
    }
}
