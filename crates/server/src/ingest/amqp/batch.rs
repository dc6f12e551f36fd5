//! One step of the consumer, free of the broker: messages in → what to store (in one
//! transaction), what to acknowledge, what to dead-letter with which reason, and which
//! redeliveries to hold until the sessions that may have stored them are resolved.
//!
//! Which messages may be skipped as already stored (the rule the README states):
//! - a message with a `message_id` is stored once per id;
//! - a first delivery (`redelivered = false`) without one is always stored: the broker never
//!   delivered it before, so it cannot be a copy. Its body is remembered (with its session and
//!   batch) until the broker has committed its acknowledgement;
//! - a redelivery without one is skipped only while a *resolved* session (its connection
//!   closed, its committed acknowledgements read back from the broker) still remembers a
//!   message of the same body whose acknowledgement never reached the broker; the skip
//!   consumes that memory, so k stored copies excuse exactly k redeliveries. If only sessions
//!   not yet resolved remember the body, the message waits until they are.

use std::collections::BTreeSet;

use lapin::message::Delivery;
use mymonit_formats::{Decoded, TimeUnit, json};
use mymonit_store::{
    BodyHash, ConsumerBatch, Delivered, DeliveryKey, DeliveryOutcome, MeasureStore, MetaStore,
    StoreError,
};

use crate::{
    ingest::{NameResolver, RejectReason},
    metrics::{Metrics, Source},
};

/// A message as taken from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Its delivery tag on the session's channel.
    pub delivery_tag: u64,
    /// Whether the broker delivered it before.
    pub redelivered: bool,
    /// The publisher's message id, if any.
    pub message_id: Option<String>,
    /// The content type, if any (`…ndjson…` reads the body as NDJSON).
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// Sessions known to have been alive after this message arrived (so it is not theirs).
    pub not_from: Vec<String>,
    /// Sessions this message waits for (set when it is held).
    pub waits_for: Vec<String>,
}

impl From<Delivery> for Incoming {
    fn from(delivery: Delivery) -> Self {
        Self {
            delivery_tag: delivery.delivery_tag,
            redelivered: delivery.redelivered,
            message_id: delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str().to_string())
                .filter(|id| !id.is_empty()),
            content_type: delivery
                .properties
                .content_type()
                .as_ref()
                .map(|t| t.as_str().to_string()),
            body: delivery.data,
            not_from: Vec::new(),
            waits_for: Vec::new(),
        }
    }
}

impl Incoming {
    /// How the store recognises this message when it comes again.
    pub fn key(&self) -> DeliveryKey {
        match &self.message_id {
            Some(id) => DeliveryKey::Id(id.clone()),
            None if self.redelivered => DeliveryKey::Redelivered {
                body: self.body_hash(),
                not_from: self.not_from.clone(),
            },
            None => DeliveryKey::First(self.body_hash()),
        }
    }

    /// The first 16 bytes of SHA-256 over the content type and the body.
    fn body_hash(&self) -> BodyHash {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        context.update(self.content_type.as_deref().unwrap_or("").as_bytes());
        context.update(&[0]);
        context.update(&self.body);
        let digest = context.finish();
        let mut hash = BodyHash::default();
        let len = hash.len();
        hash.copy_from_slice(&digest.as_ref()[..len]);
        hash
    }

    /// Decodes the body: one object, an array or NDJSON (by content type or by sniffing).
    fn decode(&self) -> Vec<Decoded> {
        let ndjson = self
            .content_type
            .as_deref()
            .is_some_and(|t| t.contains("ndjson"));
        if ndjson {
            json::decode_lines_in(&self.body, TimeUnit::Seconds).collect()
        } else {
            json::decode(&self.body[..], TimeUnit::Seconds).collect()
        }
    }
}

