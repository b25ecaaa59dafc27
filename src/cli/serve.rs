//! `tether serve`: the server, on embedded defaults.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;

use crate::engine::EngineConfig;
use crate::github::{AppCredentials, OAuthClient};
use crate::http::HttpLimits;
use crate::server::{Server, ServerConfig};
use crate::ssh::server::SshLimits;

#[derive(Args)]
pub struct ServeArgs {
    /// Where the database, the SSH host key and the blobs live.
    #[arg(long, env = "TETHER_DATA_DIR", default_value = "tether-data")]
    data_dir: PathBuf,
    /// The SSH gateway's address.
    #[arg(long, env = "TETHER_SSH_LISTEN", default_value = "0.0.0.0:6455")]
    ssh_listen: String,
    /// The HTTP server's address (webhooks, pages, API).
    #[arg(long, env = "TETHER_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    http_listen: String,
    /// The public base URL of the HTTP server, for links (default: http://HTTP_LISTEN).
    #[arg(long, env = "TETHER_EXTERNAL_URL")]
    external_url: Option<String>,
    /// GitHub's API: api.github.com, a GitHub Enterprise server, or a test fake.
    #[arg(long, env = "TETHER_GITHUB_API_URL", default_value = "https://api.github.com")]
    github_api_url: String,
    /// GitHub's web host, where people sign in (default: the API URL's: https://github.com for
    /// api.github.com, the host of a GitHub Enterprise `/api/v3`).
    #[arg(long, env = "TETHER_GITHUB_URL")]
    github_url: Option<String>,
    /// The GitHub App's OAuth client id, for "Sign in with GitHub" (`/setup` saves its own).
    #[arg(long, env = "TETHER_GITHUB_CLIENT_ID", requires = "github_client_secret")]
    github_client_id: Option<String>,
    /// The GitHub App's OAuth client secret.
    #[arg(
        long,
        env = "TETHER_GITHUB_CLIENT_SECRET",
        hide_env_values = true,
        requires = "github_client_id"
    )]
    github_client_secret: Option<String>,
    /// The GitHub App's id.
    #[arg(long, env = "TETHER_GITHUB_APP_ID", requires = "github_app_key")]
    github_app_id: Option<u64>,
    /// The GitHub App's private key (a PEM file).
    #[arg(long, env = "TETHER_GITHUB_APP_KEY", value_name = "FILE", requires = "github_app_id")]
    github_app_key: Option<PathBuf>,
    /// The GitHub App's webhook secret.
    #[arg(long, env = "TETHER_GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    github_webhook_secret: Option<String>,
    /// Where logs go: file:///…, memory://, and with the `cloud` feature s3://…, gs://…, az://…
    /// (credentials from AWS_*, GOOGLE_*, AZURE_*); default: blobs/ in the data dir.
    #[arg(long, env = "TETHER_BLOBS", value_name = "URL")]
    blobs: Option<String>,
    /// HOST:PORT that runners connect to, for the connect command check runs show (default: the
    /// external URL's host and the SSH port).
    #[arg(long, env = "TETHER_SSH_PUBLIC_ADDR")]
    ssh_public_addr: Option<String>,
    /// How long a run waits for a runner before it ends timed out.
    #[arg(long, env = "TETHER_QUEUE_TTL", default_value = "24h", value_parser = parse_duration)]
    queue_ttl: Duration,
    /// The most bytes of one run's output that are stored, as bytes or with KiB, MiB, GiB (the
    /// run goes on; a marker line says where the log was cut).
    #[arg(long, env = "TETHER_LOG_MAX_BYTES", value_name = "SIZE", default_value = "1GiB", value_parser = crate::core::size::parse)]
    log_max_bytes: u64,
    /// How long an SSH connection has from its first byte to a successful login. For tests
    /// and operators; hidden, as the default suits the internet.
    #[arg(long, env = "TETHER_SSH_LOGIN_TIMEOUT", hide = true, default_value = "30s", value_parser = parse_duration)]
    ssh_login_timeout: Duration,
    /// How long GitHub's answers about people (who a token is, what they may read) are kept.
    /// For tests; hidden, as the default is what the design asks.
    #[arg(long, env = "TETHER_ACCESS_CACHE_TTL", hide = true, default_value = "5m", value_parser = parse_duration)]
    access_cache_ttl: Duration,
    /// How long an HTTP client has to send a request's headers. For tests and operators.
    #[arg(long, env = "TETHER_HTTP_HEADER_TIMEOUT", hide = true, default_value = "30s", value_parser = parse_duration)]
    http_header_timeout: Duration,
    /// How long an HTTP client has to send a request's body. For tests and operators.
    #[arg(long, env = "TETHER_HTTP_BODY_TIMEOUT", hide = true, default_value = "60s", value_parser = parse_duration)]
    http_body_timeout: Duration,
}

