//! Whether GitHub can reach the server's external URL, judged from the URL alone, so that
//! `/setup` warns before it makes an App whose webhook goes nowhere.

use std::net::IpAddr;

/// Why GitHub may not reach (or should not be sent to) an external URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReachWarning {
    /// Not an `http(s)` URL with a host.
    Unusable,
    /// A loopback, private, link-local or unspecified address, or a name only this network
    /// knows (`localhost`, no dot, `.local`, `.internal`, `.lan`, `.home.arpa`).
    NotPublic(String),
    /// Plain `http`: webhooks and sign-in would cross the internet unencrypted, with no TLS
    /// proxy in front.
    PlainHttp,
}

impl std::fmt::Display for ReachWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReachWarning::Unusable => {
                write!(f, "The external URL is not an http(s) URL with a host.")
            }
            ReachWarning::NotPublic(host) => write!(
                f,
                "GitHub cannot reach {host}: it is not a public address. Start tether with \
                 --external-url set to the public https URL of a reverse proxy in front of it."
            ),
            ReachWarning::PlainHttp => write!(
                f,
                "The external URL is plain http: webhooks and sign-in would travel unencrypted. \
                 Put a reverse proxy with TLS in front and use its https URL."
            ),
        }
    }
}

/// What is wrong with `external_url` for GitHub to call it; empty when nothing is.
pub fn external_url_warnings(external_url: &str) -> Vec<ReachWarning> {
    let Ok(url) = url::Url::parse(external_url) else { return vec![ReachWarning::Unusable] };
    let plain = match url.scheme() {
        "https" => false,
        "http" => true,
        _ => return vec![ReachWarning::Unusable],
    };
    let host = match url.host() {
        Some(url::Host::Domain(name)) => (!public_name(name)).then(|| name.to_owned()),
        Some(url::Host::Ipv4(ip)) => (!public_ip(IpAddr::V4(ip))).then(|| ip.to_string()),
        Some(url::Host::Ipv6(ip)) => (!public_ip(IpAddr::V6(ip))).then(|| ip.to_string()),
        None => return vec![ReachWarning::Unusable],
    };
    let mut warnings: Vec<ReachWarning> = host.map(ReachWarning::NotPublic).into_iter().collect();
    if plain {
        warnings.push(ReachWarning::PlainHttp);
    }
    warnings
}

fn public_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let local = [".local", ".internal", ".lan", ".home.arpa", ".localhost"];
    name.contains('.') && !local.iter().any(|suffix| name.ends_with(suffix))
}

fn public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let shared = a == 100 && (64..128).contains(&b);
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || shared)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            let unique_local = first & 0xfe00 == 0xfc00;
            let link_local = first & 0xffc0 == 0xfe80;
            match v6.to_ipv4_mapped() {
                Some(v4) => public_ip(IpAddr::V4(v4)),
                None => !(v6.is_loopback() || v6.is_unspecified() || unique_local || link_local),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_public(url: &str) -> bool {
        external_url_warnings(url).iter().any(|w| matches!(w, ReachWarning::NotPublic(_)))
    }

    #[test]
    fn a_public_https_url_is_fine() {
        assert_eq!(external_url_warnings("https://ci.example.com"), []);
        assert_eq!(external_url_warnings("https://203.0.113.7:8443/tether"), []);
    }

    #[test]
    fn addresses_github_cannot_reach_are_named() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "https://10.1.2.3",
            "https://192.168.1.5",
            "https://172.16.0.1",
            "https://100.64.0.1",
            "https://169.254.1.1",
            "https://0.0.0.0",
            "https://[::1]",
            "https://[fd00::1]",
            "https://[fe80::1]",
            "https://[::ffff:127.0.0.1]",
            "https://ci",
            "https://ci.local",
            "https://build.internal",
        ] {
            assert!(not_public(url), "{url}");
        }
        assert_eq!(
            external_url_warnings("http://127.0.0.1:8080"),
            [ReachWarning::NotPublic("127.0.0.1".into()), ReachWarning::PlainHttp]
        );
    }

    #[test]
    fn plain_http_and_unusable_urls_are_warned_about() {
        assert_eq!(external_url_warnings("http://ci.example.com"), [ReachWarning::PlainHttp]);
        assert_eq!(external_url_warnings("ftp://ci.example.com"), [ReachWarning::Unusable]);
        assert_eq!(external_url_warnings("not a url"), [ReachWarning::Unusable]);
    }
}
