//! GitHub logins, checked before one goes into a URL.

/// GitHub's longest login.
const LOGIN_MAX_CHARS: usize = 39;

/// `login` if GitHub could have given it out: ASCII letters and digits, with single hyphens
/// between them, at most 39 characters. Anything else could not name a user, and must not
/// reach a URL path, where `/`, `..`, `?` or `%` would change what we ask for.
pub fn valid(login: &str) -> Option<&str> {
    let well_formed = !login.is_empty()
        && login.len() <= LOGIN_MAX_CHARS
        && login.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--");
    well_formed.then_some(login)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_logins_github_gives_out() {
        for login in ["a", "octocat", "Octo-Cat", "x1-2-3", "0", &"a".repeat(39)] {
            assert_eq!(valid(login), Some(login), "{login:?}");
        }
    }

    #[test]
    fn rejects_what_could_change_the_url_or_cannot_be_a_login() {
        let too_long = "a".repeat(40);
        for login in [
            "",
            "-octo",
            "octo-",
            "oc--to",
            "octo/keys",
            "..",
            "../user",
            "octo?x=1",
            "octo%2fx",
            "octo cat",
            "octo.cat",
            "octo_cat",
            "öcto",
            "octo\n",
            too_long.as_str(),
        ] {
            assert_eq!(valid(login), None, "{login:?}");
        }
    }
}
