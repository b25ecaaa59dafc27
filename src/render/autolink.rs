//! Plain `http://` and `https://` URLs in a line's text, found so that the line links them as
//! it links OSC 8 hyperlinks (the same `href` checks, the same bounds).

/// The schemes a plain URL may start with, matched without regard to case.
const SCHEMES: [&[u8]; 2] = [b"https://", b"http://"];

/// Characters that end a plain URL although they are printable: quotes and brackets that
/// usually surround a URL in text, and characters a URL does not hold unencoded.
const STOPS: &[char] = &['<', '>', '"', '\'', '`', '\\', '{', '}', '|', '^'];

/// Characters dropped from a URL's end, as the sentence around it is more likely to own them.
const TRAILING: &[char] = &['.', ',', ':', ';', '!', '?', '*'];

/// Whether `c` may be part of a plain URL: printable ASCII but [`STOPS`].
fn is_url_char(c: char) -> bool {
    c.is_ascii_graphic() && !STOPS.contains(&c)
}

/// The length, in characters, of the plain URL that starts at character 0 of a text whose
/// character `k` is `at(k)` (`None` past the end or where the URL may not go on), if one does:
/// a scheme, a host that starts with a letter, a digit or `[`, and URL characters, without a
/// trailing [`TRAILING`] character or a closing bracket that no opening one in the URL matches.
pub(super) fn url_len(at: impl Fn(usize) -> Option<char>) -> Option<usize> {
    let scheme = SCHEMES.into_iter().find(|s| {
        s.iter()
            .enumerate()
            .all(|(k, b)| at(k).is_some_and(|c| c.eq_ignore_ascii_case(&char::from(*b))))
    })?;
    let host = at(scheme.len())?;
    if !(host.is_ascii_alphanumeric() || host == '[') {
        return None;
    }
    let mut chars: Vec<char> = Vec::new();
    while let Some(c) = at(chars.len()).filter(|&c| is_url_char(c)) {
        chars.push(c);
    }
    loop {
        let last = *chars.last()?;
        let unmatched = |open, close| {
            last == close
                && chars.iter().filter(|&&c| c == open).count()
                    < chars.iter().filter(|&&c| c == close).count()
        };
        if TRAILING.contains(&last) || unmatched('(', ')') || unmatched('[', ']') {
            chars.pop();
        } else {
            break;
        }
    }
    (chars.len() > scheme.len()).then_some(chars.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(text: &str) -> Option<usize> {
        let chars: Vec<char> = text.chars().collect();
        url_len(|k| chars.get(k).copied())
    }

    /// The URL found at the start of `text`, as text.
    fn url(text: &str) -> Option<String> {
        len(text).map(|n| text.chars().take(n).collect())
    }

    #[test]
    fn a_url_ends_at_a_blank_or_a_stop() {
        assert_eq!(
            url("https://x.test/a?b=1&c=2 next").as_deref(),
            Some("https://x.test/a?b=1&c=2")
        );
        assert_eq!(url("http://h:8080/p\"><script>").as_deref(), Some("http://h:8080/p"));
        assert_eq!(url("HTTPS://X.TEST/").as_deref(), Some("HTTPS://X.TEST/"));
        assert_eq!(url("http://[::1]:80/").as_deref(), Some("http://[::1]:80/"));
        assert_eq!(url("https://x.test/é").as_deref(), Some("https://x.test/"));
    }

    #[test]
    fn trailing_punctuation_and_unmatched_brackets_are_the_sentence_s() {
        assert_eq!(url("https://x.test/a.").as_deref(), Some("https://x.test/a"));
        assert_eq!(url("https://x.test/a).").as_deref(), Some("https://x.test/a"));
        assert_eq!(url("https://x.test/wiki/A_(b)").as_deref(), Some("https://x.test/wiki/A_(b)"));
        assert_eq!(url("https://x.test/a]:").as_deref(), Some("https://x.test/a"));
    }

    #[test]
    fn no_url_without_a_scheme_and_a_host() {
        assert_eq!(len("https://"), None);
        assert_eq!(len("https:// x"), None);
        assert_eq!(len("https:///etc/passwd"), None);
        assert_eq!(len("https://..."), None);
        assert_eq!(len("javascript:alert(1)"), None);
        assert_eq!(len("ftp://x.test/"), None);
        assert_eq!(len("http:/x.test"), None);
        assert_eq!(len(""), None);
    }
}
