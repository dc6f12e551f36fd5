//! Consumer sessions on the broker. Each session (one connection and channel of one server)
//! owns two queues named after it:
//! - `<queue>.consumer.<name>`, exclusive: the broker deletes it when it closes the session's
//!   connection, which is also when it requeues the session's unacknowledged messages. Its
//!   absence is how another session learns that this one can no longer acknowledge anything.
//! - `<queue>.acked.<name>`, durable, holding one persistent message: the number of the last
//!   batch whose acknowledgements the broker committed. The session's channel is
//!   transactional and publishes that number in the same AMQP transaction as the batch's
//!   acknowledgements, so after a crash the number says exactly which remembered bodies were
//!   acknowledged (forget them) and which will come back (keep them).
//!
//! A session resolves a closed one (reads its number, tells the store, deletes its queue)
//! when a redelivery waits on it, and sweeps every closed session when it starts.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use lapin::{
    BasicProperties, Channel, Connection,
    options::{
        BasicGetOptions, BasicPublishOptions, BasicRejectOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    },
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldTable},
};

use super::batch::IngestDeps;
use crate::settings::AmqpSettings;

/// How long a closed session's queue must have been gone before its number is read: the
/// broker may still be finishing a transaction its channel received just before the close.
const GRACE: Duration = Duration::from_secs(1);

/// The queue whose existence says a session is alive.
fn liveness_queue(settings: &AmqpSettings, name: &str) -> String {
    format!("{}.consumer.{name}", settings.queue)
}

/// The queue holding a session's last acknowledged batch.
fn acked_queue(settings: &AmqpSettings, name: &str) -> String {
    format!("{}.acked.{name}", settings.queue)
}

/// Whether an error is the broker's answer `code` (404 NOT_FOUND, 405 RESOURCE_LOCKED).
fn is_soft(err: &lapin::Error, code: AMQPSoftError) -> bool {
    matches!(err.kind(), lapin::ErrorKind::ProtocolError(e) if *e.kind() == AMQPErrorKind::Soft(code))
}

/// This process's session on the broker.
pub struct Session {
    /// Its unique name.
    pub name: String,
    /// Its id in the store.
    pub session_id: i64,
    acked_queue: String,
}

impl Session {
    /// Declares the session's queues, registers it in the store and makes `channel`
    /// transactional.
    pub async fn open(
        channel: &Channel,
        deps: &IngestDeps,
        settings: &AmqpSettings,
    ) -> anyhow::Result<Self> {
        let name = uuid::Uuid::new_v4().simple().to_string();
        channel
            .queue_declare(
                liveness_queue(settings, &name).as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let acked_queue = acked_queue(settings, &name);
        let mut arguments = FieldTable::default();
        // Only the latest number matters.
        arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
        channel
            .queue_declare(
                acked_queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                arguments,
            )
            .await?;
        let session_id = deps.measures.begin_consumer_session(&name).await?;
        channel.tx_select().await?;
        Ok(Self {
            name,
            session_id,
            acked_queue,
        })
    }

    /// Publishes, inside the channel's open transaction, that batches up to `batch_no` are
    /// acknowledged (persistent, so that a broker restart keeps it).
    pub async fn record_acknowledged(&self, channel: &Channel, batch_no: i64) -> lapin::Result<()> {
        channel
            .basic_publish(
                "".into(),
                self.acked_queue.as_str().into(),
                BasicPublishOptions::default(),
                batch_no.to_string().as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
        Ok(())
    }

    /// After a clean stop of consumption (everything stored is acknowledged): forgets the
    /// session's bodies and deletes its queue.
    pub async fn close(&self, channel: &Channel, deps: &IngestDeps, acked_through: i64) {
        match deps
            .measures
            .resolve_consumer_session(&self.name, Some(acked_through))
            .await
        {
            Ok(_) => {
                let _ = channel
                    .queue_delete(
                        self.acked_queue.as_str().into(),
                        QueueDeleteOptions::default(),
                    )
                    .await;
            }
            Err(err) => {
                tracing::warn!(error = %err, session = %self.name, "cannot close the AMQP session in the store; another server resolves it");
            }
        }
    }
}

/// Resolves closed sessions, probing the broker on a channel of its own (a probe of a queue
/// that is gone closes the channel it was made on).
pub struct Sweeper<'a> {
    connection: &'a Connection,
    settings: &'a AmqpSettings,
    probe: Option<Channel>,
    /// When each session was first seen closed.
    closed_since: HashMap<String, Instant>,
}

impl<'a> Sweeper<'a> {
    /// A sweeper on `connection`.
    pub fn new(connection: &'a Connection, settings: &'a AmqpSettings) -> Self {
        Self {
            connection,
            settings,
            probe: None,
            closed_since: HashMap::new(),
        }
    }

