//! The MyMonit server: the REST API (`/api/v1` and the original routes), authentication and
//! roles, over the stores of `mymonit-store`.
//!
//! [`Server::build`] opens the stores and keys from [`Settings`]; [`Server::run`] serves on a
//! listener until a shutdown future completes, so tests bind port 0 and stop it at will.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod compat;
pub mod demo;
pub mod error;
pub mod ingest;
pub mod openapi;
pub mod router;
pub mod settings;
pub mod state;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use mymonit_store::{MetaStore, SqliteStore};
use tokio::net::TcpListener;

pub use settings::Settings;
pub use state::AppState;

use auth::{throttle::LoginThrottle, tokens::TokenService};

/// A server ready to run.
pub struct Server {
    state: AppState,
    store: SqliteStore,
}

impl Server {
    /// Opens the database (creating the data directory and applying migrations) and the
    /// signing key, and prepares the application state.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = SqliteStore::open(&settings.data_dir)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database in {}",
                    settings.data_dir.display()
                )
            })?;
        let tokens = TokenService::new(&settings.data_dir, &settings.auth, &settings.oidc)
            .context("cannot set up token signing")?;
        let decoy = uuid::Uuid::new_v4().to_string();
        let decoy_hash = auth::password::hash(decoy.into()).await?;
        let throttle = LoginThrottle::new(
            settings.auth.max_failed_logins,
            settings.auth.max_failed_logins_per_client,
            Duration::from_secs(settings.auth.failed_login_window_secs),
        );
        let state = AppState {
            meta: Arc::new(store.clone()),
            measures: Arc::new(store.clone()),
            tokens: Arc::new(tokens),
            throttle: Arc::new(throttle),
            settings: Arc::new(settings),
            decoy_hash: Arc::new(decoy_hash),
        };
        Ok(Self { state, store })
    }

    /// The shared state (for seeding the demo, or for tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Binds the configured listen address.
    pub async fn bind(&self) -> anyhow::Result<TcpListener> {
        let addr = self.state.settings.listen_addr()?;
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish and closes the
    /// database.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "MyMonit listening");
        let purge = tokio::spawn(purge_revoked_tokens(self.state.meta.clone()));
        let app = router::router(self.state.clone());
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server failed")?;
        purge.abort();
        self.store.close().await;
        tracing::info!("MyMonit stopped");
        Ok(())
    }
}

/// Forgets revocations of expired tokens, hourly.
async fn purge_revoked_tokens(meta: Arc<dyn MetaStore>) {
    let mut interval = tokio::time::interval(Duration::from_secs(3600));
    loop {
        interval.tick().await;
        let now = auth::tokens::epoch_seconds();
        if let Err(err) = meta.purge_revoked_tokens(now).await {
            tracing::warn!(error = %err, "cannot purge revoked tokens");
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
