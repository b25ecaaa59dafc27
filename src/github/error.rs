//! Why a call to GitHub failed: the one mapping of octocrab's errors and GitHub's statuses.

/// Why a call to GitHub failed, as callers need to branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    /// No such user (or other thing); also what an impossible login gets, without a request.
    #[error("not found on GitHub")]
    NotFound,
    /// 401 or 403: GitHub's own message says why.
    #[error("GitHub refused our credentials: {0}")]
    Unauthorized(String),
    /// 5xx, rate limits, timeouts and connection errors: worth trying again later.
    #[error("GitHub is unavailable: {0}")]
    Unavailable(String),
    /// A file too large to read through the contents API; tether does not read it another way.
    #[error("the file is too large to read")]
    TooLarge,
    #[error("GitHub error: {0}")]
    Other(String),
}

/// Converts what octocrab returned. Transport failures arrive as `Service` (the request never
/// got a whole answer) or `Hyper` (the body broke off); both mean GitHub could not be reached.
pub fn from_octocrab(error: octocrab::Error) -> GitHubError {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            let exhausted = source
                .headers
                .as_ref()
                .and_then(|headers| headers.get("x-ratelimit-remaining"))
                .is_some_and(|remaining| remaining == "0");
            let message = with_details(&source.message, source.errors.as_deref());
            from_status(source.status_code.as_u16(), exhausted, &message)
        }
        octocrab::Error::Service { source, .. } => GitHubError::Unavailable(chain(&*source)),
        octocrab::Error::Hyper { source, .. } => GitHubError::Unavailable(chain(&source)),
        octocrab::Error::Json { source, .. } => {
            GitHubError::Other(format!("unexpected answer: {source}"))
        }
        other => GitHubError::Other(chain(&other)),
    }
}

/// Maps an HTTP error status and GitHub's message. A rate limit (429, or 403 with no requests
/// left) is not a verdict on our credentials: it passes, so it counts as unavailable.
pub fn from_status(status: u16, rate_limit_exhausted: bool, message: &str) -> GitHubError {
    match status {
        404 => GitHubError::NotFound,
        429 => GitHubError::Unavailable(format!("rate limited: {message}")),
        403 if rate_limit_exhausted => GitHubError::Unavailable(format!("rate limited: {message}")),
        401 | 403 => GitHubError::Unauthorized(message.to_string()),
        500..=599 => GitHubError::Unavailable(format!("HTTP {status}: {message}")),
        _ => GitHubError::Other(format!("HTTP {status}: {message}")),
    }
}

/// GitHub's message and the details of a 422 ("Validation Failed" alone says nothing of what
/// was invalid).
fn with_details(message: &str, errors: Option<&[serde_json::Value]>) -> String {
    match errors {
        Some(errors) if !errors.is_empty() => {
            let details: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!("{message}: {}", details.join(", "))
        }
        _ => message.to_string(),
    }
}

/// An error and its causes on one line: hyper's own messages ("client error (Connect)") say
/// little without the cause underneath.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_each_status_class() {
        assert_eq!(from_status(404, false, "Not Found"), GitHubError::NotFound);
        assert_eq!(
            from_status(401, false, "Bad credentials"),
            GitHubError::Unauthorized("Bad credentials".into())
        );
        assert_eq!(
            from_status(403, false, "Resource not accessible by integration"),
            GitHubError::Unauthorized("Resource not accessible by integration".into())
        );
        assert_eq!(
            from_status(502, false, "Server Error"),
            GitHubError::Unavailable("HTTP 502: Server Error".into())
        );
        assert_eq!(
            from_status(422, false, "Validation Failed"),
            GitHubError::Other("HTTP 422: Validation Failed".into())
        );
    }

    #[test]
    fn rate_limits_are_unavailable_not_unauthorized() {
        let limited = "API rate limit exceeded";
        for (status, exhausted) in [(403, true), (429, false), (429, true)] {
            assert_eq!(
                from_status(status, exhausted, limited),
                GitHubError::Unavailable(format!("rate limited: {limited}")),
                "{status}"
            );
        }
    }

    #[test]
    fn validation_details_are_kept() {
        let errors = [serde_json::json!({"field": "name", "code": "missing_field"})];
        assert_eq!(
            with_details("Validation Failed", Some(&errors)),
            r#"Validation Failed: {"code":"missing_field","field":"name"}"#
        );
        assert_eq!(with_details("Not Found", Some(&[])), "Not Found");
        assert_eq!(with_details("Not Found", None), "Not Found");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn chain_names_every_cause() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(chain(&Wrapper(refused)), "client error (Connect): refused");
        assert_eq!(chain(&std::io::Error::other("alone")), "alone");
    }
}