/// Sets up the process for serving strangers: files it creates are its own (umask 077: the
/// database, its WAL files, keys and blobs are 0600, directories 0700), and the soft open
/// files limit is raised to the hard one. Returns the open files limit in force.
pub fn prepare_process() -> u64 {
    use nix::sys::stat::{Mode, umask};
    umask(Mode::from_bits_truncate(0o077));
    match crate::net::raise_file_limit() {
        Ok(limit) => limit,
        Err(e) => {
            let assumed = super::FILE_LIMIT_UNKNOWN;
            tracing::warn!(error = %e, "cannot raise the open files limit; assuming {assumed}");
            assumed
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::core::duration::parse(text)
}

pub async fn main(args: ServeArgs, file_limit: u64) -> anyhow::Result<()> {
    let shutdown = super::shutdown_signal();
    let ssh = TcpListener::bind(&args.ssh_listen)
        .await
        .with_context(|| format!("binding SSH on {}", args.ssh_listen))?;
    let http = TcpListener::bind(&args.http_listen)
        .await
        .with_context(|| format!("binding HTTP on {}", args.http_listen))?;
    let http_addr = http.local_addr()?;
    let external = args.external_url.clone().unwrap_or_else(|| format!("http://{http_addr}"));
    let ssh_public_addr = match &args.ssh_public_addr {
        Some(addr) => addr.clone(),
        None => {
            let host = url::Url::parse(&external).ok().and_then(|u| u.host_str().map(String::from));
            format!("{}:{}", host.unwrap_or_else(|| "localhost".into()), ssh.local_addr()?.port())
        }
    };
    let config = ServerConfig {
        data_dir: args.data_dir.clone(),
        github_api_url: args.github_api_url.clone(),
        github_web_url: args
            .github_url
            .clone()
            .unwrap_or_else(|| crate::setup::web_url(&args.github_api_url)),
        oauth: match (&args.github_client_id, &args.github_client_secret) {
            (Some(client_id), Some(client_secret)) => Some(OAuthClient {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            }),
            _ => None,
        },
        access_cache_ttl: args.access_cache_ttl,
        github_app: app_credentials(&args)?,
        webhook_secret: args.github_webhook_secret.clone(),
        blobs: args.blobs.clone(),
        engine: EngineConfig {
            external_url: external.clone(),
            ssh_public_addr,
            queue_ttl: args.queue_ttl,
            log_max_bytes: args.log_max_bytes,
        },
        ssh_limits: SshLimits {
            login_timeout: args.ssh_login_timeout,
            ..SshLimits::for_file_limit(file_limit)
        },
        http_limits: HttpLimits {
            header_timeout: args.http_header_timeout,
            body_timeout: args.http_body_timeout,
            ..HttpLimits::for_file_limit(file_limit)
        },
    };
    let server = Server::open(&config).await?;
    // Tests read these lines to learn the ports they asked the system to choose.
    println!("tether: ssh host key {}", server.host_key.fingerprint());
    if let Some(code) = &server.setup_code {
        let base = external.trim_end_matches('/');
        println!("tether: no GitHub App is configured; set one up at {base}/setup?code={code}");
    }
    println!("tether: ssh listening on {}", ssh.local_addr()?);
    println!("tether: http listening on http://{http_addr} (external URL {external})");
    println!("tether: data in {}", args.data_dir.display());
    server.run(ssh, http, shutdown).await?;
    println!("tether: stopped");
    Ok(())
}

fn app_credentials(args: &ServeArgs) -> anyhow::Result<Option<AppCredentials>> {
    let (Some(app_id), Some(key)) = (args.github_app_id, &args.github_app_key) else {
        return Ok(None);
    };
    let private_key_pem =
        std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    Ok(Some(AppCredentials { app_id, private_key_pem }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_log_size_is_the_engines() {
        assert_eq!(crate::core::size::parse("1GiB"), Ok(crate::engine::DEFAULT_LOG_MAX_BYTES));
    }
}
