//! What every handler shares.

use std::sync::Arc;

use mymonit_store::{
    AuditStore, MeasureStore, MetaStore, alerts::AlertStore, sources::SourceStore,
};

use crate::{
    auth::{throttle::Throttle, tokens::TokenService},
    settings::Settings,
};

/// Shared, cheaply clonable application state.
#[derive(Clone)]
pub struct AppState {
    /// Accounts, experiments, associations, measure types.
    pub meta: Arc<dyn MetaStore>,
    /// The time series.
    pub measures: Arc<dyn MeasureStore>,
    /// Pull sources and their fetching state.
    pub sources: Arc<dyn SourceStore>,
    /// Fetches from sources (and checks new ones).
    pub fetcher: crate::sources::Fetcher,
    /// Wakes the source scheduler when a source is created or changed.
    pub sources_changed: Arc<tokio::sync::Notify>,
    /// Alert rules, their alerts and the notifications' outbox.
    pub alerts: Arc<dyn AlertStore>,
    /// Sends notifications to Alertmanagers and webhooks.
    pub alert_client: reqwest::Client,
    /// Wakes the rule evaluator when a rule is made or changed.
    pub alert_rules_changed: Arc<tokio::sync::Notify>,
    /// Wakes the notification sender when an evaluation queued some.
    pub notifications_queued: Arc<tokio::sync::Notify>,
    /// Signs and checks tokens.
    pub tokens: Arc<TokenService>,
    /// Brakes password guessing.
    pub throttle: Arc<Throttle>,
    /// The configuration in force.
    pub settings: Arc<Settings>,
    /// Counters about ingestion.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// What the AMQP consumer is doing.
    pub consumer: crate::ingest::amqp::SharedConsumerState,
    /// A real Argon2 hash of a random password, checked when the account is unknown so that
    /// unknown users and wrong passwords take the same time.
    pub decoy_hash: Arc<String>,
    /// Queues audit records for the writer.
    pub audit: crate::audit::AuditLog,
    /// The audit trail, for reading and verifying.
    pub audit_trail: Arc<dyn AuditStore>,
    /// Statistics computations in progress, per user.
    pub stats_in_flight: Arc<crate::api::stats::InFlight>,
    /// Proxies whose forwarding headers name the client (`trusted_proxies`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// Turns true when the server begins to stop; long-lived responses (live streams) end
    /// then, so that shutdown does not wait for them.
    pub stopping: tokio::sync::watch::Sender<bool>,
}
