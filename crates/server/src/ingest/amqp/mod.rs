//! The AMQP consumer: the original path (exchange `mymonit`, routing key `measures`, queue
//! `measures`, all durable), with what the original lacked: messages are acknowledged only
//! after their measures are committed, a redelivered message is not stored twice (an inbox of
//! message keys written in the same transaction), and a message that cannot be stored goes to
//! the dead-letter queue with its reason instead of blocking the queue or vanishing.
//!
//! Deliveries are stored in batches (group commit: up to `batch_size` messages, or what came
//! within `batch_wait_ms`), then acknowledged together. Several servers may consume one
//! queue; the broker shares the messages out. Broker restarts and network drops end in a
//! reconnect with exponential backoff.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use futures_lite::StreamExt;
use lapin::{
    BasicProperties, Connection, ConnectionProperties, ExchangeKind,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString},
};
use mymonit_formats::{Decoded, TimeUnit, json};
use mymonit_model::measure::NewMeasure;
use serde::Serialize;
use tokio::sync::watch;

use crate::{
    auth::tokens::token_hash,
    metrics::{Reason, Source},
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

/// Consumes until `shutdown` turns true, reconnecting with backoff.
pub async fn run(
    app: AppState,
    settings: AmqpSettings,
    url: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(500);
    let mut resolver = Resolver::default();
    loop {
        let started = Instant::now();
        match consume(&app, &settings, &url, &mut shutdown, &mut resolver).await {
            Ok(()) => break,
            Err(err) => {
                tracing::warn!(url = %redact_url(&url), error = %err, retry_in_ms = backoff.as_millis() as u64, "AMQP consumer lost the broker");
                set(&app.consumer, ConsumerState::Reconnecting(err.to_string()));
            }
        }
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
}

async fn consume(
    app: &AppState,
    settings: &AmqpSettings,
    url: &str,
    shutdown: &mut watch::Receiver<bool>,
    resolver: &mut Resolver,
) -> anyhow::Result<()> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let dead_letters = connection.create_channel().await?;
    dead_letters
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
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
        .queue_declare(
            settings.queue.as_str().into(),
            durable,
            FieldTable::default(),
        )
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
            FieldTable::default(),
        )
        .await?;
    channel
        .basic_qos(settings.prefetch, BasicQosOptions::default())
        .await?;
    let consumer_tag = format!("mymonit-{}", uuid::Uuid::new_v4().simple());
    let mut consumer = channel
        .basic_consume(
            settings.queue.as_str().into(),
            consumer_tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    set(&app.consumer, ConsumerState::Consuming);
    tracing::info!(url = %redact_url(url), queue = %settings.queue, "AMQP consumer started");
    let wait = Duration::from_millis(settings.batch_wait_ms);
    // A dropped connection normally ends the consumer's stream; checking the connection's
    // state as well means an idle consumer notices a lost broker within a second even when it
    // does not.
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    loop {
        let first = tokio::select! {
            delivery = consumer.next() => delivery,
            _ = watchdog.tick() => {
                if connection.status().connected() {
                    continue;
                }
                anyhow::bail!("the connection to the broker was lost");
            }
            () = stopped(shutdown) => {
                let _ = connection.close(200, "MyMonit shutting down".into()).await;
                return Ok(());
            }
        };
        let Some(first) = first else {
            anyhow::bail!("the broker closed the consumer");
        };
        let mut batch = vec![first?];
        let deadline = tokio::time::Instant::now() + wait;
        while batch.len() < settings.batch_size.max(1) {
            match tokio::time::timeout_at(deadline, consumer.next()).await {
                Ok(Some(delivery)) => batch.push(delivery?),
                Ok(None) | Err(_) => break,
            }
        }
        store_batch(app, settings, &dead_letters, resolver, batch).await?;
    }
}

/// Experiment and measure-type ids by name, cached for a minute (renames and new types are
/// seen within that time).
#[derive(Default)]
struct Resolver {
    experiments: HashMap<String, i64>,
    measure_types: HashMap<String, i64>,
    since: Option<Instant>,
}

impl Resolver {
    async fn ids(
        &mut self,
        app: &AppState,
        experiment: &str,
        measure: &str,
    ) -> Result<(i64, i64), String> {
        if self
            .since
            .is_none_or(|since| since.elapsed() > Duration::from_secs(60))
        {
            self.experiments.clear();
            self.measure_types.clear();
            self.since = Some(Instant::now());
        }
        let experiment_id = match self.experiments.get(experiment) {
            Some(id) => *id,
            None => {
                let found = app
                    .meta
                    .experiment_by_name(experiment)
                    .await
                    .map_err(|err| err.to_string())?;
                let id = found
                    .ok_or_else(|| format!("unknown experiment {experiment:?}"))?
                    .experiment_id;
                self.experiments.insert(experiment.to_string(), id);
                id
            }
        };
        let measure_type_id = match self.measure_types.get(measure) {
            Some(id) => *id,
            None => {
                let found = app
                    .meta
                    .measure_type_by_name(measure)
                    .await
                    .map_err(|err| err.to_string())?;
                let id = found
                    .ok_or_else(|| format!("unknown measure type {measure:?}"))?
                    .measure_type_id;
                self.measure_types.insert(measure.to_string(), id);
                id
            }
        };
        Ok((experiment_id, measure_type_id))
    }
}

/// The counter label of a dead-lettering reason.
fn reason_kind(reason: &str) -> Reason {
    if reason.starts_with("unknown experiment") {
        Reason::UnknownExperiment
    } else if reason.starts_with("unknown measure type") {
        Reason::UnknownMeasureType
    } else {
        Reason::Decode
    }
}

/// The key a message is remembered by: its message id, or a hash of its body.
fn message_key(delivery: &Delivery) -> String {
    match delivery.properties.message_id() {
        Some(id) if !id.as_str().is_empty() => format!("id:{}", id.as_str()),
        _ => format!(
            "sha256:{}",
            token_hash(&String::from_utf8_lossy(&delivery.data))
        ),
    }
}

/// Decodes a message body: one object, an array or NDJSON (by content type or by sniffing).
fn decode(delivery: &Delivery) -> Vec<Decoded> {
    let ndjson = delivery
        .properties
        .content_type()
        .as_ref()
        .is_some_and(|t| t.as_str().contains("ndjson"));
    if ndjson {
        json::decode_lines(&delivery.data[..], TimeUnit::Seconds).collect()
    } else {
        json::decode(&delivery.data[..], TimeUnit::Seconds).collect()
    }
}

async fn to_measures(
    app: &AppState,
    resolver: &mut Resolver,
    delivery: &Delivery,
) -> Result<Vec<NewMeasure>, String> {
    let decoded = decode(delivery);
    if decoded.is_empty() {
        return Err("empty message: no measure in it".into());
    }
    let mut measures = Vec::with_capacity(decoded.len());
    for item in decoded {
        let record = item.map_err(|err| err.to_string())?;
        let (experiment_id, measure_type_id) = resolver
            .ids(app, &record.experiment, &record.measure)
            .await?;
        measures.push(NewMeasure {
            experiment_id,
            measure_type_id,
            timestamp_ns: record.timestamp_ns,
            value: record.value,
            tags: record.tags,
        });
    }
    Ok(measures)
}

async fn store_batch(
    app: &AppState,
    settings: &AmqpSettings,
    dead_letters: &lapin::Channel,
    resolver: &mut Resolver,
    batch: Vec<Delivery>,
) -> anyhow::Result<()> {
    let mut good = Vec::with_capacity(batch.len());
    let mut rejected = Vec::new();
    for delivery in &batch {
        app.metrics.delivered(delivery.redelivered);
        match to_measures(app, resolver, delivery).await {
            Ok(measures) => good.push((message_key(delivery), measures)),
            Err(reason) => {
                app.metrics.rejected(Source::Amqp, reason_kind(&reason), 1);
                rejected.push((delivery, reason));
            }
        }
    }
    // Durable first; a failure here returns without acknowledging, so the broker redelivers.
    let started = Instant::now();
    let stored = app.measures.append_messages(&good).await?;
    if stored > 0 {
        app.metrics
            .committed(Source::Amqp, stored, started.elapsed());
    }
    for (delivery, reason) in &rejected {
        let mut headers = FieldTable::default();
        headers.insert(
            ERROR_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason.clone())),
        );
        let mut properties = BasicProperties::default().with_headers(headers);
        if let Some(content_type) = delivery.properties.content_type() {
            properties = properties.with_content_type(content_type.clone());
        }
        if let Some(message_id) = delivery.properties.message_id() {
            properties = properties.with_message_id(message_id.clone());
        }
        dead_letters
            .basic_publish(
                "".into(),
                settings.dead_letter_queue.as_str().into(),
                BasicPublishOptions::default(),
                &delivery.data,
                properties,
            )
            .await?
            .await?;
        app.metrics.dead_lettered();
        tracing::warn!(reason = %reason, dead_letter_queue = %settings.dead_letter_queue, "message dead-lettered");
    }
    if let Some(last) = batch.last() {
        last.acker.ack(BasicAckOptions { multiple: true }).await?;
    }
    tracing::debug!(
        messages = batch.len(),
        stored,
        dead_lettered = rejected.len(),
        "AMQP batch committed"
    );
    Ok(())
}
