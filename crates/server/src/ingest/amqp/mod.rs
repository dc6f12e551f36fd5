//! The AMQP consumer: the original path (exchange `mymonit`, routing key `measures`, queue
//! `measures`, all durable), with what the original lacked: messages are acknowledged only
//! after their measures are committed, nothing a broker marks as new is ever skipped, a
//! redelivered message is not stored twice, and a message that cannot be stored goes to the
//! dead-letter queue with its reason instead of blocking the queue or vanishing.
//!
//! Deliveries are stored in batches (group commit: up to `batch_size` messages or
//! `batch_bytes` of bodies, or what came within `batch_wait_ms`), then acknowledged together
//! in one AMQP transaction that also records the batch's number (see [`sessions`]); [`batch`]
//! holds the rule for what may be skipped as already stored. Several servers may consume one
//! queue; the broker shares the messages out. Broker restarts and network drops end the
//! session and start a new one after a backoff.

pub mod batch;
pub mod sessions;

use std::{
    collections::BTreeSet,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use batch::{Acks, Incoming, IngestDeps, SessionCursor, Settled};
use futures_lite::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString},
};
use serde::Serialize;
use sessions::{Session, Sweeper};
use tokio::sync::watch;

use crate::{
    ingest::NameResolver,
    settings::{AmqpSettings, redact_url},
    state::AppState,
};

/// Header carrying the reason on dead-lettered messages.
pub const ERROR_HEADER: &str = "x-mymonit-error";

/// What the consumer is doing, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum ConsumerState {
    /// No `amqp.url` configured.
    Disabled,
    /// Connecting for the first time.
    Connecting,
    /// Connected and consuming.
    Consuming,
    /// Lost the broker; retrying. Carries the last error.
    Reconnecting(String),
}

/// The consumer's state, shared with `/readyz`.
pub type SharedConsumerState = Arc<RwLock<ConsumerState>>;

fn set(shared: &SharedConsumerState, state: ConsumerState) {
    *shared.write().unwrap_or_else(|e| e.into_inner()) = state;
}

/// Completes when the shutdown flag turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here, not across an await.
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}

/// How often held redeliveries are decided again while nothing else arrives.
const RETRY_HELD: Duration = Duration::from_millis(100);
/// How long the consumer waits idle before forgetting acknowledged bodies on its own (a busy
/// consumer forgets them in its next batch's transaction).
const FORGET_WHEN_IDLE: Duration = Duration::from_millis(50);

/// The broker's certificate (or ours) was refused on the first connection: a configuration
/// error that waiting will not mend.
#[derive(Debug, thiserror::Error)]
#[error(
    "AMQP over TLS to {url}: {reason} (check amqp.tls_ca_file, the host name in amqp.url, \
     and amqp.tls_cert_file / amqp.tls_key_file)"
)]
pub struct CertificateRefused {
    /// The broker, password hidden.
    pub url: String,
    /// The TLS error.
    pub reason: String,
}

/// Consumes until `shutdown` turns true, reconnecting with backoff. A certificate refused on
/// the very first connection ends it with an error (the server then stops: the setting is
/// wrong); later, certificate errors are retried like any other (a broker's certificate
/// being renewed).
pub async fn run(
    app: AppState,
    settings: AmqpSettings,
    url: String,
    tls: lapin::tcp::OwnedTLSConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), CertificateRefused> {
    let mut first_attempt = true;
    let deps = IngestDeps {
        meta: app.meta.clone(),
        measures: app.measures.clone(),
        metrics: app.metrics.clone(),
    };
    let mut backoff = Duration::from_millis(500);
    // Names stay cached across reconnections, for a minute.
    let mut resolver = NameResolver::new(Duration::from_secs(60), app.settings.ingest.clone());
    // The nodes of a cluster, tried in turn: a lost connection moves on to the next one.
    let urls = broker_urls(&url);
    let mut next = 0;
    loop {
        let started = Instant::now();
        let url = urls[next % urls.len()].as_str();
        next += 1;
        match consume(
            &deps,
            &app.consumer,
            &settings,
            url,
            &tls,
            &mut shutdown,
            &mut resolver,
        )
        .await
        {
            Ok(()) => break,
            Err(err) => {
                if first_attempt && let Some(reason) = crate::tls::certificate_problem(err.as_ref())
                {
                    set(&app.consumer, ConsumerState::Reconnecting(reason.clone()));
                    return Err(CertificateRefused {
                        url: redact_url(url),
                        reason,
                    });
                }
                tracing::warn!(url = %redact_url(url), error = %err, retry_in_ms = backoff.as_millis() as u64, "AMQP consumer lost the broker");
                set(&app.consumer, ConsumerState::Reconnecting(err.to_string()));
            }
        }
        first_attempt = false;
        // A connection that lived a while starts the backoff over.
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(500);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            () = stopped(&mut shutdown) => break,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    tracing::info!("AMQP consumer stopped");
    Ok(())
}

/// The URLs of `amqp.url`: one, or the nodes of a cluster separated by commas or spaces.
pub fn broker_urls(setting: &str) -> Vec<String> {
    let urls: Vec<String> = setting
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        vec![setting.to_owned()]
    } else {
        urls
    }
}

