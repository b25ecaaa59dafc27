//! Repositories, file paths, commit SHAs and codes, checked before one goes into a URL.

use super::login;

/// GitHub's longest repository name.
const REPO_NAME_MAX_CHARS: usize = 100;
/// Hex digits of a SHA-1 commit id, and of a SHA-256 one.
const SHA1_HEX_CHARS: usize = 40;
const SHA256_HEX_CHARS: usize = 64;
/// Longer than any code GitHub hands out in the manifest flow.
const MANIFEST_CODE_MAX_CHARS: usize = 100;

/// `"owner/name"` split in two, if both could be GitHub's. Anything else must not reach a URL
/// path, where `/`, `..`, `?` or `%` would change what we ask for.
pub fn repo(full_name: &str) -> Option<(&str, &str)> {
    let (owner, name) = full_name.split_once('/')?;
    let name_ok = !name.is_empty()
        && name.len() <= REPO_NAME_MAX_CHARS
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != "..";
    (login::valid(owner).is_some() && name_ok).then_some((owner, name))
}

/// A path inside a repository, percent-encoded segment by segment; `None` for an empty
/// segment, `.` or `..`, which would name another file or none.
pub fn file_path(path: &str) -> Option<String> {
    let mut encoded = Vec::new();
    for segment in path.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return None;
        }
        encoded.push(percent_encode(segment));
    }
    Some(encoded.join("/"))
}

/// A full commit SHA (SHA-1 or SHA-256), as hex.
pub fn sha(sha: &str) -> Option<&str> {
    let full = sha.len() == SHA1_HEX_CHARS || sha.len() == SHA256_HEX_CHARS;
    (full && sha.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sha)
}

/// A code from the App Manifest flow's redirect: letters, digits, `-` and `_`.
pub fn manifest_code(code: &str) -> Option<&str> {
    let ok = !code.is_empty()
        && code.len() <= MANIFEST_CODE_MAX_CHARS
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    ok.then_some(code)
}

/// Keeps RFC 3986's unreserved characters; encodes every other byte as `%XX`.
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos_are_owner_and_name() {
        assert_eq!(repo("octo/hello-world"), Some(("octo", "hello-world")));
        assert_eq!(repo("Octo-Org/my_repo.rs"), Some(("Octo-Org", "my_repo.rs")));
        let too_long = format!("octo/{}", "a".repeat(101));
        for bad in ["octo", "octo/", "/repo", "octo/a/b", "octo/..", "octo/.", "oc to/x", "o/x?y"] {
            assert_eq!(repo(bad), None, "{bad:?}");
        }
        assert_eq!(repo(&too_long), None);
    }

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(file_path("tether.toml").unwrap(), "tether.toml");
        assert_eq!(file_path(".github/ci conf.toml").unwrap(), ".github/ci%20conf.toml");
        assert_eq!(file_path("a/ü?#%").unwrap(), "a/%C3%BC%3F%23%25");
        for bad in ["", "/abs", "a//b", "a/", "../x", "a/./b"] {
            assert_eq!(file_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn shas_are_full_hex() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(sha(sha1), Some(sha1));
        assert!(sha(&"f".repeat(64)).is_some());
        for bad in ["main", "0123456", &"g".repeat(40), &format!("{sha1}&x=1")] {
            assert_eq!(sha(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn manifest_codes_are_plain() {
        assert_eq!(manifest_code("a1b2_c3-d4"), Some("a1b2_c3-d4"));
        for bad in ["", "a/b", "a?b", "..", &"a".repeat(101)] {
            assert_eq!(manifest_code(bad), None, "{bad:?}");
        }
    }
}
