//! The GitHub App's settings: from flags, or created through GitHub's App Manifest flow and
//! kept in the data dir (mode 0600), so that nobody copies keys by hand.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::github::{AppCredentials, NewApp, OAuthClient};

/// The file in the data dir that holds an app created by `/setup`.
pub const APP_FILE: &str = "github-app.json";

/// A GitHub App tether acts as.
#[derive(Clone, Serialize, Deserialize)]
pub struct SavedApp {
    pub app_id: u64,
    pub slug: String,
    pub private_key_pem: String,
    pub webhook_secret: String,
    /// The App's OAuth client, for sign-in; absent from files written before sign-in existed.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for SavedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedApp")
            .field("app_id", &self.app_id)
            .field("slug", &self.slug)
            .finish_non_exhaustive()
    }
}

impl SavedApp {
    pub fn from_new(app: NewApp) -> SavedApp {
        SavedApp {
            app_id: app.id,
            slug: app.slug,
            private_key_pem: app.pem,
            webhook_secret: app.webhook_secret,
            client_id: Some(app.client_id),
            client_secret: Some(app.client_secret),
        }
    }

    pub fn credentials(&self) -> AppCredentials {
        AppCredentials { app_id: self.app_id, private_key_pem: self.private_key_pem.clone() }
    }

    /// The App's OAuth client, when the file has one.
    pub fn oauth(&self) -> Option<OAuthClient> {
        match (&self.client_id, &self.client_secret) {
            (Some(id), Some(secret)) => {
                Some(OAuthClient { client_id: id.clone(), client_secret: secret.clone() })
            }
            _ => None,
        }
    }

    /// The app saved in `data_dir`, if there is one.
    pub fn load(data_dir: &Path) -> anyhow::Result<Option<SavedApp>> {
        let path = data_dir.join(APP_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading {}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Saves it in `data_dir`, readable by this user only.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<PathBuf> {
        let path = data_dir.join(APP_FILE);
        let temp = data_dir.join(format!("{APP_FILE}.new"));
        let _ = std::fs::remove_file(&temp);
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        Ok(path)
    }
}

/// The manifest `/setup` posts to GitHub: the permissions and events tether needs, and where
/// GitHub should send webhooks and the person afterwards.
pub fn manifest(external_url: &str) -> serde_json::Value {
    let base = external_url.trim_end_matches('/');
    let host =
        url::Url::parse(base).ok().and_then(|u| u.host_str().map(String::from)).unwrap_or_default();
    serde_json::json!({
        "name": format!("tether {host}").chars().take(34).collect::<String>(),
        "url": base,
        "hook_attributes": { "url": format!("{base}/integrations/github/events"), "active": true },
        "redirect_url": format!("{base}/setup/callback"),
        // Where "Sign in with GitHub" comes back to.
        "callback_urls": [format!("{base}/auth/callback")],
        "public": false,
        "default_permissions": {
            "checks": "write",
            "contents": "read",
            "pull_requests": "read",
            "issues": "write",
            "deployments": "write",
            "metadata": "read"
        },
        // Installation events are sent to every app without subscribing.
        "default_events": ["push", "pull_request", "check_run", "check_suite", "issue_comment", "repository"]
    })
}

/// GitHub's web address for an API address: api.github.com is github.com; GitHub Enterprise
/// serves its API under `/api/v3` of the web host; anything else (a test fake) is itself.
pub fn web_url(api_url: &str) -> String {
    let api = api_url.trim_end_matches('/');
    if api == "https://api.github.com" {
        return "https://github.com".into();
    }
    api.strip_suffix("/api/v3").unwrap_or(api).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_asks_for_what_tether_needs() {
        let m = manifest("https://ci.example.com/");
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://ci.example.com/integrations/github/events"
        );
        assert_eq!(m["redirect_url"], "https://ci.example.com/setup/callback");
        assert_eq!(m["callback_urls"][0], "https://ci.example.com/auth/callback");
        assert!(m["default_events"].as_array().unwrap().contains(&"repository".into()));
        assert_eq!(m["default_permissions"]["checks"], "write");
        assert_eq!(m["default_permissions"]["deployments"], "write");
        assert!(m["default_events"].as_array().unwrap().contains(&"issue_comment".into()));
    }

    #[test]
    fn web_urls() {
        assert_eq!(web_url("https://api.github.com"), "https://github.com");
        assert_eq!(web_url("https://ghe.example.com/api/v3/"), "https://ghe.example.com");
        assert_eq!(web_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn a_saved_app_is_private_and_loads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(SavedApp::load(dir.path()).unwrap().is_none());
        let app = SavedApp {
            app_id: 7,
            slug: "t".into(),
            private_key_pem: "PEM".into(),
            webhook_secret: "s".into(),
            client_id: Some("Iv1.x".into()),
            client_secret: Some("CS".into()),
        };
        let path = app.save(dir.path()).unwrap();
        assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        let back = SavedApp::load(dir.path()).unwrap().unwrap();
        assert_eq!((back.app_id, back.webhook_secret.as_str()), (7, "s"));
        assert!(!format!("{back:?}").contains("PEM"));
        assert!(!format!("{back:?}").contains("CS"));
        assert_eq!(back.oauth().unwrap().client_id, "Iv1.x");
        // A file from before sign-in loads, without a client.
        std::fs::write(
            path,
            r#"{"app_id":1,"slug":"t","private_key_pem":"P","webhook_secret":"s"}"#,
        )
        .unwrap();
        assert!(SavedApp::load(dir.path()).unwrap().unwrap().oauth().is_none());
    }
}
