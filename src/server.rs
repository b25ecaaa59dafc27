//! The server, assembled: data dir, SQLite, host key, the SSH gateway and HTTP, started on
//! listeners the caller bound and stopped by the caller's shutdown future.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::access::Access;
use crate::data_dir::DataDirLock;
use crate::engine::live::LiveLogs;
use crate::engine::{Engine, EngineConfig};
use crate::github::{AppCredentials, GitHub, GitHubWeb, OAuthClient, UserLookups};
use crate::http::auth::SignIn;
use crate::http::setup::Setup;
use crate::http::{self, AppState, HttpLimits};
use crate::logs::LogStore;
use crate::setup::SavedApp;
use crate::ssh::host_key::HostKey;
use crate::ssh::server::{Gateway, Keyring, SshLimits};
use crate::store::Store;

/// The SQLite file inside the data dir.
pub const DATABASE_FILE: &str = "tether.db";
/// The SSH host key inside the data dir.
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub github_api_url: String,
    /// GitHub's web host, where people sign in (`--github-url`).
    pub github_web_url: String,
    /// The App's OAuth client from flags; else the one `/setup` saved.
    pub oauth: Option<OAuthClient>,
    /// How long GitHub's answers about people are kept (`core::auth::ACCESS_CACHE_TTL`).
    pub access_cache_ttl: std::time::Duration,
    /// The GitHub App: its id and private key (PEM), and the webhook secret.
    pub github_app: Option<AppCredentials>,
    pub webhook_secret: Option<String>,
    /// `--blobs`; `None` for `file://` under the data dir.
    pub blobs: Option<String>,
    pub engine: EngineConfig,
    /// What bounds SSH connections before they log in.
    pub ssh_limits: SshLimits,
    /// What bounds HTTP connections.
    pub http_limits: HttpLimits,
}

/// An opened server, ready to run.
pub struct Server {
    /// Held until [`Server::run`] returns: no other server opens this data dir meanwhile.
    lock: DataDirLock,
    pub host_key: HostKey,
    pub store: Store,
    pub gateway: Gateway,
    /// Runs webhooks into check runs; `None` until a GitHub App is configured.
    pub engine: Option<Engine>,
    webhook_secret: Option<String>,
    logs: LogStore,
    /// Running runs' lines, shared by the engine (now or after `/setup`) and HTTP.
    live: LiveLogs,
    /// While no App is configured: the code of the one setup link, printed at start.
    pub setup_code: Option<String>,
    sign_in: Arc<SignIn>,
    /// The App's slug, when `/setup` made it.
    app_slug: Option<String>,
    /// The App's credentials, when configured at start.
    app: Option<AppCredentials>,
    parts: Parts,
}

/// What it takes to start an engine later, when `/setup` creates the app.
#[derive(Clone)]
struct Parts {
    store: Store,
    gateway: Gateway,
    logs: LogStore,
    live: LiveLogs,
    config: ServerConfig,
    /// Logins' look-ups, switched to the app's credentials with the engine.
    lookups: Arc<UserLookups>,
    /// The engine `/setup` started, for the server's shutdown to stop.
    started: Arc<std::sync::Mutex<Option<Engine>>>,
    /// Who may read what; asks permissions as the app once there is one.
    access: Access,
}

impl Parts {
    fn engine(&self, app: AppCredentials) -> anyhow::Result<Engine> {
        let github = GitHub::with_app(&self.config.github_api_url, app)
            .context("configuring the GitHub App")?;
        self.lookups.use_app(github.clone());
        self.access.use_app(github.clone());
        let (store, gateway, logs) = (self.store.clone(), self.gateway.clone(), self.logs.clone());
        let (live, config) = (self.live.clone(), self.config.engine.clone());
        let access = self.access.clone();
        Ok(Engine::new((store, github, access), gateway, logs, live, config))
    }

    /// Asks GitHub for the slug of an App given by flags, for the setup page, in the
    /// background: the server does not wait on GitHub to start.
    fn learn_slug(&self, app: AppCredentials, slot: Arc<std::sync::RwLock<Option<String>>>) {
        let api_url = self.config.github_api_url.clone();
        tokio::spawn(async move {
            let slug = match GitHub::with_app(&api_url, app) {
                Ok(github) => github.app_slug().await,
                Err(e) => Err(e),
            };
            match slug {
                Ok(slug) => *slot.write().expect("slug lock poisoned") = Some(slug),
                Err(e) => tracing::warn!("learning the GitHub App's slug: {e}"),
            }
        });
    }

    /// The `/setup` flow, and the task that starts the engine with the app it creates.
    fn setup(
        &self,
        deliveries: Arc<tokio::sync::Notify>,
        code: String,
    ) -> anyhow::Result<Arc<Setup>> {
        let (activate, mut created) = tokio::sync::mpsc::unbounded_channel::<SavedApp>();
        let github =
            GitHub::new(&self.config.github_api_url).context("configuring the GitHub client")?;
        let config = &self.config;
        let setup = Setup::new(
            github,
            config.data_dir.clone(),
            config.engine.external_url.clone(),
            code,
            activate,
        );
        let parts = self.clone();
        tokio::spawn(async move {
            if let Some(app) = created.recv().await {
                match parts.engine(app.credentials()) {
                    Ok(engine) => {
                        engine.spawn(deliveries);
                        *parts.started.lock().expect("engine slot poisoned") = Some(engine);
                    }
                    Err(e) => tracing::error!(
                        error = format!("{e:#}"),
                        "starting with the new GitHub App failed"
                    ),
                }
            }
        });
        Ok(Arc::new(setup))
    }
}

