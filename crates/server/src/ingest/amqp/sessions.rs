//! Consumer sessions on the broker. Each session (one connection of one server) owns one
//! durable queue named after it, `<queue>.acked.<name>`, holding one persistent message: the
//! number of the last batch whose acknowledgements the broker committed. The session's
//! channel is transactional and publishes that number in the same AMQP transaction as the
//! batch's acknowledgements, so after a crash the number says exactly which remembered bodies
//! were acknowledged (forget them) and which will come back (keep them).
//!
//! The session also consumes its own queue (one message at a time, never acknowledged) on a
//! channel of its own: the queue has a consumer exactly as long as the session's connection
//! is open, which is also how long the broker holds its unacknowledged messages back. Another
//! server asks the broker for the queue's consumer count (a passive declare, which changes
//! nothing) to learn whether the session can still acknowledge anything.
//!
//! A server resolves a closed session (claims it in the store, reads its number, tells the
//! store, deletes its queue) when a redelivery waits on it, and sweeps every closed session
//! when it starts.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use lapin::{
    BasicProperties, Channel, Connection,
    options::{
        BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
        BasicRejectOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldTable},
};

use super::batch::IngestDeps;
use crate::settings::AmqpSettings;

/// How long a session must have been seen closed before its number is read: the broker may
/// still be finishing a transaction its channel received just before the close.
const GRACE: Duration = Duration::from_secs(1);
/// How long a server may take to resolve a session it claimed before another may try.
const CLAIM_SECS: i64 = 30;

/// The queue holding a session's last acknowledged batch.
fn acked_queue(settings: &AmqpSettings, name: &str) -> String {
    format!("{}.acked.{name}", settings.queue)
}

/// Whether an error is the broker's 404 NOT_FOUND.
fn is_not_found(err: &lapin::Error) -> bool {
    matches!(err.kind(), lapin::ErrorKind::ProtocolError(e) if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
}

/// This process's session on the broker.
pub struct Session {
    /// Its unique name.
    pub name: String,
    /// Its id in the store.
    pub session_id: i64,
    acked_queue: String,
    /// The channel on which the session consumes its own queue (its sign of life).
    watch: Channel,
    _watch_consumer: lapin::Consumer,
}

impl Session {
    /// Declares the session's queue and consumes it, registers the session in the store and
    /// makes `channel` transactional.
    pub async fn open(
        connection: &Connection,
        channel: &Channel,
        deps: &IngestDeps,
        settings: &AmqpSettings,
    ) -> anyhow::Result<Self> {
        let name = uuid::Uuid::new_v4().simple().to_string();
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
        let watch = connection.create_channel().await?;
        watch.basic_qos(1, BasicQosOptions::default()).await?;
        let watch_consumer = watch
            .basic_consume(
                acked_queue.as_str().into(),
                format!("mymonit-session-{name}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let session_id = deps.measures.begin_consumer_session(&name).await?;
        channel.tx_select().await?;
        Ok(Self {
            name,
            session_id,
            acked_queue,
            watch,
            _watch_consumer: watch_consumer,
        })
    }

    /// Whether the session still shows itself alive to the others: if its watch channel
    /// closed alone, the others may take it for closed, so the session must end.
    pub fn is_visible(&self) -> bool {
        self.watch.status().connected()
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

    /// Whether a session's connection is still open on the broker (its queue has its
    /// consumer); a queue that is gone belongs to a session already resolved.
    async fn is_alive(&mut self, name: &str) -> lapin::Result<bool> {
        let probe = self.channel().await?;
        let declared = probe
            .queue_declare(
                acked_queue(self.settings, name).as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(queue) => Ok(queue.consumer_count() > 0),
            Err(err) if is_not_found(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The last batch a closed session had acknowledged: `Some(0)` when none, `None` when the
    /// broker has no record (its queue is gone: resolved by someone else, or the broker's
    /// data was replaced, so none of the session's messages can come back). The messages
    /// read are put back.
    async fn acknowledged_through(&mut self, name: &str) -> lapin::Result<Option<i64>> {
        let probe = self.channel().await?;
        let queue = acked_queue(self.settings, name);
        let mut through = 0;
        let mut taken = Vec::new();
        loop {
            match probe
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await
            {
                Ok(Some(message)) => {
                    let text = String::from_utf8_lossy(&message.delivery.data).to_string();
                    match text.trim().parse::<i64>() {
                        Ok(number) => through = through.max(number),
                        Err(_) => {
                            tracing::warn!(queue = %queue, body = %text, "unreadable acknowledgement record ignored");
                        }
                    }
                    taken.push(message.delivery.delivery_tag);
                }
                Ok(None) => break,
                Err(err) if is_not_found(&err) => return Ok(None),
                Err(err) => return Err(err),
            }
        }
        for tag in taken {
            probe
                .basic_reject(tag, BasicRejectOptions { requeue: true })
                .await?;
        }
        Ok(Some(through))
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
            // Another server is reading the number: it resolves the session.
            if !deps
                .measures
                .claim_consumer_session(name, CLAIM_SECS)
                .await?
            {
                self.closed_since.remove(name);
                continue;
            }
            let acked = self.acknowledged_through(name).await?;
            if deps.measures.resolve_consumer_session(name, acked).await? {
                tracing::info!(session = %name, acknowledged_through = ?acked, "resolved a closed AMQP consumer session");
            }
            if acked.is_some() {
                let probe = self.channel().await?;
                probe
                    .queue_delete(
                        acked_queue(self.settings, name).as_str().into(),
                        QueueDeleteOptions::default(),
                    )
                    .await?;
            }
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
