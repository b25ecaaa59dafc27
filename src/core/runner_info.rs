//! What a runner may say about itself: its name, its labels and the rest of its `Info`, each
//! bounded, each refused with a reason a person can act on.

use super::run::RunnerInfo;

/// The longest runner name, in characters.
pub const RUNNER_NAME_MAX_CHARS: usize = 64;
/// The most labels a runner carries.
pub const RUNNER_LABELS_MAX: usize = 32;
/// The longest label, in characters.
pub const RUNNER_LABEL_MAX_CHARS: usize = 64;
/// The most runs a runner may take at once (as `--max-runs` allows).
pub const RUNNER_CAPACITY_MAX: u32 = 256;
/// The longest os or arch name, in characters.
const PLATFORM_NAME_MAX_CHARS: usize = 32;
/// The longest version string, in characters.
const VERSION_MAX_CHARS: usize = 64;

/// A runner name: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, what a person types and what fits in a
/// path segment without meaning anything else there (`..`, `-rf`).
pub fn is_runner_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= RUNNER_NAME_MAX_CHARS
        && chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// [`is_runner_name`], with the reason.
pub fn check_runner_name(name: &str) -> Result<(), String> {
    if is_runner_name(name) {
        return Ok(());
    }
    Err(format!(
        "{name:?} is not a runner name: use 1 to {RUNNER_NAME_MAX_CHARS} letters, digits, '.', \
         '_' or '-', starting with a letter or digit"
    ))
}

/// At most [`RUNNER_LABELS_MAX`] labels of 1 to [`RUNNER_LABEL_MAX_CHARS`] letters, digits,
/// `.`, `_` or `-` (what a check's `labels` can name).
pub fn check_labels(labels: &[String]) -> Result<(), String> {
    if labels.len() > RUNNER_LABELS_MAX {
        return Err(format!(
            "{} labels: a runner carries at most {RUNNER_LABELS_MAX}",
            labels.len()
        ));
    }
    let bad = labels.iter().find(|label| {
        label.is_empty()
            || label.len() > RUNNER_LABEL_MAX_CHARS
            || !label.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    });
    match bad {
        Some(label) => Err(format!(
            "{:?} is not a label: use 1 to {RUNNER_LABEL_MAX_CHARS} letters, digits, '.', '_' \
             or '-'",
            shortened(label)
        )),
        None => Ok(()),
    }
}

/// Every field of a runner's `Info`; the error names the field.
pub fn check_info(info: &RunnerInfo) -> Result<(), String> {
    check_runner_name(&info.name).map_err(|e| format!("name: {e}"))?;
    for (field, value) in [("os", &info.os), ("arch", &info.arch)] {
        let ok = !value.is_empty()
            && value.len() <= PLATFORM_NAME_MAX_CHARS
            && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(format!(
                "{field}: {:?} is not 1 to {PLATFORM_NAME_MAX_CHARS} lowercase letters, digits \
                 or '_'",
                shortened(value)
            ));
        }
    }
    check_labels(&info.labels).map_err(|e| format!("labels: {e}"))?;
    if !(1..=RUNNER_CAPACITY_MAX).contains(&info.capacity) {
        return Err(format!("capacity: {} is not from 1 to {RUNNER_CAPACITY_MAX}", info.capacity));
    }
    if info.runs_in_flight > info.capacity {
        return Err(format!(
            "runs_in_flight: {} is more than the capacity, {}",
            info.runs_in_flight, info.capacity
        ));
    }
    let version_ok = !info.version.is_empty()
        && info.version.len() <= VERSION_MAX_CHARS
        && info.version.chars().all(|c| c.is_ascii_alphanumeric() || ".+-_".contains(c));
    if !version_ok {
        return Err(format!(
            "version: {:?} is not 1 to {VERSION_MAX_CHARS} letters, digits, '.', '+', '-' or '_'",
            shortened(&info.version)
        ));
    }
    Ok(())
}

/// At most the first 80 characters of `text`, for an error message.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunnerInfo {
        RunnerInfo {
            name: "laptop".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            labels: vec!["gpu".into(), "big-box".into()],
            capacity: 2,
            runs_in_flight: 1,
            version: "0.1.0".into(),
            protocol_version: 1,
        }
    }

    #[test]
    fn runner_names_are_what_a_person_types() {
        for good in ["laptop", "big-box.local", "A1", "x_y", &"a".repeat(64)] {
            assert!(is_runner_name(good), "{good}");
        }
        for bad in ["", "..", ".", "-rf", "_x", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(!is_runner_name(bad), "{bad}");
            assert!(check_runner_name(bad).unwrap_err().contains("not a runner name"));
        }
    }

    #[test]
    fn labels_are_few_and_short() {
        let labels = |n: usize, len: usize| vec!["l".repeat(len); n];
        assert!(check_labels(&labels(32, 64)).is_ok());
        assert!(check_labels(&[]).is_ok());
        assert_eq!(
            check_labels(&labels(33, 1)).unwrap_err(),
            "33 labels: a runner carries at most 32"
        );
        assert!(check_labels(&labels(1, 65)).unwrap_err().contains("is not a label"));
        assert!(check_labels(&["".into()]).is_err());
        assert!(check_labels(&["a,b".into()]).is_err());
        let error = check_labels(&labels(1, 20_000)).unwrap_err();
        assert!(error.len() < 200, "the error quotes a label whole: {error}");
    }

    #[test]
    fn every_info_field_is_checked_and_named() {
        assert_eq!(check_info(&info()), Ok(()));
        type Spoil = fn(&mut RunnerInfo);
        let cases: [(&str, Spoil); 10] = [
            ("name:", |i| i.name = "..".into()),
            ("os:", |i| i.os = "".into()),
            ("os:", |i| i.os = "Linux<script>".into()),
            ("arch:", |i| i.arch = "x".repeat(33)),
            ("labels:", |i| i.labels = vec!["x".into(); 20_002]),
            ("capacity:", |i| i.capacity = 0),
            ("capacity:", |i| i.capacity = 100_000),
            ("runs_in_flight:", |i| i.runs_in_flight = 3),
            ("version:", |i| i.version = "".into()),
            ("version:", |i| i.version = "1.0 <b>".into()),
        ];
        for (field, spoil) in cases {
            let mut bad = info();
            spoil(&mut bad);
            let error = check_info(&bad).unwrap_err();
            assert!(error.starts_with(field), "{field} {error}");
        }
    }
}
