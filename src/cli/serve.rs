//! `tether serve`: the server, on embedded defaults.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;

use crate::server::{Server, ServerConfig};

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
}

pub async fn main(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServerConfig {
        data_dir: args.data_dir.clone(),
        github_api_url: args.github_api_url.clone(),
    };
    let shutdown = super::shutdown_signal();
    let server = Server::open(&config).await?;
    let ssh = TcpListener::bind(&args.ssh_listen)
        .await
        .with_context(|| format!("binding SSH on {}", args.ssh_listen))?;
    let http = TcpListener::bind(&args.http_listen)
        .await
        .with_context(|| format!("binding HTTP on {}", args.http_listen))?;
    let http_addr = http.local_addr()?;
    let external = args.external_url.clone().unwrap_or_else(|| format!("http://{http_addr}"));
    // Tests read these lines to learn the ports they asked the system to choose.
    println!("tether: ssh host key {}", server.host_key.fingerprint());
    println!("tether: ssh listening on {}", ssh.local_addr()?);
    println!("tether: http listening on http://{http_addr} (external URL {external})");
    println!("tether: data in {}", args.data_dir.display());
    server.run(ssh, http, shutdown).await
}