    async fn channel(&mut self) -> lapin::Result<Channel> {
        match &self.probe {
            Some(channel) if channel.status().connected() => Ok(channel.clone()),
            _ => {
                let channel = self.connection.create_channel().await?;
                self.probe = Some(channel.clone());
                Ok(channel)
            }
        }
    }

    /// Whether a session's connection is still open on the broker.
    async fn is_alive(&mut self, name: &str) -> lapin::Result<bool> {
        let probe = self.channel().await?;
        let declared = probe
            .queue_declare(
                liveness_queue(self.settings, name).as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(_) => Ok(true),
            // Its owner holds it.
            Err(err) if is_soft(&err, AMQPSoftError::RESOURCELOCKED) => Ok(true),
            Err(err) if is_soft(&err, AMQPSoftError::NOTFOUND) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The last batch a closed session had acknowledged: `Some(0)` when none, `None` when the
    /// broker has no record (its queue is gone: resolved by someone else, or the broker's
    /// data was replaced, so none of the session's messages can come back).
    async fn acknowledged_through(&mut self, name: &str) -> lapin::Result<Option<i64>> {
        let probe = self.channel().await?;
        let queue = acked_queue(self.settings, name);
        match probe
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await
        {
            Ok(Some(message)) => {
                // Put back, for any other server resolving the same session.
                probe
                    .basic_reject(
                        message.delivery.delivery_tag,
                        BasicRejectOptions { requeue: true },
                    )
                    .await?;
                let text = String::from_utf8_lossy(&message.delivery.data).to_string();
                Ok(Some(text.trim().parse().unwrap_or_else(|_| {
                    tracing::warn!(queue = %queue, body = %text, "unreadable acknowledgement record; keeping every body of the session");
                    0
                })))
            }
            Ok(None) => Ok(Some(0)),
            Err(err) if is_soft(&err, AMQPSoftError::NOTFOUND) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Resolves those of `names` that are closed (and have been for the grace period);
    /// returns those that are alive.
    pub async fn resolve(
        &mut self,
        deps: &IngestDeps,
        names: &BTreeSet<String>,
    ) -> anyhow::Result<BTreeSet<String>> {
        let mut alive = BTreeSet::new();
        for name in names {
            if self.is_alive(name).await? {
                self.closed_since.remove(name);
                alive.insert(name.clone());
                continue;
            }
            let since = *self
                .closed_since
                .entry(name.clone())
                .or_insert_with(Instant::now);
            if since.elapsed() < GRACE {
                continue;
            }
            let acked = self.acknowledged_through(name).await?;
            if deps.measures.resolve_consumer_session(name, acked).await? {
                tracing::info!(session = %name, acknowledged_through = ?acked, "resolved a closed AMQP consumer session");
            }
            let probe = self.channel().await?;
            // Gone already when another server resolved it first.
            let _ = probe
                .queue_delete(
                    acked_queue(self.settings, name).as_str().into(),
                    QueueDeleteOptions::default(),
                )
                .await;
            self.closed_since.remove(name);
        }
        Ok(alive)
    }

    /// Resolves every closed session the store still lists, other than `own`.
    pub async fn sweep(&mut self, deps: &IngestDeps, own: i64) -> anyhow::Result<()> {
        let names: BTreeSet<String> = deps
            .measures
            .open_consumer_sessions(own)
            .await?
            .into_iter()
            .map(|session| session.name)
            .collect();
        self.resolve(deps, &names).await.map(|_| ())
    }

    /// Whether a sweep left sessions waiting out their grace period.
    pub fn waiting(&self) -> bool {
        !self.closed_since.is_empty()
    }
}
