//! Why a call to GitHub failed: the one mapping of octocrab's errors and GitHub's statuses, and
//! whether trying again can help.

use std::time::{Duration, SystemTime};

use crate::core::retry::FailureKind;

/// How long a rate limit lasts when GitHub names no end: its documentation says to wait at least
/// a minute.
const RATE_LIMIT_DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// Why a call to GitHub failed, as callers need to branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    /// No such user (or other thing); also what an impossible login gets, without a request.
    #[error("not found on GitHub")]
    NotFound,
    /// 401 or 403: GitHub's own message says why.
    #[error("GitHub refused our credentials: {0}")]
    Unauthorized(String),
    /// 5xx, timeouts and connection errors: worth trying again later.
    #[error("GitHub is unavailable: {0}")]
    Unavailable(String),
    /// A rate limit (429, or 403 with no requests left or a `retry-after`): worth trying again
    /// once it ends, at `until` (from `retry-after` or `x-ratelimit-reset`).
    #[error("GitHub's rate limit is spent: {message}")]
    RateLimited { until: SystemTime, message: String },
    /// A file too large to read through the contents API; tether does not read it another way.
    #[error("the file is too large to read")]
    TooLarge,
    #[error("GitHub error: {0}")]
    Other(String),
}

impl GitHubError {
    /// Whether trying again can help: an outage passes, a rate limit ends; GitHub's refusal of
    /// the request itself (any other 4xx: a 404, a 422, a 401 or 403 on our credentials) and
    /// what it is about being gone (an installation, a pull request's head) stay.
    pub fn kind(&self) -> FailureKind {
        match self {
            GitHubError::Unavailable(_) => FailureKind::Transient,
            GitHubError::RateLimited { until, .. } => FailureKind::RateLimited { until: *until },
            GitHubError::NotFound
            | GitHubError::Unauthorized(_)
            | GitHubError::TooLarge
            | GitHubError::Other(_) => FailureKind::Permanent,
        }
    }

    /// Whether the error passes by itself (an outage or a rate limit).
    pub fn is_passing(&self) -> bool {
        self.kind() != FailureKind::Permanent
    }
}

/// What GitHub's headers say of a refusal's rate limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `x-ratelimit-remaining: 0`.
    pub exhausted: bool,
    /// `retry-after`, in seconds.
    pub retry_after: Option<Duration>,
    /// `x-ratelimit-reset`, the end of the window.
    pub reset_at: Option<SystemTime>,
}

impl RateLimitHeaders {
    fn from_headers(headers: &http::HeaderMap) -> RateLimitHeaders {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        RateLimitHeaders {
            exhausted: number("x-ratelimit-remaining") == Some(0),
            retry_after: number("retry-after").map(Duration::from_secs),
            reset_at: number("x-ratelimit-reset")
                .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
        }
    }

    /// When the limit ends: `retry-after` first, then the window's reset, else a minute.
    fn until(&self, now: SystemTime) -> SystemTime {
        match (self.retry_after, self.reset_at) {
            (Some(after), _) => now + after,
            (None, Some(reset)) => reset,
            (None, None) => now + RATE_LIMIT_DEFAULT_WAIT,
        }
    }
}

/// Converts what octocrab returned. Transport failures arrive as `Service` (the request never
/// got a whole answer) or `Hyper` (the body broke off); both mean GitHub could not be reached.
pub fn from_octocrab(error: octocrab::Error) -> GitHubError {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            let limit =
                source.headers.as_ref().map(RateLimitHeaders::from_headers).unwrap_or_default();
            let message = with_details(&source.message, source.errors.as_deref());
            classify(source.status_code.as_u16(), limit, &message, SystemTime::now())
        }
        octocrab::Error::Service { source, .. } => GitHubError::Unavailable(chain(&*source)),
        octocrab::Error::Hyper { source, .. } => GitHubError::Unavailable(chain(&source)),
        octocrab::Error::Json { source, .. } => {
            GitHubError::Other(format!("unexpected answer: {source}"))
        }
        other => GitHubError::Other(chain(&other)),
    }
}

