//! The AMQP path against a real RabbitMQ (`scripts/test` starts one and sets
//! `MYMONIT_TEST_AMQP_URL`). Each test uses its own exchange and queues, so tests share the
//! broker without seeing each other's messages.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use lapin::{
    BasicProperties, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use mymonit_server::settings::{AmqpSettings, QueueType};
use mymonit_store::MeasureQuery;
use serde_json::json;

use crate::helpers::{TestApp, World, world_with};

/// The broker URL, or `None` (the test is skipped) outside CI; in CI a missing broker fails.
fn broker() -> Option<String> {
    match std::env::var("MYMONIT_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "CI is set but MYMONIT_TEST_AMQP_URL is not: scripts/test starts RabbitMQ and sets it"
            )
        }
        _ => {
            eprintln!("skipped: no RabbitMQ (run scripts/test, or set MYMONIT_TEST_AMQP_URL)");
            None
        }
    }
}

fn amqp_settings(url: &str, name: &str) -> AmqpSettings {
    AmqpSettings {
        url: Some(url.to_string()),
        exchange: format!("{name}.exchange"),
        routing_key: "measures".into(),
        queue: format!("{name}.measures"),
        dead_letter_queue: format!("{name}.measures.dead"),
        batch_wait_ms: 2,
        ..AmqpSettings::default()
    }
}

/// A publisher with confirms, on the test's exchange (declared as MyMonit declares it).
struct Publisher {
    channel: lapin::Channel,
    exchange: String,
    _connection: Connection,
}

impl Publisher {
    async fn new(url: &str, exchange: &str) -> Self {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        Self {
            channel,
            exchange: exchange.to_string(),
            _connection: connection,
        }
    }

    async fn publish(&self, body: &str, message_id: Option<&str>) {
        let mut properties = BasicProperties::default();
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                "measures".into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }
}

impl Publisher {
    /// Publishes bodies as the original adapter did (no message id), awaiting the broker's
    /// confirms a window at a time.
    async fn publish_many(&self, bodies: impl IntoIterator<Item = String>) {
        let mut pending = Vec::new();
        for body in bodies {
            let confirm = self
                .channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    "measures".into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .unwrap();
            pending.push(confirm);
            if pending.len() == 500 {
                for confirm in pending.drain(..) {
                    assert!(confirm.await.unwrap().is_ack());
                }
            }
        }
        for confirm in pending {
            assert!(confirm.await.unwrap().is_ack());
        }
    }
}

/// `total` bodies in the original format, all in one second, values cycling over `distinct`
/// numbers: a stable sensor's traffic, where equal bodies are distinct readings.
fn repeating(total: usize, distinct: usize) -> Vec<String> {
    (0..total)
        .map(|i| original((i % distinct) as f64, 1_653_070_000))
        .collect()
}

/// How many times each value occurs among `bodies`' values (as text, to key a map).
fn counts_of(values: impl IntoIterator<Item = f64>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for value in values {
        *counts.entry(value.to_string()).or_insert(0) += 1;
    }
    counts
}

/// Every stored `volt` value of the world's device-vibrations experiment, read from the
/// store.
async fn stored_values(world: &World) -> Vec<f64> {
    let volt = world
        .app
        .state
        .meta
        .measure_type_by_name("volt")
        .await
        .unwrap()
        .unwrap()
        .measure_type_id;
    let mut values = Vec::new();
    let mut after = None;
    loop {
        let page = world
            .app
            .state
            .measures
            .query(&MeasureQuery {
                experiment_id: world.vibrations,
                measure_type_id: Some(volt),
                after,
                limit: 10_000,
                ..MeasureQuery::default()
            })
            .await
            .unwrap();
        values.extend(page.iter().map(|m| m.value));
        match page.last() {
            Some(last) if page.len() == 10_000 => after = Some((last.timestamp_ns, last.seq)),
            _ => return values,
        }
    }
}