/// What the step needs: the stores and the counters, not the whole application.
#[derive(Clone)]
pub struct IngestDeps {
    /// Names to ids.
    pub meta: std::sync::Arc<dyn MetaStore>,
    /// Where measures go.
    pub measures: std::sync::Arc<dyn MeasureStore>,
    /// Counters.
    pub metrics: std::sync::Arc<Metrics>,
}

/// Where a session stands: its id, its next batch, what the broker has committed.
#[derive(Debug, Clone)]
pub struct SessionCursor {
    /// The session's id in the store.
    pub session_id: i64,
    /// The number of the last batch stored (0 before the first).
    pub batch_no: i64,
    /// The last batch whose acknowledgements the broker committed.
    pub acked_through: Option<i64>,
    /// The last batch whose bodies the store has forgotten.
    pub forgotten_through: Option<i64>,
}

impl SessionCursor {
    /// A new session's cursor.
    pub fn new(session_id: i64) -> Self {
        Self {
            session_id,
            batch_no: 0,
            acked_through: None,
            forgotten_through: None,
        }
    }

    /// Batches acknowledged whose bodies the store still remembers.
    pub fn to_forget(&self) -> Option<i64> {
        self.acked_through
            .filter(|acked| self.forgotten_through.is_none_or(|done| done < *acked))
    }
}

/// How to acknowledge a step's settled messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acks {
    /// Nothing to acknowledge.
    None,
    /// Everything up to this tag (`multiple`): nothing before it is held.
    Through(u64),
    /// These tags one by one: some earlier message is held and must not be acknowledged.
    Each(Vec<u64>),
}

/// What a step decided.
#[derive(Debug, Default)]
pub struct Settled {
    /// Messages to dead-letter, with their reasons (their acknowledgement is in `acks`).
    pub dead_letter: Vec<(Incoming, RejectReason)>,
    /// Redeliveries to decide again later, in delivery order.
    pub held: Vec<Incoming>,
    /// Sessions that must be resolved before the held messages can be decided.
    pub blocked_by: BTreeSet<String>,
    /// Tags of the messages settled (stored, skipped or dead-lettered).
    pub settled: Vec<u64>,
    /// Measures stored.
    pub stored: u64,
    /// Messages skipped as already stored.
    pub duplicates: u64,
    /// Whether the batch made the store remember bodies (the broker must then record when
    /// its acknowledgements are committed).
    pub remembered_bodies: bool,
}

impl Settled {
    /// How to acknowledge the settled messages, given whether messages remain held.
    pub fn acks(&self) -> Acks {
        match self.settled.iter().max() {
            None => Acks::None,
            Some(last) if self.held.is_empty() => Acks::Through(*last),
            Some(_) => Acks::Each(self.settled.clone()),
        }
    }
}