impl Server {
    /// Creates the data dir (0700) and locks it, opens the database, forgets runners left over
    /// from a crash, and loads or creates the host key. When another process holds the data
    /// dir, fails with [`crate::data_dir::LockError::InUse`] before touching anything in it.
    pub async fn open(config: &ServerConfig) -> anyhow::Result<Server> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data dir {}", dir.display()))?;
        let lock = DataDirLock::acquire(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let store = Store::open(&dir.join(DATABASE_FILE)).await.context("opening the database")?;
        let stale = store.clear_runners().await?;
        if stale > 0 {
            tracing::info!(runners = stale, "removed runners left over from a server that crashed");
        }
        let host_key = HostKey::load_or_create(&dir.join(HOST_KEY_FILE))?;
        let github =
            GitHub::new(&config.github_api_url).context("configuring the GitHub client")?;
        // Anonymous until an app is configured, below or later by `/setup`.
        let lookups = Arc::new(UserLookups::new(github.clone()));
        let keyring = Keyring::new(lookups.clone());
        let external = Some(config.engine.external_url.clone());
        let gateway = Gateway::new(store.clone(), keyring, Some(lookups.clone()), external);
        let logs = LogStore::open(config.blobs.as_deref(), dir)?;
        let saved = SavedApp::load(dir)?;
        let oauth = config.oauth.clone().or_else(|| saved.as_ref().and_then(SavedApp::oauth));
        let (app, webhook_secret, app_slug) = match (&config.github_app, saved) {
            (Some(app), _) => (Some(app.clone()), config.webhook_secret.clone(), None),
            (None, Some(saved)) => (
                Some(saved.credentials()),
                Some(saved.webhook_secret.clone()),
                Some(saved.slug.clone()),
            ),
            (None, None) => (None, config.webhook_secret.clone(), None),
        };
        // A new code at each start: the link it makes is printed, and only it offers the form.
        let setup_code = app.is_none().then(|| hex::encode(rand::random::<[u8; 16]>()));
        if app.is_none() {
            tracing::warn!("no GitHub App is configured: open the setup link printed on stdout");
        }
        let web =
            GitHubWeb::new(&config.github_web_url).context("configuring GitHub's web host")?;
        let sign_in = Arc::new(SignIn::new(web, oauth, &config.engine.external_url));
        let access = Access::new(store.clone(), github.clone(), None, config.access_cache_ttl);
        let parts = Parts {
            store: store.clone(),
            gateway: gateway.clone(),
            logs: logs.clone(),
            live: LiveLogs::default(),
            config: config.clone(),
            lookups,
            started: Arc::default(),
            access,
        };
        let engine = app.clone().map(|app| parts.engine(app)).transpose()?;
        let live = parts.live.clone();
        Ok(Server {
            lock,
            host_key,
            store,
            gateway,
            engine,
            webhook_secret,
            logs,
            live,
            setup_code,
            sign_in,
            app_slug,
            app,
            parts,
        })
    }

    /// Runs SSH and HTTP until `shutdown` resolves or one of them fails; after a shutdown, stops
    /// the engine's loops and waits for them.
    pub async fn run(
        self,
        ssh: TcpListener,
        http: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let secret = self.webhook_secret.map(String::into_bytes);
        let access = self.parts.access.clone();
        let mut state = AppState::new(
            self.store.clone(),
            secret,
            Some(self.logs),
            self.live,
            access,
            self.sign_in,
        );
        // The engine's slot, shared with HTTP (for cancel and re-run) and filled by `/setup`
        // when it starts one later.
        state.engine = self.parts.started.clone();
        if let Some(engine) = &self.engine {
            *self.parts.started.lock().expect("engine slot poisoned") = Some(engine.clone());
        }
        match (self.app_slug, &self.app) {
            (Some(slug), _) => *state.app_slug.write().expect("slug lock poisoned") = Some(slug),
            (None, Some(app)) => self.parts.learn_slug(app.clone(), state.app_slug.clone()),
            (None, None) => {}
        }
        match (&self.engine, self.setup_code) {
            (Some(engine), _) => engine.spawn(state.deliveries.clone()),
            (None, Some(code)) => {
                state.setup = Some(self.parts.setup(state.deliveries.clone(), code)?);
            }
            (None, None) => anyhow::bail!("no GitHub App and no setup code"),
        }
        let (ssh_limits, http_limits) =
            (self.parts.config.ssh_limits, self.parts.config.http_limits);
        let mut ssh_task = tokio::spawn(crate::ssh::server::serve(
            ssh,
            self.host_key,
            self.gateway,
            ssh_limits,
            stopped(stop_rx.clone()),
        ));
        let mut http_task = tokio::spawn(http::serve(http, state, http_limits, stopped(stop_rx)));
        let early = tokio::select! {
            () = shutdown => None,
            result = &mut ssh_task => Some(("ssh", result)),
            result = &mut http_task => Some(("http", result)),
        };
        let _ = stop_tx.send(true);
        if let Some((which, result)) = early {
            result.with_context(|| format!("the {which} server panicked"))??;
            anyhow::bail!("the {which} server stopped on its own");
        }
        ssh_task.await.context("the ssh server panicked")??;
        http_task.await.context("the http server panicked")??;
        // The engine's loops last: HTTP no longer stores deliveries for them.
        let started = self.parts.started.lock().expect("engine slot poisoned").take();
        if let Some(engine) = self.engine.or(started) {
            engine.shutdown().await;
        }
        // Every session is closed, but their own clean-up may not have run yet; with the data
        // dir locked, every runner in the database is this server's.
        self.store.clear_runners().await.context("removing this server's runners")?;
        drop(self.lock);
        Ok(())
    }
}