/// Maps an HTTP error status and GitHub's message, for a caller that read no headers but
/// whether the rate limit is spent.
pub fn from_status(status: u16, rate_limit_exhausted: bool, message: &str) -> GitHubError {
    let limit = RateLimitHeaders { exhausted: rate_limit_exhausted, ..RateLimitHeaders::default() };
    classify(status, limit, message, SystemTime::now())
}

/// Maps an HTTP error status, its rate limit headers and GitHub's message; `now` dates a
/// `retry-after`. A rate limit (429, or 403 with no requests left or a `retry-after`) is not a
/// verdict on our credentials: it passes.
pub fn classify(
    status: u16,
    limit: RateLimitHeaders,
    message: &str,
    now: SystemTime,
) -> GitHubError {
    let rate_limited = || GitHubError::RateLimited {
        until: limit.until(now),
        message: format!("HTTP {status}: {message}"),
    };
    match status {
        404 => GitHubError::NotFound,
        429 => rate_limited(),
        403 if limit.exhausted || limit.retry_after.is_some() => rate_limited(),
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
    fn rate_limits_wait_until_the_time_github_names() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let limited = |status, limit| classify(status, limit, "API rate limit exceeded", now);
        let until = |error: GitHubError| match error {
            GitHubError::RateLimited { until, .. } => until,
            other => panic!("not a rate limit: {other:?}"),
        };
        let reset = now + Duration::from_secs(1_234);
        let exhausted =
            RateLimitHeaders { exhausted: true, reset_at: Some(reset), ..Default::default() };
        assert_eq!(until(limited(403, exhausted)), reset);
        let secondary =
            RateLimitHeaders { retry_after: Some(Duration::from_secs(30)), ..Default::default() };
        assert_eq!(until(limited(403, secondary)), now + Duration::from_secs(30));
        assert_eq!(until(limited(429, secondary)), now + Duration::from_secs(30));
        // A 429 that names no end waits a minute.
        assert_eq!(until(limited(429, RateLimitHeaders::default())), now + RATE_LIMIT_DEFAULT_WAIT);
        // A 403 with requests left is a refusal, not a limit.
        let left = RateLimitHeaders { reset_at: Some(reset), ..Default::default() };
        assert!(matches!(limited(403, left), GitHubError::Unauthorized(_)));
    }

    #[test]
    fn rate_limit_headers_are_read_from_the_response() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", "1700000100".parse().unwrap());
        headers.insert("retry-after", " 7 ".parse().unwrap());
        let read = RateLimitHeaders::from_headers(&headers);
        let reset = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let expected = RateLimitHeaders {
            exhausted: true,
            retry_after: Some(Duration::from_secs(7)),
            reset_at: Some(reset),
        };
        assert_eq!(read, expected);
        headers.insert("x-ratelimit-remaining", "12".parse().unwrap());
        headers.insert("retry-after", "soon".parse().unwrap());
        let read = RateLimitHeaders::from_headers(&headers);
        assert_eq!((read.exhausted, read.retry_after), (false, None));
    }

    #[test]
    fn outages_and_limits_pass_and_refusals_stay() {
        let until = SystemTime::UNIX_EPOCH;
        assert_eq!(GitHubError::Unavailable("HTTP 502".into()).kind(), FailureKind::Transient);
        let limited = GitHubError::RateLimited { until, message: "HTTP 429".into() };
        assert_eq!(limited.kind(), FailureKind::RateLimited { until });
        for refused in [
            GitHubError::NotFound,
            GitHubError::Unauthorized("Resource not accessible by integration".into()),
            GitHubError::Other("HTTP 422: Validation Failed".into()),
            GitHubError::Other("the head repository of #3 is gone".into()),
            GitHubError::TooLarge,
        ] {
            assert_eq!(refused.kind(), FailureKind::Permanent, "{refused:?}");
            assert!(!refused.is_passing());
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
