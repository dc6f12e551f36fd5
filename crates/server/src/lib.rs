//! The MyMonit server: the REST API (`/api/v1` and the original routes), authentication and
//! roles, over the stores of `mymonit-store`.
//!
//! [`Server::build`] opens the stores and keys from [`Settings`]; [`Server::run`] serves on a
//! listener until a shutdown future completes, so tests bind port 0 and stop it at will.

pub mod accounts;
pub mod alerting;
pub mod api;
pub mod audit;
pub mod auth;
pub mod background;
pub mod client;
pub mod compat;
pub mod demo;
pub mod error;
pub mod influx;
pub mod ingest;
pub mod logship;
pub mod metrics;
pub mod metrics_http;
pub mod openapi;
pub mod query;
pub mod router;
pub mod settings;
pub mod sources;
pub mod state;
pub mod tls;
pub mod ui;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use mymonit_model::audit::Outcome;
use tokio::net::TcpListener;

pub use settings::Settings;
pub use state::AppState;

use auth::{throttle::Throttle, tokens::TokenService};

/// A server ready to run.
pub struct Server {
    state: AppState,
    store: Arc<dyn mymonit_store::Store>,
    audit_queue: tokio::sync::mpsc::Receiver<mymonit_model::audit::AuditEvent>,
    /// The listeners' certificates (none: plain HTTP).
    certificates: Option<tls::Certificates>,
    /// The TLS side of `amqps://` connections.
    amqp_tls: lapin::tcp::OwnedTLSConfig,
}

impl Server {
    /// Opens the database (creating the data directory and applying migrations) and the
    /// signing key, and prepares the application state.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Unusable certificate files stop the start before anything else is opened.
        let certificates = tls::Certificates::load(&settings.tls)?;
        let amqp_tls = tls::amqp_tls(
            settings.amqp.tls_ca_file.as_deref(),
            settings.amqp.tls_cert_file.as_deref(),
            settings.amqp.tls_key_file.as_deref(),
        )?;
        let url = settings.database_url()?;
        let store = mymonit_store::open(&url, &settings.store_options())
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        tracing::info!(backend = store.backend(), database = %url, "database open");
        if store.backend() == "postgres" && settings.auth.signing_key_file.is_none() {
            // A shared database usually means several instances: each would sign with a key
            // of its own data directory, and refuse the others' tokens.
            tracing::warn!(
                "auth.signing_key_file is not set: this instance signs tokens with the key of its \
                 data directory; give every instance sharing this database the same key file"
            );
        }
        let tokens = TokenService::new(&settings.data_dir, &settings.auth, &settings.oidc)
            .context("cannot set up token signing")?;
        let decoy = uuid::Uuid::new_v4().to_string();
        let decoy_hash = auth::password::hash(decoy.into()).await?;
        let throttle = Throttle::for_store(
            store.clone(),
            settings.auth.max_failed_logins,
            settings.auth.max_failed_logins_per_client,
            Duration::from_secs(settings.auth.failed_login_window_secs),
        );
        let trusted_proxies = settings.trusted_proxy_nets()?;
        let (audit, audit_queue) = audit::AuditLog::new();
        let state = AppState {
            audit,
            audit_trail: store.clone(),
            meta: store.clone(),
            measures: store.clone(),
            sources: store.clone(),
            fetcher: sources::Fetcher::new(&settings.sources)
                .context("cannot set up the HTTP client of pull sources")?,
            sources_changed: Arc::default(),
            alerts: store.clone(),
            alert_client: alerting::delivery::client(&settings.alerting)
                .context("cannot set up the HTTP client of alert receivers")?,
            alert_rules_changed: Arc::default(),
            notifications_queued: Arc::default(),
            tokens: Arc::new(tokens),
            throttle: Arc::new(throttle),
            settings: Arc::new(settings),
            decoy_hash: Arc::new(decoy_hash),
            metrics: Arc::new(metrics::Metrics::default()),
            consumer: Arc::new(std::sync::RwLock::new(
                ingest::amqp::ConsumerState::Disabled,
            )),
            stopping: tokio::sync::watch::channel(false).0,
            trusted_proxies: trusted_proxies.into(),
            stats_in_flight: Arc::default(),
        };
        Ok(Self {
            state,
            store,
            audit_queue,
            certificates,
            amqp_tls,
        })
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
        let Server {
            state,
            store,
            audit_queue,
            certificates,
            amqp_tls,
        } = self;
        let addr = listener.local_addr()?;
        if let Some(certificates) = &certificates {
            tokio::spawn(certificates.clone().reload_on_hangup());
        }
        let audit_writer = tokio::spawn(audit::write_continuously(
            state.audit_trail.clone(),
            audit_queue,
        ));
        state
            .audit
            .record(audit::event("server.start", None, Outcome::Success))
            .await;
        let scheme = if certificates.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(%addr, scheme, "MyMonit listening");
        let purge = tokio::spawn(purge_old_state(state.clone()));
        let compactor = tokio::spawn(compact_continuously(state.clone()));
        let fetcher = state
            .settings
            .sources
            .fetch
            .then(|| tokio::spawn(sources::scheduler::run(state.clone())));
        let alerting = state.settings.alerting.evaluate.then(|| {
            (
                tokio::spawn(alerting::evaluator::run(state.clone())),
                tokio::spawn(alerting::delivery::run(state.clone())),
            )
        });
        // One signal stops the HTTP server, live streams and the AMQP consumer.
        let stop = state.stopping.clone();
        let stopped = stop.subscribe();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let consumer = state.settings.amqp.url.clone().map(|url| {
            *state.consumer.write().unwrap_or_else(|e| e.into_inner()) =
                ingest::amqp::ConsumerState::Connecting;
            let consumed = ingest::amqp::run(
                state.clone(),
                state.settings.amqp.clone(),
                url,
                amqp_tls,
                stopped.clone(),
            );
            let stop = state.stopping.clone();
            tokio::spawn(async move {
                let outcome = consumed.await;
                if let Err(err) = &outcome {
                    tracing::error!(error = %err, "stopping: the broker's certificate was refused");
                    let _ = stop.send(true);
                }
                outcome
            })
        });
        let metrics_server = match state.settings.metrics_address() {
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot serve metrics on {address}"))?;
                tracing::info!(addr = %listener.local_addr()?, scheme, "metrics at /metrics");
                let app = metrics_http::router(state.clone());
                let tls = certificates.as_ref().map(|c| c.metrics.clone());
                Some(tokio::spawn(serve(listener, app, tls, stopped.clone())))
            }
            None => None,
        };
        let mut app = router::router(state.clone());
        if certificates.is_some() {
            // Browsers that once reached MyMonit over HTTPS never fall back to plain HTTP.
            app = app.layer(
                tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                    axum::http::header::STRICT_TRANSPORT_SECURITY,
                    axum::http::HeaderValue::from_static("max-age=31536000"),
                ),
            );
        }
        let tls = certificates.as_ref().map(|c| c.api.clone());
        serve(listener, app, tls, stopped.clone())
            .await
            .context("HTTP server failed")?;
        let mut failure = None;
        if let Some(consumer) = consumer
            && let Ok(Err(err)) = consumer.await
        {
            failure = Some(err);
        }
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
        purge.abort();
        let _ = purge.await;
        // Dropping a compaction mid-transaction rolls it back: nothing is lost or doubled.
        compactor.abort();
        let _ = compactor.await;
        // A fetch dropped before its commit stores nothing; its lease lapses for another.
        if let Some(fetcher) = fetcher {
            fetcher.abort();
            let _ = fetcher.await;
        }
        // An evaluation or a send dropped midway commits nothing: it is done again.
        if let Some((evaluator, sender)) = alerting {
            evaluator.abort();
            sender.abort();
            let _ = evaluator.await;
            let _ = sender.await;
        }
        state
            .audit
            .record(audit::event("server.stop", None, Outcome::Success))
            .await;
        // The writer ends once every sender is gone and the queue is written.
        drop(state);
        if tokio::time::timeout(Duration::from_secs(10), audit_writer)
            .await
            .is_err()
        {
            tracing::error!("the audit writer did not finish within 10 s");
        }
        store.close().await;
        tracing::info!("MyMonit stopped");
        match failure {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }
}