/// Decodes, resolves and stores one batch (held messages first, then new ones), all good
/// messages in one transaction. A database error stores nothing and acknowledges nothing:
/// the broker redelivers.
pub async fn step(
    deps: &IngestDeps,
    resolver: &mut NameResolver,
    session: &mut SessionCursor,
    messages: Vec<Incoming>,
) -> Result<Settled, StoreError> {
    resolver.refresh();
    let mut settled = Settled::default();
    let mut to_store: Vec<Incoming> = Vec::with_capacity(messages.len());
    let mut delivered: Vec<Delivered> = Vec::with_capacity(messages.len());
    for message in messages {
        match measures(deps, resolver, &message).await? {
            Ok(measures) => {
                delivered.push(Delivered {
                    key: message.key(),
                    measures,
                });
                to_store.push(message);
            }
            Err(reason) => {
                deps.metrics.rejected(Source::Amqp, reason.metric(), 1);
                settled.settled.push(message.delivery_tag);
                settled.dead_letter.push((message, reason));
            }
        }
    }
    let batch_no = session.batch_no + 1;
    let forget = session.to_forget();
    // A message with a point that would grow an experiment past its series limit is
    // dead-lettered and the others stored (a few attempts when other writers race for the
    // last places).
    let mut attempts = 0;
    let outcomes = loop {
        attempts += 1;
        let appended = deps
            .measures
            .append_deliveries(ConsumerBatch {
                session_id: session.session_id,
                batch_no,
                acknowledged_through: forget,
                deliveries: &delivered,
            })
            .await;
        match appended {
            Err(StoreError::SeriesLimit { limit, series }) if attempts < 4 => {
                let mut kept_messages = Vec::with_capacity(to_store.len());
                let mut kept_deliveries = Vec::with_capacity(delivered.len());
                for (message, delivery) in to_store.into_iter().zip(delivered) {
                    let refused = delivery
                        .measures
                        .iter()
                        .find_map(|measure| RejectReason::series_limit(measure, limit, &series));
                    match refused {
                        Some(reason) => {
                            deps.metrics.rejected(Source::Amqp, reason.metric(), 1);
                            settled.settled.push(message.delivery_tag);
                            settled.dead_letter.push((message, reason));
                        }
                        None => {
                            kept_messages.push(message);
                            kept_deliveries.push(delivery);
                        }
                    }
                }
                (to_store, delivered) = (kept_messages, kept_deliveries);
            }
            other => break other?,
        }
    };
    session.batch_no = batch_no;
    if forget.is_some() {
        session.forgotten_through = forget;
    }
    for ((message, outcome), delivery) in to_store.into_iter().zip(outcomes).zip(&delivered) {
        match outcome {
            DeliveryOutcome::Stored(count) => {
                settled.stored += count;
                settled.remembered_bodies |= !matches!(delivery.key, DeliveryKey::Id(_));
                settled.settled.push(message.delivery_tag);
            }
            DeliveryOutcome::Duplicate => {
                settled.duplicates += 1;
                settled.settled.push(message.delivery_tag);
            }
            DeliveryOutcome::Undecided(sessions) => {
                settled.blocked_by.extend(sessions.iter().cloned());
                settled.held.push(Incoming {
                    waits_for: sessions,
                    ..message
                });
            }
        }
    }
    Ok(settled)
}

