//! Whether to trust a server's SSH host key: what known_hosts records and the user's flags
//! decide between accepting it, recording it first, or refusing the connection.

/// A host key, as far as trusting it goes: its algorithm and SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyId {
    /// The algorithm's SSH name, such as `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:` and unpadded base64, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// A key recorded for the host in a known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedKey {
    pub key: HostKeyId,
    /// The line of the known_hosts file it is on, for the message when it no longer matches.
    pub line: usize,
}

/// Everything the decision depends on.
#[derive(Debug, Clone)]
pub struct HostKeyCheck<'a> {
    /// The host as known_hosts names it: `host`, or `[host]:port` for a port other than 22.
    pub host: &'a str,
    pub offered: &'a HostKeyId,
    /// The keys recorded for `host`.
    pub recorded: &'a [RecordedKey],
    /// `--accept-new-host-key`: trust (and record) the key of a host with none recorded.
    pub accept_new: bool,
    /// `--host-key-fingerprint`: the key the user says the server has.
    pub pinned: Option<&'a str>,
}

/// What to do with the offered key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyDecision {
    /// Known: go on.
    Accept,
    /// New and trusted by a flag: add it to known_hosts, then go on.
    Record,
    Refuse(HostKeyRefusal),
}

/// Why a host key was refused; each message says what the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyRefusal {
    #[error(
        "the host key of {host} is not known: it offered {algorithm} {offered}. If that is the \
         server's key, connect again with --host-key-fingerprint {offered} (or \
         --accept-new-host-key to trust whatever key it offers the first time)"
    )]
    Unknown { host: String, algorithm: String, offered: String },
    #[error(
        "THE HOST KEY OF {host} HAS CHANGED: known_hosts line {line} expects {algorithm} \
         {expected}, but the server offered {offered}. Someone may be intercepting the \
         connection; if the server's key really changed, remove that line and connect again"
    )]
    Changed { host: String, algorithm: String, expected: String, offered: String, line: usize },
    #[error("the host key of {host} is {offered}, not {pinned} as --host-key-fingerprint says")]
    PinMismatch { host: String, pinned: String, offered: String },
    #[error(
        "known_hosts records a {known} key for {host}, but the server offered a {algorithm} key \
         {offered}. If that is the server's key, connect again with --host-key-fingerprint \
         {offered}"
    )]
    OtherTypeKnown { host: String, known: String, algorithm: String, offered: String },
}

/// Decides. A changed key is always refused; a pin that does not match always refuses; a new
/// key is recorded when a pin matches it or `accept_new` says so, but `accept_new` does not
/// cover a host that already has a key of another type recorded.
pub fn decide(check: &HostKeyCheck) -> HostKeyDecision {
    let offered = check.offered;
    let same_type = |r: &&RecordedKey| r.key.algorithm == offered.algorithm;
    let known = check
        .recorded
        .iter()
        .filter(same_type)
        .any(|r| same_fingerprint(&r.key.fingerprint, &offered.fingerprint));
    if let Some(changed) = check.recorded.iter().find(same_type).filter(|_| !known) {
        return HostKeyDecision::Refuse(HostKeyRefusal::Changed {
            host: check.host.to_string(),
            algorithm: offered.algorithm.clone(),
            expected: changed.key.fingerprint.clone(),
            offered: offered.fingerprint.clone(),
            line: changed.line,
        });
    }
    if let Some(pinned) = check.pinned {
        if !same_fingerprint(pinned, &offered.fingerprint) {
            return HostKeyDecision::Refuse(HostKeyRefusal::PinMismatch {
                host: check.host.to_string(),
                pinned: pinned.to_string(),
                offered: offered.fingerprint.clone(),
            });
        }
    }
    if known {
        return HostKeyDecision::Accept;
    }
    if check.pinned.is_some() {
        return HostKeyDecision::Record;
    }
    if let Some(other) = check.recorded.first() {
        return HostKeyDecision::Refuse(HostKeyRefusal::OtherTypeKnown {
            host: check.host.to_string(),
            known: other.key.algorithm.clone(),
            algorithm: offered.algorithm.clone(),
            offered: offered.fingerprint.clone(),
        });
    }
    if check.accept_new {
        return HostKeyDecision::Record;
    }
    HostKeyDecision::Refuse(HostKeyRefusal::Unknown {
        host: check.host.to_string(),
        algorithm: offered.algorithm.clone(),
        offered: offered.fingerprint.clone(),
    })
}

/// Fingerprints compare with or without base64 padding: OpenSSH prints them without.
fn same_fingerprint(a: &str, b: &str) -> bool {
    a.trim_end_matches('=') == b.trim_end_matches('=')
}