/// How long processed AMQP message keys are remembered: far longer than any redelivery.
const INBOX_RETENTION_SECS: i64 = 7 * 24 * 3600;

/// Hourly: forgets revocations of expired tokens and old inbox keys.
async fn purge_old_state(state: AppState) {
    let mut interval = tokio::time::interval(Duration::from_secs(3600));
    loop {
        interval.tick().await;
        let now = auth::tokens::epoch_seconds();
        if let Err(err) = state.meta.purge_revoked_tokens(now).await {
            tracing::warn!(error = %err, "cannot purge revoked tokens");
        }
        if let Err(err) = state.measures.purge_inbox(now - INBOX_RETENTION_SECS).await {
            tracing::warn!(error = %err, "cannot purge the AMQP inbox");
        }
        match state
            .measures
            .apply_retention(mymonit_model::time::now_ns())
            .await
        {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "retention dropped old points"),
            Err(err) => tracing::warn!(error = %err, "cannot apply retention"),
        }
    }
}

/// Moves recent points into compressed chunks, draining any backlog before pausing.
async fn compact_continuously(state: AppState) {
    let settings = state.settings.storage.clone();
    let pause = Duration::from_millis(settings.compact_interval_ms.max(10));
    loop {
        let started = std::time::Instant::now();
        match state.measures.compact(settings.compact_batch_points).await {
            Ok(report) if report.points > 0 => {
                state.metrics.compacted(report.points, started.elapsed());
                tracing::debug!(
                    points = report.points,
                    series = report.series,
                    chunks_written = report.chunks_written,
                    chunks_replaced = report.chunks_replaced,
                    "compacted"
                );
                // A full batch means more is waiting: go on at once.
                if report.points >= settings.compact_batch_points as u64 {
                    continue;
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "compaction failed; retrying later"),
        }
        tokio::time::sleep(pause).await;
    }
}

/// Serves `app` on `listener`, over TLS with `tls`, until `stopped` turns true; requests in
/// flight then finish.
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let Some(tls) = tls else {
        return axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await;
    };
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
        // Live streams end on the same signal, so the wait is short in practice.
        stopper.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(app)
        .await
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