/// A message's measures, or why it cannot be stored.
async fn measures(
    deps: &IngestDeps,
    resolver: &mut NameResolver,
    message: &Incoming,
) -> Result<Result<Vec<mymonit_model::measure::NewMeasure>, RejectReason>, StoreError> {
    let decoded = message.decode();
    if decoded.is_empty() {
        return Ok(Err(RejectReason::Empty));
    }
    let mut measures = Vec::with_capacity(decoded.len());
    for item in decoded {
        // The broker's sources may write to every experiment.
        match resolver.measure(deps.meta.as_ref(), item, |_| true).await? {
            Ok(measure) => measures.push(measure),
            Err(reason) => return Ok(Err(reason)),
        }
    }
    Ok(Ok(measures))
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use mymonit_store::SqliteStore;

    use super::*;

    fn original(value: f64) -> Vec<u8> {
        serde_json::json!({"experiment": "device-vibrations", "measure": "volt", "value": value, "timestamp": 1_653_040_000})
            .to_string()
            .into_bytes()
    }

    fn message(tag: u64, redelivered: bool, body: Vec<u8>) -> Incoming {
        Incoming {
            delivery_tag: tag,
            redelivered,
            message_id: None,
            content_type: None,
            body,
            not_from: Vec::new(),
            waits_for: Vec::new(),
        }
    }

    struct World {
        _dir: tempfile::TempDir,
        deps: IngestDeps,
        experiment_id: i64,
    }

    async fn world() -> World {
        world_with_series_limit(None).await
    }

    async fn world_with_series_limit(limit: Option<u64>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).await.unwrap();
        if let Some(limit) = limit {
            store = store.with_max_series_per_experiment(limit);
        }
        let store = Arc::new(store);
        let experiment = store.create_experiment("device-vibrations").await.unwrap();
        World {
            _dir: dir,
            deps: IngestDeps {
                meta: store.clone(),
                measures: store,
                metrics: Arc::new(Metrics::default()),
            },
            experiment_id: experiment.experiment_id,
        }
    }

    async fn session(world: &World, name: &str) -> SessionCursor {
        SessionCursor::new(
            world
                .deps
                .measures
                .begin_consumer_session(name)
                .await
                .unwrap(),
        )
    }

    async fn run(world: &World, session: &mut SessionCursor, messages: Vec<Incoming>) -> Settled {
        let mut resolver = NameResolver::new(
            Duration::from_secs(60),
            crate::settings::IngestSettings::default(),
        );
        step(&world.deps, &mut resolver, session, messages)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn identical_first_deliveries_are_all_stored() {
        let world = world().await;
        let mut a = session(&world, "a").await;
        let messages = (1..=50)
            .map(|tag| message(tag, false, original(1.0)))
            .collect();
        let settled = run(&world, &mut a, messages).await;
        assert_eq!(settled.stored, 50);
        assert_eq!(settled.duplicates, 0);
        assert_eq!(settled.acks(), Acks::Through(50));
        let count = world
            .deps
            .measures
            .count(world.experiment_id)
            .await
            .unwrap();
        assert_eq!(count, 50);
    }

    #[tokio::test]
    async fn redeliveries_skip_exactly_the_copies_a_closed_session_committed_unacknowledged() {
        let world = world().await;
        // Session a stores 3 copies of a body in batch 1, whose acknowledgement the broker
        // committed, then 2 more in batch 2, and dies before batch 2's acknowledgement.
        let mut a = session(&world, "a").await;
        let batch = |tags: std::ops::RangeInclusive<u64>| {
            tags.map(|tag| message(tag, false, original(7.0)))
                .collect::<Vec<_>>()
        };
        run(&world, &mut a, batch(1..=3)).await;
        a.acked_through = Some(1);
        run(&world, &mut a, batch(4..=5)).await;
        // The broker redelivers batch 2 (2 copies) and 4 copies a never stored, to session b.
        let mut b = session(&world, "b").await;
        let redelivered: Vec<Incoming> = (1..=6)
            .map(|tag| message(tag, true, original(7.0)))
            .collect();
        // While a is not resolved, nothing is decided.
        let settled = run(&world, &mut b, redelivered.clone()).await;
        assert_eq!(settled.held.len(), 6);
        assert_eq!(settled.blocked_by, BTreeSet::from(["a".to_string()]));
        assert_eq!(settled.acks(), Acks::None);
        // Resolved with what the broker recorded (batch 1): batch 2's copies excuse two.
        assert!(
            world
                .deps
                .measures
                .resolve_consumer_session("a", Some(1))
                .await
                .unwrap()
        );
        let settled = run(&world, &mut b, settled.held).await;
        assert_eq!((settled.duplicates, settled.stored), (2, 4));
        assert_eq!(settled.acks(), Acks::Through(6));
        let count = world
            .deps
            .measures
            .count(world.experiment_id)
            .await
            .unwrap();
        assert_eq!(count, 5 + 4);
    }

    #[tokio::test]
    async fn a_live_sessions_bodies_hold_a_redelivery_until_it_forgets_them() {
        let world = world().await;
        let mut a = session(&world, "a").await;
        run(&world, &mut a, vec![message(1, false, original(1.0))]).await;
        let mut b = session(&world, "b").await;
        // b's first message is new, its second a redelivery that a may have stored.
        let settled = run(
            &world,
            &mut b,
            vec![
                message(1, false, original(2.0)),
                message(2, true, original(1.0)),
            ],
        )
        .await;
        assert_eq!(settled.held.len(), 1);
        assert_eq!(settled.acks(), Acks::Each(vec![1]));
        // a's acknowledgement is committed and forgotten: the redelivery was not a's.
        world
            .deps
            .measures
            .forget_acknowledged(a.session_id, 1)
            .await
            .unwrap();
        let settled = run(&world, &mut b, settled.held).await;
        assert_eq!(settled.stored, 1);
        assert_eq!(settled.acks(), Acks::Through(2));
        let count = world
            .deps
            .measures
            .count(world.experiment_id)
            .await
            .unwrap();
        assert_eq!(count, 3);
    }

    #[tokio::test]
    async fn a_redelivery_is_not_from_a_session_seen_alive_after_it_arrived() {
        let world = world().await;
        let mut a = session(&world, "a").await;
        run(&world, &mut a, vec![message(1, false, original(1.0))]).await;
        let mut b = session(&world, "b").await;
        let settled = run(&world, &mut b, vec![message(1, true, original(1.0))]).await;
        let [held] = &settled.held[..] else {
            panic!("{settled:?}")
        };
        assert_eq!(held.waits_for, vec!["a".to_string()]);
        // The broker says a is alive: the message is someone else's, never stored.
        let retry = Incoming {
            not_from: held.waits_for.clone(),
            waits_for: Vec::new(),
            ..held.clone()
        };
        let settled = run(&world, &mut b, vec![retry]).await;
        assert_eq!(settled.stored, 1);
        let count = world
            .deps
            .measures
            .count(world.experiment_id)
            .await
            .unwrap();
        assert_eq!(count, 2);
    }

    #[tokio::test]
    async fn a_message_beyond_the_series_limit_is_dead_lettered_and_the_others_stored() {
        let world = world_with_series_limit(Some(2)).await;
        let mut a = session(&world, "a").await;
        let tagged = |host: &str| {
            serde_json::json!({"experiment": "device-vibrations", "measure": "volt", "value": 1,
                "timestamp": 1_653_040_000, "tags": {"host": host}})
            .to_string()
            .into_bytes()
        };
        let messages = ["a", "b", "c", "a"]
            .iter()
            .enumerate()
            .map(|(tag, host)| message(tag as u64 + 1, false, tagged(host)))
            .collect();
        let settled = run(&world, &mut a, messages).await;
        assert_eq!(settled.stored, 3);
        let [(refused, reason)] = &settled.dead_letter[..] else {
            panic!("{settled:?}")
        };
        assert_eq!(refused.delivery_tag, 3);
        assert!(
            reason
                .to_string()
                .contains("ingest.max_series_per_experiment")
        );
        assert_eq!(settled.acks(), Acks::Through(4));
    }

    #[tokio::test]
    async fn message_ids_are_stored_once_and_bad_messages_are_dead_lettered_with_a_reason() {
        let world = world().await;
        let mut a = session(&world, "a").await;
        let with_id = |tag, redelivered| Incoming {
            message_id: Some("m-1".into()),
            ..message(tag, redelivered, original(3.0))
        };
        let unknown = serde_json::json!({"experiment": "nowhere", "measure": "volt", "value": 1, "timestamp": 1})
            .to_string()
            .into_bytes();
        let settled = run(
            &world,
            &mut a,
            vec![
                with_id(1, false),
                message(2, false, b"not json".to_vec()),
                message(3, false, unknown),
                message(4, false, b"[]".to_vec()),
                with_id(5, true),
            ],
        )
        .await;
        assert_eq!((settled.stored, settled.duplicates), (1, 1));
        let reasons: Vec<String> = settled
            .dead_letter
            .iter()
            .map(|(_, reason)| reason.to_string())
            .collect();
        assert!(reasons[0].contains("malformed JSON"), "{reasons:?}");
        assert_eq!(reasons[1], "unknown experiment \"nowhere\"");
        assert_eq!(reasons[2], "empty message: no measure in it");
        assert_eq!(settled.acks(), Acks::Through(5));
        // Messages with ids need no record of their acknowledgement.
        assert!(!settled.remembered_bodies);
    }
}