/// Declares the exchange, the queue and its binding, and the dead-letter queue, of the
/// configured queue type.
async fn declare_topology(channel: &Channel, settings: &AmqpSettings) -> lapin::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut arguments = FieldTable::default();
    if let Some(kind) = settings.queue_type.argument() {
        arguments.insert(
            "x-queue-type".into(),
            lapin::types::AMQPValue::LongString(kind.into()),
        );
    }
    channel
        .exchange_declare(
            settings.exchange.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(settings.queue.as_str().into(), durable, arguments.clone())
        .await?;
    channel
        .queue_bind(
            settings.queue.as_str().into(),
            settings.exchange.as_str().into(),
            settings.routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            settings.dead_letter_queue.as_str().into(),
            durable,
            arguments,
        )
        .await?;
    Ok(())
}

/// One session: connects, consumes and stores until shutdown (`Ok`) or a failure (`Err`).
async fn consume(
    deps: &IngestDeps,
    state: &SharedConsumerState,
    settings: &AmqpSettings,
    url: &str,
    tls: &lapin::tcp::OwnedTLSConfig,
    shutdown: &mut watch::Receiver<bool>,
    resolver: &mut NameResolver,
) -> anyhow::Result<()> {
    let connection = Connection::connect_with_config(
        url,
        ConnectionProperties::default(),
        tls.clone(),
        lapin::runtime::default_runtime()?,
    )
    .await?;
    let channel = connection.create_channel().await?;
    let dead_letters = connection.create_channel().await?;
    dead_letters
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    declare_topology(&channel, settings).await?;
    let session = Session::open(&connection, &channel, deps, settings).await?;
    let mut cursor = SessionCursor::new(session.session_id);
    let mut sweeper = Sweeper::new(&connection, settings);
    sweeper.sweep(deps, session.session_id).await?;
    channel
        .basic_qos(settings.prefetch, BasicQosOptions::default())
        .await?;
    let consumer_tag = format!("mymonit-{}", session.name);
    let mut consumer = channel
        .basic_consume(
            settings.queue.as_str().into(),
            consumer_tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    set(state, ConsumerState::Consuming);
    tracing::info!(url = %redact_url(url), queue = %settings.queue, session = %session.name, "AMQP consumer started");
    let wait = Duration::from_millis(settings.batch_wait_ms);
    let abort_after = abort_after_commits();
    let mut held: Vec<Incoming> = Vec::new();
    let mut blocked_by: BTreeSet<String> = BTreeSet::new();
    loop {
        // Idle, the consumer wakes to retry held redeliveries, to forget acknowledged bodies
        // and, every second, to check the connection: a dropped connection normally ends the
        // consumer's stream, but an idle consumer should notice a lost broker even when it
        // does not.
        let idle = if !held.is_empty() || sweeper.waiting() {
            RETRY_HELD
        } else if cursor.to_forget().is_some() {
            FORGET_WHEN_IDLE
        } else {
            Duration::from_secs(1)
        };
        let first = tokio::select! {
            delivery = consumer.next() => Some(delivery),
            _ = tokio::time::sleep(idle) => None,
            () = stopped(shutdown) => {
                session.close(&channel, deps, cursor.batch_no).await;
                let _ = connection.close(200, "MyMonit shutting down".into()).await;
                return Ok(());
            }
        };
        if !session.is_visible() {
            anyhow::bail!("the channel showing this session alive to other servers closed");
        }
        let mut messages = std::mem::take(&mut held);
        match first {
            Some(Some(delivery)) => {
                messages.push(received(deps, delivery?));
                let mut bytes: usize = messages.iter().map(|m| m.body.len()).sum();
                let deadline = tokio::time::Instant::now() + wait;
                while messages.len() < settings.batch_size.max(1) && bytes < settings.batch_bytes {
                    match tokio::time::timeout_at(deadline, consumer.next()).await {
                        Ok(Some(delivery)) => {
                            let message = received(deps, delivery?);
                            bytes += message.body.len();
                            messages.push(message);
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            Some(None) => anyhow::bail!("the broker closed the consumer"),
            None => {
                if !connection.status().connected() {
                    anyhow::bail!("the connection to the broker was lost");
                }
                if messages.is_empty() {
                    if sweeper.waiting() {
                        sweeper.sweep(deps, session.session_id).await?;
                    }
                    if let Some(through) = cursor.to_forget() {
                        deps.measures
                            .forget_acknowledged(cursor.session_id, through)
                            .await?;
                        cursor.forgotten_through = Some(through);
                    }
                    continue;
                }
            }
        }
        if !blocked_by.is_empty() {
            // A session alive now was alive when the held messages arrived (a closed
            // connection never reopens): they are not its messages.
            let alive = sweeper.resolve(deps, &blocked_by).await?;
            for message in &mut messages {
                let (alive_holders, others): (Vec<String>, Vec<String>) = message
                    .waits_for
                    .drain(..)
                    .partition(|name| alive.contains(name));
                message.not_from.extend(alive_holders);
                message.waits_for = others;
            }
        }
        let started = Instant::now();
        let settled = batch::step(deps, resolver, &mut cursor, messages).await?;
        if settled.stored > 0 {
            deps.metrics.committed(
                crate::metrics::Source::Amqp,
                settled.stored,
                started.elapsed(),
            );
        }
        deps.metrics.duplicates_skipped(settled.duplicates);
        if abort_after == Some(cursor.batch_no) {
            tracing::error!(
                batch = cursor.batch_no,
                "aborting between a commit and its acknowledgement, as {ABORT_AFTER_COMMITS} asks"
            );
            std::process::abort();
        }
        acknowledge(
            deps,
            settings,
            &channel,
            &dead_letters,
            &session,
            &cursor,
            &settled,
        )
        .await?;
        // Everything stored is acknowledged now, by a committed transaction.
        cursor.acked_through = Some(cursor.batch_no);
        tracing::debug!(
            messages = settled.settled.len(),
            stored = settled.stored,
            duplicates = settled.duplicates,
            dead_lettered = settled.dead_letter.len(),
            held = settled.held.len(),
            "AMQP batch committed"
        );
        held = settled.held;
        blocked_by = settled.blocked_by;
    }
}

/// A fault for the crash tests: the environment variable that makes the consumer abort the
/// process right after committing its N-th batch, before acknowledging it (the moment a
/// kill is least likely to hit by chance, and the one that must not double anything).
const ABORT_AFTER_COMMITS: &str = "MYMONIT_TEST_ABORT_AFTER_COMMITS";

fn abort_after_commits() -> Option<i64> {
    std::env::var(ABORT_AFTER_COMMITS).ok()?.parse().ok()
}

/// Counts a delivery as it arrives.
fn received(deps: &IngestDeps, delivery: lapin::message::Delivery) -> Incoming {
    deps.metrics.delivered(delivery.redelivered);
    Incoming::from(delivery)
}

/// Dead-letters the refused messages (with publisher confirms), then acknowledges the
/// settled messages and records the batch's number in one AMQP transaction.
async fn acknowledge(
    deps: &IngestDeps,
    settings: &AmqpSettings,
    channel: &Channel,
    dead_letters: &Channel,
    session: &Session,
    cursor: &SessionCursor,
    settled: &Settled,
) -> anyhow::Result<()> {
    for (message, reason) in &settled.dead_letter {
        let mut headers = FieldTable::default();
        headers.insert(
            ERROR_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason.to_string())),
        );
        let mut properties = BasicProperties::default().with_headers(headers);
        if let Some(content_type) = &message.content_type {
            properties = properties.with_content_type(content_type.as_str().into());
        }
        if let Some(message_id) = &message.message_id {
            properties = properties.with_message_id(message_id.as_str().into());
        }
        dead_letters
            .basic_publish(
                "".into(),
                settings.dead_letter_queue.as_str().into(),
                BasicPublishOptions::default(),
                &message.body,
                properties,
            )
            .await?
            .await?;
        deps.metrics.dead_lettered();
        tracing::warn!(reason = %reason, dead_letter_queue = %settings.dead_letter_queue, "message dead-lettered");
    }
    match settled.acks() {
        Acks::None => {}
        Acks::Through(tag) => {
            channel
                .basic_ack(tag, BasicAckOptions { multiple: true })
                .await?;
        }
        Acks::Each(tags) => {
            for tag in tags {
                channel
                    .basic_ack(tag, BasicAckOptions { multiple: false })
                    .await?;
            }
        }
    }
    if settled.remembered_bodies {
        session
            .record_acknowledged(channel, cursor.batch_no)
            .await?;
    }
    // Returns once the broker has applied the acknowledgements and the record together.
    channel.tx_commit().await?;
    Ok(())
}

#[cfg(test)]
mod url_tests {
    #[test]
    fn a_cluster_is_several_urls() {
        assert_eq!(
            super::broker_urls("amqp://a:1/%2f, amqp://b:1/%2f amqp://c:1/%2f"),
            vec!["amqp://a:1/%2f", "amqp://b:1/%2f", "amqp://c:1/%2f"]
        );
        assert_eq!(super::broker_urls("amqp://a:1/%2f"), vec!["amqp://a:1/%2f"]);
    }
}