/// Waits until the queue is drained and at least `expected` measures are stored, then a
/// moment more (a duplicate would show); returns the stored values.
async fn wait_for_all(
    world: &World,
    channel: &lapin::Channel,
    queue: &str,
    expected: u64,
) -> Vec<f64> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = stored_values(world).await.len() as u64;
        let waiting = inspect_queue(channel, queue).await.message_count();
        if (stored >= expected && waiting == 0) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stored_values(world).await
}

/// A queue's counts (messages, consumers), without declaring it.
async fn inspect_queue(channel: &lapin::Channel, name: &str) -> lapin::Queue {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
}

/// Waits (up to `within`) until `/readyz` satisfies `done`.
async fn wait_for_readiness(
    app: &TestApp,
    within: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        let ready = app
            .call(reqwest::Method::GET, "/readyz", None, None)
            .await
            .json();
        if done(&ready) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `/readyz` shows the consumer in `state` (`consuming`: its queue is declared
/// and bound).
async fn wait_for_consumer(app: &TestApp, state: &str) {
    let what = format!("the AMQP consumer did not reach {state}");
    wait_for_readiness(app, Duration::from_secs(60), &what, |ready| {
        ready["amqp"]["state"] == state
    })
    .await;
}

/// Waits until the experiment holds `expected` measures (as its scientist reads them).
async fn wait_for_count(world: &World, expected: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = world
            .app
            .get(
                &format!(
                    "/api/v1/experiments/{}/measures?measure=volt&limit=10000",
                    world.vibrations
                ),
                &world.scientist,
            )
            .await
            .json();
        let measures = page["measures"].as_array().unwrap().clone();
        if measures.len() >= expected || Instant::now() > deadline {
            return measures;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn original(value: f64, timestamp: i64) -> String {
    json!({"experiment": "device-vibrations", "measure": "volt", "value": value, "timestamp": timestamp}).to_string()
}

#[tokio::test]
async fn original_messages_flow_bad_ones_are_dead_lettered_and_redeliveries_deduplicated() {
    message_flow(QueueType::Classic).await;
}

/// The same flow through quorum queues (a single-member one on the test broker; replicated on
/// a cluster).
#[tokio::test]
async fn the_flow_is_the_same_through_quorum_queues() {
    message_flow(QueueType::Quorum).await;
}

async fn message_flow(queue_type: QueueType) {
    let Some(url) = broker() else { return };
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    let settings = AmqpSettings {
        queue_type,
        ..amqp_settings(&url, &name)
    };
    let world = world_with(|s| s.amqp = settings.clone()).await;
    wait_for_consumer(&world.app, "consuming").await;
    let publisher = Publisher::new(&url, &settings.exchange).await;

    publisher.publish(&original(1.0, 1_653_040_000), None).await;
    publisher.publish("this is not JSON", None).await;
    publisher.publish(&json!({"experiment": "device-vibrations", "measure": "furlongs", "value": 1, "timestamp": 1}).to_string(), None).await;
    // Two readings of one series in the same second are both kept...
    publisher
        .publish(&original(2.0, 1_653_040_001), Some("reading-a"))
        .await;
    publisher
        .publish(&original(3.0, 1_653_040_001), Some("reading-b"))
        .await;
    // ... but the same message delivered twice is stored once.
    publisher
        .publish(&original(2.0, 1_653_040_001), Some("reading-a"))
        .await;
    // Many measures in one message, as an array.
    let many: Vec<serde_json::Value> = (0..100)
        .map(|i| json!({"experiment": "device-vibrations", "measure": "volt", "value": 100 + i, "timestamp": 1_653_050_000 + i}))
        .collect();
    publisher
        .publish(&serde_json::Value::Array(many).to_string(), None)
        .await;
    publisher.publish(&original(4.0, 1_653_040_002), None).await;

    let measures = wait_for_count(&world, 104).await;
    let values: Vec<f64> = measures
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 104, "{values:?}");
    assert_eq!(&values[..4], &[1.0, 2.0, 3.0, 4.0]);
    // Nothing else arrives later (the duplicate really was dropped, not delayed).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(wait_for_count(&world, 105).await.len(), 104);

    // The bad messages wait in the dead-letter queue with their reasons.
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut reasons = Vec::new();
    for _ in 0..2 {
        let message = channel
            .basic_get(
                settings.dead_letter_queue.as_str().into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
            .expect("a dead-lettered message");
        let headers = message.delivery.properties.headers().clone().unwrap();
        let reason = match headers.inner().get("x-mymonit-error") {
            Some(AMQPValue::LongString(text)) => text.to_string(),
            other => panic!("no reason header: {other:?}"),
        };
        reasons.push((
            String::from_utf8_lossy(&message.delivery.data).to_string(),
            reason,
        ));
    }
    assert_eq!(reasons[0].0, "this is not JSON");
    assert!(reasons[0].1.contains("malformed JSON"), "{reasons:?}");
    assert!(
        reasons[1].1.contains("unknown measure type \"furlongs\""),
        "{reasons:?}"
    );
    let queue = inspect_queue(&channel, &settings.queue).await;
    assert_eq!(queue.message_count(), 0, "everything was acknowledged");
    if queue_type == QueueType::Quorum {
        // Declared as quorum queues: declaring them classic now is refused by the broker.
        let classic = connection.create_channel().await.unwrap();
        let redeclared = classic
            .queue_declare(
                settings.queue.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await;
        assert!(redeclared.is_err(), "the queue is not a quorum queue");
    }
}

#[tokio::test]
async fn twenty_thousand_equal_second_messages_without_ids_are_all_stored() {
    let Some(url) = broker() else { return };
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    let settings = amqp_settings(&url, &name);
    let world = world_with(|s| s.amqp = settings.clone()).await;
    wait_for_consumer(&world.app, "consuming").await;
    let publisher = Publisher::new(&url, &settings.exchange).await;
    // The original adapter's traffic: no message id, whole seconds; 20,000 readings of one
    // second over 997 values, so most bodies equal earlier ones.
    let bodies = repeating(20_000, 997);
    publisher.publish_many(bodies.clone()).await;

    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let values = wait_for_all(&world, &channel, &settings.queue, 20_000).await;
    assert_eq!(
        values.len(),
        20_000,
        "every reading is stored, equal ones too"
    );
    let published = counts_of(bodies.iter().map(|body| {
        serde_json::from_str::<serde_json::Value>(body).unwrap()["value"]
            .as_f64()
            .unwrap()
    }));
    assert_eq!(counts_of(values), published);
}

/// A batch closes at `amqp.batch_bytes` of bodies, however many messages wait: large
/// messages are stored a few at a time (their measures are decoded in memory together), and
/// every one is stored once.
#[tokio::test]
async fn batches_close_at_their_byte_budget() {
    let Some(url) = broker() else { return };
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    let settings = AmqpSettings {
        // Each body is ~90 bytes: at most 3 messages a batch.
        batch_bytes: 200,
        batch_wait_ms: 50,
        ..amqp_settings(&url, &name)
    };
    let world = world_with(|s| s.amqp = settings.clone()).await;
    wait_for_consumer(&world.app, "consuming").await;
    let publisher = Publisher::new(&url, &settings.exchange).await;
    let bodies: Vec<String> = (0..600)
        .map(|i| original(i as f64, 1_653_070_000 + i))
        .collect();
    assert!(bodies.iter().all(|body| body.len() < 100), "{}", bodies[0]);
    publisher.publish_many(bodies).await;

    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let values = wait_for_all(&world, &channel, &settings.queue, 600).await;
    assert_eq!(counts_of(values), counts_of((0..600).map(f64::from)));
    let metrics = world.app.state.metrics.encode();
    let batches: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("mymonit_ingest_batch_measures_count{source=\"amqp\"} "))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no AMQP batch count in {metrics}"));
    assert!(batches >= 200, "600 messages in {batches} batches");
}

#[tokio::test]
async fn two_servers_share_one_queue() {
    let Some(url) = broker() else { return };
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    let settings = amqp_settings(&url, &name);
    let world = world_with(|s| s.amqp = settings.clone()).await;
    // A second server on the same data directory and the same queue.
    let data_dir = world.app.data_dir.clone();
    let database_url = world.app.database_url.clone();
    let second = crate::helpers::spawn_app_with(|s| {
        s.data_dir = data_dir;
        s.database.url = database_url;
        s.amqp = settings.clone();
    })
    .await;
    wait_for_consumer(&world.app, "consuming").await;
    wait_for_consumer(&second, "consuming").await;
    let publisher = Publisher::new(&url, &settings.exchange).await;
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let queue = inspect_queue(&channel, &settings.queue).await;
    assert_eq!(queue.consumer_count(), 2);
    // Bodies repeat and share one second: each server's numbering must stay apart, or
    // compaction would merge readings of the two.
    let bodies = repeating(3_000, 7);
    publisher.publish_many(bodies).await;
    let values = wait_for_all(&world, &channel, &settings.queue, 3_000).await;
    assert_eq!(values.len(), 3_000, "each message stored exactly once");
    world.app.state.measures.compact(1 << 20).await.unwrap();
    let values = stored_values(&world).await;
    assert_eq!(
        counts_of(values),
        counts_of((0..3_000).map(|i| (i % 7) as f64)),
        "compaction kept every reading"
    );
    let delivered_to_second = second
        .call(reqwest::Method::GET, "/readyz", None, None)
        .await
        .json();
    assert_eq!(delivered_to_second["amqp"]["state"], "consuming");
}

#[tokio::test]
async fn a_redelivery_is_skipped_only_when_its_message_was_stored() {
    let Some(url) = broker() else { return };
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    let settings = amqp_settings(&url, &name);
    let publisher = Publisher::new(&url, &settings.exchange).await;
    // Before MyMonit consumes, another consumer takes two messages and holds them
    // unacknowledged: one with a message id, one without.
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let setup = connection.create_channel().await.unwrap();
    setup
        .queue_declare(
            settings.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    setup
        .queue_bind(
            settings.queue.as_str().into(),
            settings.exchange.as_str().into(),
            "measures".into(),
            lapin::options::QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    publisher
        .publish(&original(1.0, 1_653_080_000), Some("with-id"))
        .await;
    publisher.publish(&original(2.0, 1_653_080_000), None).await;
    let holder = connection.create_channel().await.unwrap();
    for _ in 0..2 {
        holder
            .basic_get(
                settings.queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .unwrap()
            .expect("a message to hold");
    }
    // The same message id published again, and an equal body without one.
    publisher
        .publish(&original(1.0, 1_653_080_000), Some("with-id"))
        .await;
    publisher.publish(&original(2.0, 1_653_080_000), None).await;
    // MyMonit starts consuming once its experiment exists.
    let world = crate::helpers::world().await;
    let data_dir = world.app.data_dir.clone();
    let database_url = world.app.database_url.clone();
    let consumer = crate::helpers::spawn_app_with(|s| {
        s.data_dir = data_dir;
        s.database.url = database_url;
        s.amqp = settings.clone();
    })
    .await;
    wait_for_consumer(&consumer, "consuming").await;
    assert_eq!(wait_for_count(&world, 2).await.len(), 2);
    // The holder dies: both held messages come back, marked redelivered. The one with an id
    // was stored already; the other one no MyMonit session ever stored.
    holder.close(200, "gone".into()).await.unwrap();
    let values = wait_for_all(&world, &setup, &settings.queue, 3).await;
    assert_eq!(counts_of(values), counts_of([1.0, 2.0, 2.0]));
    let metrics = consumer.state.metrics.encode();
    assert!(
        metrics.contains("mymonit_amqp_redeliveries_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mymonit_amqp_duplicates_skipped_total 1"),
        "{metrics}"
    );
}

/// A TCP proxy to the broker whose connections can be cut, to simulate a network drop.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(broker: &str) -> Self {
        let target = broker
            .split('@')
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("broker URL with user@host:port")
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (accept_cut, accept_connections) = (cut.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if accept_cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused while the network is "down"
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                accept_connections.lock().unwrap().push(task);
            }
        });
        Self {
            port,
            cut,
            connections,
        }
    }

    fn url(&self, broker: &str) -> String {
        let (credentials, rest) = broker.split_once('@').unwrap();
        let vhost = rest.split_once('/').map(|(_, v)| v).unwrap_or("%2f");
        format!("{credentials}@127.0.0.1:{}/{vhost}", self.port)
    }

    /// Closes every proxied connection and refuses new ones until [`Proxy::restore`].
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_consumer_survives_a_network_drop() {
    let Some(url) = broker() else { return };
    let proxy = Proxy::start(&url).await;
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    let settings = amqp_settings(&proxy.url(&url), &name);
    let world = world_with(|s| s.amqp = settings.clone()).await;
    wait_for_consumer(&world.app, "consuming").await;
    // The publisher talks to the broker directly: only MyMonit's link goes down.
    let publisher = Publisher::new(&url, &settings.exchange).await;
    for i in 0..200 {
        publisher
            .publish(
                &original(f64::from(i), 1_653_070_000 + i64::from(i)),
                Some(&format!("m{i}")),
            )
            .await;
    }
    proxy.cut();
    wait_for_consumer(&world.app, "reconnecting").await;
    for i in 200..400 {
        publisher
            .publish(
                &original(f64::from(i), 1_653_070_000 + i64::from(i)),
                Some(&format!("m{i}")),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore();
    wait_for_consumer(&world.app, "consuming").await;
    for i in 400..500 {
        publisher
            .publish(
                &original(f64::from(i), 1_653_070_000 + i64::from(i)),
                Some(&format!("m{i}")),
            )
            .await;
    }
    let measures = wait_for_count(&world, 500).await;
    let values: Vec<f64> = measures
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    assert_eq!(
        values,
        (0..500).map(f64::from).collect::<Vec<_>>(),
        "every message exactly once, in order"
    );
}

/// A broker node of the test's own (port and data directory), so that restarting it does not
/// disturb the tests sharing the main one. Removed when dropped.
struct DedicatedBroker {
    port: u16,
    dir: tempfile::TempDir,
}

impl DedicatedBroker {
    fn run(&self, command: &str) -> bool {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/lib/rabbitmq.sh");
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("source '{script}' && {command}"))
            .env("RMQ_PORT", self.port.to_string())
            .env("RMQ_DIR", self.dir.path())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn start(port: u16) -> Self {
        let broker = Self {
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        assert!(
            broker.run("rabbitmq_start"),
            "the dedicated RabbitMQ did not start"
        );
        broker
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}

impl Drop for DedicatedBroker {
    fn drop(&mut self) {
        self.run("rabbitmq_stop");
    }
}

#[tokio::test]
async fn the_consumer_survives_a_broker_restart() {
    // Runs where the shared broker runs (scripts/test installs RabbitMQ).
    let Some(_) = broker() else { return };
    let broker = DedicatedBroker::start(5693);
    let url = broker.url();
    let settings = amqp_settings(&url, "restart");
    let world = world_with(|s| s.amqp = settings.clone()).await;
    wait_for_consumer(&world.app, "consuming").await;
    let publisher = Publisher::new(&url, &settings.exchange).await;
    for i in 0..50 {
        publisher
            .publish(&original(i as f64, 1_653_040_000 + i), None)
            .await;
    }
    assert_eq!(wait_for_count(&world, 50).await.len(), 50);
    drop(publisher);

    // The broker stops: the consumer says so, and does not give up.
    assert!(broker.run("rabbitmq_halt"), "the broker did not stop");
    wait_for_readiness(
        &world.app,
        Duration::from_secs(30),
        "the consumer did not notice",
        |ready| ready["amqp"]["state"] != "consuming",
    )
    .await;
    // It comes back with its durable queue; the consumer reconnects and goes on.
    assert!(broker.run("rabbitmq_start"), "the broker did not restart");
    // The backoff may have grown to 16 s while the broker was away.
    wait_for_readiness(
        &world.app,
        Duration::from_secs(60),
        "the consumer did not reconnect",
        |ready| ready["amqp"]["state"] == "consuming",
    )
    .await;
    let publisher = Publisher::new(&url, &settings.exchange).await;
    for i in 50..100 {
        publisher
            .publish(&original(i as f64, 1_653_040_000 + i), None)
            .await;
    }
    let values: Vec<f64> = wait_for_count(&world, 100)
        .await
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, (0..100).map(f64::from).collect::<Vec<_>>());
}

/// A PostgreSQL cluster of a test's own, which it may stop and start.
struct DedicatedPostgres {
    port: u16,
    dir: tempfile::TempDir,
}

impl DedicatedPostgres {
    fn run(&self, command: &str) -> bool {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/lib/postgresql.sh"
        );
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("source '{script}' && {command}"))
            .env("PG_PORT", self.port.to_string())
            .env("PG_DIR", self.dir.path())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn start(port: u16) -> Self {
        let cluster = Self {
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        assert!(
            cluster.run("postgresql_start"),
            "the dedicated PostgreSQL did not start"
        );
        cluster
    }

    fn url(&self) -> String {
        format!("postgres://mymonit:mymonit@127.0.0.1:{}/mymonit", self.port)
    }
}

impl Drop for DedicatedPostgres {
    fn drop(&mut self) {
        self.run("postgresql_stop");
    }
}

/// Two instances on one PostgreSQL and one queue; the database restarts while they consume
/// equal messages without ids: both say they are not ready meanwhile, then go on, and every
/// message is stored exactly once.
#[tokio::test]
async fn two_instances_survive_a_database_restart_without_losing_or_doubling() {
    let Some(url) = broker() else { return };
    // Runs where the shared PostgreSQL runs (scripts/test installs it).
    if crate::helpers::test_postgres().is_none() {
        return;
    }
    let postgres = DedicatedPostgres::start(5438);
    let database = postgres.url();
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    let settings = amqp_settings(&url, &name);
    let first_database = database.clone();
    let world = world_with(|s| {
        s.amqp = settings.clone();
        s.database.url = Some(first_database);
    })
    .await;
    let key = world.app.data_dir.join("jwt-signing-key.ed25519.pk8");
    let second = crate::helpers::spawn_app_with(|s| {
        s.amqp = settings.clone();
        s.database.url = Some(database);
        s.auth.signing_key_file = Some(key);
    })
    .await;
    wait_for_consumer(&world.app, "consuming").await;
    wait_for_consumer(&second, "consuming").await;
    let publisher = Publisher::new(&url, &settings.exchange).await;
    // Every message the same reading: only the broker's redelivery flag and the instances'
    // records can tell a repeat from a new one.
    const TOTAL: usize = 3_000;
    for _ in 0..TOTAL / 2 {
        publisher.publish(&original(7.0, 1_653_040_000), None).await;
    }
    assert!(postgres.run("postgresql_halt"), "PostgreSQL did not stop");
    for app in [&world.app, &second] {
        wait_for_readiness(
            app,
            Duration::from_secs(60),
            "an instance did not notice the database was gone",
            |ready| ready["status"] != "ready",
        )
        .await;
    }
    for _ in 0..TOTAL / 2 {
        publisher.publish(&original(7.0, 1_653_040_000), None).await;
    }
    assert!(
        postgres.run("postgresql_start"),
        "PostgreSQL did not restart"
    );
    for app in [&world.app, &second] {
        wait_for_readiness(
            app,
            Duration::from_secs(90),
            "an instance did not recover",
            |ready| ready["status"] == "ready" && ready["amqp"]["state"] == "consuming",
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut stored = 0;
    while Instant::now() < deadline {
        stored = wait_for_count(&world, TOTAL).await.len();
        if stored >= TOTAL {
            break;
        }
    }
    // Nothing more arrives later: no message was stored twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored, TOTAL);
    assert_eq!(wait_for_count(&world, TOTAL + 1).await.len(), TOTAL);
}