/// Checks the form of a `--host-key-fingerprint` value.
pub fn parse_fingerprint(text: &str) -> Result<String, String> {
    let Some(base64) = text.strip_prefix("SHA256:") else {
        return Err(format!(
            "`{text}`: write the fingerprint as ssh-keygen -l prints it, SHA256:…"
        ));
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    // 32 bytes are 43 characters of unpadded base64.
    if base64.trim_end_matches('=').len() != 43 || !base64.chars().all(valid) {
        return Err(format!(
            "`{text}`: a SHA256 fingerprint has 43 base64 characters after `SHA256:`"
        ));
    }
    Ok(text.trim_end_matches('=').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "SHA256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const HOST: &str = "[ci.example.com]:6455";

    fn key(algorithm: &str, fingerprint: &str) -> HostKeyId {
        HostKeyId { algorithm: algorithm.into(), fingerprint: fingerprint.into() }
    }

    fn recorded(algorithm: &str, fingerprint: &str, line: usize) -> RecordedKey {
        RecordedKey { key: key(algorithm, fingerprint), line }
    }

    fn decide_with(
        recorded: &[RecordedKey],
        offered: &HostKeyId,
        accept_new: bool,
        pinned: Option<&str>,
    ) -> HostKeyDecision {
        decide(&HostKeyCheck { host: HOST, offered, recorded, accept_new, pinned })
    }

    #[test]
    fn a_known_key_is_accepted_whatever_the_flags() {
        let known = [recorded("ssh-ed25519", A, 3)];
        let offered = key("ssh-ed25519", A);
        for accept_new in [false, true] {
            for pinned in [None, Some(A)] {
                assert_eq!(
                    decide_with(&known, &offered, accept_new, pinned),
                    HostKeyDecision::Accept
                );
            }
        }
    }

    #[test]
    fn an_unknown_host_is_refused_unless_a_flag_trusts_it() {
        let offered = key("ssh-ed25519", A);
        let refused = decide_with(&[], &offered, false, None);
        let HostKeyDecision::Refuse(refusal @ HostKeyRefusal::Unknown { .. }) = refused else {
            panic!("{refused:?}");
        };
        let message = refusal.to_string();
        assert!(message.contains(A) && message.contains(HOST), "{message}");
        assert!(message.contains("--accept-new-host-key"), "{message}");
        assert_eq!(decide_with(&[], &offered, true, None), HostKeyDecision::Record);
        assert_eq!(decide_with(&[], &offered, false, Some(A)), HostKeyDecision::Record);
        let padded = format!("{A}=");
        assert_eq!(decide_with(&[], &offered, false, Some(&padded)), HostKeyDecision::Record);
    }

    #[test]
    fn a_pin_that_does_not_match_refuses_even_a_known_or_new_key() {
        let offered = key("ssh-ed25519", A);
        let known = [recorded("ssh-ed25519", A, 1)];
        for (recorded, accept_new) in [(&[][..], true), (&known[..], false)] {
            let decision = decide_with(recorded, &offered, accept_new, Some(B));
            assert!(
                matches!(&decision, HostKeyDecision::Refuse(HostKeyRefusal::PinMismatch { pinned, offered, .. }) if pinned == B && offered == A),
                "{decision:?}"
            );
        }
    }

    #[test]
    fn a_changed_key_is_refused_with_both_fingerprints_whatever_the_flags() {
        let known = [recorded("ssh-rsa", B, 2), recorded("ssh-ed25519", B, 7)];
        let offered = key("ssh-ed25519", A);
        for (accept_new, pinned) in [(false, None), (true, None), (true, Some(A))] {
            let decision = decide_with(&known, &offered, accept_new, pinned);
            let HostKeyDecision::Refuse(refusal @ HostKeyRefusal::Changed { line: 7, .. }) =
                decision
            else {
                panic!("{decision:?}");
            };
            let message = refusal.to_string();
            assert!(message.contains(A) && message.contains(B), "{message}");
        }
    }

    #[test]
    fn one_matching_line_among_several_of_the_type_is_enough() {
        let known = [recorded("ssh-ed25519", B, 1), recorded("ssh-ed25519", A, 2)];
        let offered = key("ssh-ed25519", A);
        assert_eq!(decide_with(&known, &offered, false, None), HostKeyDecision::Accept);
    }

    #[test]
    fn a_new_key_type_for_a_known_host_needs_a_pin() {
        let known = [recorded("ssh-rsa", B, 1)];
        let offered = key("ssh-ed25519", A);
        let decision = decide_with(&known, &offered, true, None);
        assert!(
            matches!(
                &decision,
                HostKeyDecision::Refuse(HostKeyRefusal::OtherTypeKnown { known, .. }) if known == "ssh-rsa"
            ),
            "{decision:?}"
        );
        assert_eq!(decide_with(&known, &offered, false, Some(A)), HostKeyDecision::Record);
    }

    #[test]
    fn fingerprints_are_checked_for_form() {
        assert_eq!(parse_fingerprint(A).unwrap(), A);
        assert_eq!(parse_fingerprint(&format!("{A}=")).unwrap(), A);
        assert!(parse_fingerprint("MD5:aa:bb").unwrap_err().contains("SHA256:"));
        assert!(parse_fingerprint("SHA256:short").unwrap_err().contains("43"));
        assert!(parse_fingerprint(&format!("{}!", &A[..A.len() - 1])).unwrap_err().contains("43"));
    }
}
