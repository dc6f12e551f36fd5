//! Alert rules against a real Alertmanager (Debian's `prometheus-alertmanager`, started here
//! on loopback with a webhook receiver this test listens on) and a plain webhook.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use mymonit_model::measure::NewMeasure;
use mymonit_server::settings::WebhookSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, free_port, program_available, world_with};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const WEBHOOK_SECRET: &str = "whsec-test";

/// What a receiver got: headers and JSON bodies.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, Value, Bytes)>>>);

impl Received {
    fn bodies(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v, _)| v.clone())
            .collect()
    }
}

/// An HTTP receiver on `port`, until the returned task is aborted.
async fn receiver(port: u16, received: Received) -> tokio::task::JoinHandle<()> {
    async fn take(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        received.0.lock().unwrap().push((headers, value, body));
        StatusCode::OK
    }
    let app = Router::new()
        .route("/{*path}", post(take))
        .with_state(received);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    })
}

/// A private Alertmanager routing every alert, at once, to `webhook`.
struct Alertmanager {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    async fn start(webhook: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: test\n  group_by: [alertname, mymonit_rule_id, host]\n  \
                 group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: test\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let mut child = std::process::Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Alertmanager starts");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if reqwest::get(format!("{url}/-/ready"))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Self {
                    child,
                    url,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("Alertmanager did not become ready");
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn eventually<F, Fut>(secs: u64, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Points of `measure` with tag `host`, one now, stored directly.
async fn point(app: &TestApp, experiment_id: i64, measure: &str, host: &str, value: f64) {
    let measure_type = app
        .state
        .meta
        .measure_type_by_name(measure)
        .await
        .unwrap()
        .unwrap();
    app.state
        .measures
        .append(&[NewMeasure {
            experiment_id,
            measure_type_id: measure_type.measure_type_id,
            timestamp_ns: mymonit_model::time::now_ns(),
            value,
            tags: BTreeMap::from([("host".to_owned(), host.to_owned())]),
        }])
        .await
        .unwrap();
}

async fn rule(app: &TestApp, token: &str, experiment_id: i64, rule_id: i64) -> Value {
    let reply = app
        .get(
            &format!("/api/v1/experiments/{experiment_id}/alert-rules/{rule_id}"),
            token,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()
}

/// A per-host threshold rule fires for one host only once `for` has passed, reaches
/// Alertmanager, which routes it to its webhook, and the signed plain webhook; it resolves
/// when the values come back, and both hear of it. An absence rule fires when its source stops,
/// and its webhook, down at first, receives the notification once it is up. Scientists of other
/// experiments and admins see no rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rules_fire_and_resolve_through_alertmanager_and_webhooks() {
    if !program_available(
        "prometheus-alertmanager",
        std::path::Path::new(ALERTMANAGER).exists(),
    ) {
        return;
    }
    let am_received = Received::default();
    let am_port = free_port();
    let _am_receiver = receiver(am_port, am_received.clone()).await;
    let alertmanager = Alertmanager::start(&format!("http://127.0.0.1:{am_port}/am")).await;
    let hook_received = Received::default();
    let hook_port = free_port();
    let _hook_receiver = receiver(hook_port, hook_received.clone()).await;
    // A webhook that is down at first.
    let late_port = free_port();
    let late_received = Received::default();
    let am_url = alertmanager.url.clone();
    let world = world_with(move |s| {
        s.alerting.alertmanager_urls = vec![am_url];
        s.alerting.webhooks = vec![
            WebhookSettings {
                url: format!("http://127.0.0.1:{hook_port}/hook"),
                secret: Some(WEBHOOK_SECRET.into()),
            },
            WebhookSettings {
                url: format!("http://127.0.0.1:{late_port}/late"),
                secret: None,
            },
        ];
        s.alerting.grace_secs = 0;
    })
    .await;
    let app = &world.app;
    let experiment = world.vibrations;
    let rules = format!("/api/v1/experiments/{experiment}/alert-rules");

    // Who may: not a scientist of another experiment, not an admin.
    let body = json!({"name": "vibration high", "measure": "hertz", "statistic": "mean",
        "window": "3s", "op": ">", "threshold": 120, "for": "2s", "interval": "1s",
        "group_by": "tag:host", "labels": {"severity": "page"},
        "description": "{{ $labels.host }} vibrates at {{ $value }} Hz"});
    app.call(
        Method::POST,
        &rules,
        Some(&world.other_scientist),
        Some(&body),
    )
    .await
    .problem(403);
    app.call(Method::POST, &rules, Some(&world.admin), Some(&body))
        .await
        .problem(403);
    let bad = app
        .call(
            Method::POST,
            &rules,
            Some(&world.scientist),
            Some(&json!({"name": "x", "measure": "hertz", "statistic": "mean", "window": "soon", "op": ">", "threshold": 1})),
        )
        .await;
    assert!(bad.problem(422).contains("soon"), "{}", bad.text);
    let created = app
        .call(Method::POST, &rules, Some(&world.scientist), Some(&body))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let rule_id = created.json()["rule_id"].as_i64().unwrap();
    assert_eq!(created.json()["for"], "2s");
    app.get(&rules, &world.admin).await.problem(403);
    app.get(&format!("{rules}/{rule_id}"), &world.admin)
        .await
        .problem(403);
    app.get(
        &format!("{rules}/{rule_id}/history"),
        &world.other_scientist,
    )
    .await
    .problem(403);

    // Host a vibrates too much, host b does not.
    let feeding = Arc::new(Mutex::new(130.0));
    let feed = {
        let app_state = app.state.clone();
        let feeding = feeding.clone();
        let hertz = app_state
            .meta
            .measure_type_by_name("hertz")
            .await
            .unwrap()
            .unwrap()
            .measure_type_id;
        tokio::spawn(async move {
            loop {
                let a = *feeding.lock().unwrap();
                let now = mymonit_model::time::now_ns();
                let points: Vec<NewMeasure> = [("a", a), ("b", 100.0)]
                    .iter()
                    .map(|(host, value)| NewMeasure {
                        experiment_id: experiment,
                        measure_type_id: hertz,
                        timestamp_ns: now,
                        value: *value,
                        tags: BTreeMap::from([("host".to_owned(), (*host).to_owned())]),
                    })
                    .collect();
                app_state.measures.append(&points).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let started = std::time::Instant::now();
    eventually(30, "the rule to fire", || async {
        rule(app, &world.scientist, experiment, rule_id).await["state"] == "firing"
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "fired before `for` passed"
    );
    let firing = rule(app, &world.scientist, experiment, rule_id).await;
    let alerts = firing["alerts"].as_array().unwrap();
    let state_of = |host: &str| {
        alerts
            .iter()
            .find(|a| a["group"] == host)
            .map(|a| a["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state_of("a").as_deref(), Some("firing"), "{firing}");
    assert_eq!(state_of("b").as_deref(), Some("inactive"), "{firing}");
    assert!(firing["last_value"].as_f64().unwrap() > 120.0);

    // Alertmanager routes it to its webhook: one alert, host a, with the rule's labels.
    eventually(30, "Alertmanager's webhook", || async {
        am_received.bodies().iter().any(|b| b["status"] == "firing")
    })
    .await;
    let routed = am_received
        .bodies()
        .into_iter()
        .find(|b| b["status"] == "firing")
        .unwrap();
    let routed_alerts = routed["alerts"].as_array().unwrap();
    assert_eq!(routed_alerts.len(), 1, "{routed}");
    assert_eq!(routed_alerts[0]["labels"]["host"], "a");
    assert_eq!(routed_alerts[0]["labels"]["alertname"], "vibration high");
    assert_eq!(routed_alerts[0]["labels"]["severity"], "page");
    assert_eq!(
        routed_alerts[0]["labels"]["experiment"],
        "device-vibrations"
    );
    assert!(
        routed_alerts[0]["annotations"]["description"]
            .as_str()
            .unwrap()
            .starts_with("a vibrates at 130"),
        "{routed}"
    );
    assert!(
        routed_alerts[0]["generatorURL"]
            .as_str()
            .unwrap()
            .contains(&format!("/experiments/{experiment}?from=")),
        "{routed}"
    );
    // The plain webhook: signed, host a only.
    eventually(10, "the webhook's firing", || async {
        hook_received
            .bodies()
            .iter()
            .any(|b| b["status"] == "firing")
    })
    .await;
    {
        let got = hook_received.0.lock().unwrap();
        let (headers, value, raw) = got
            .iter()
            .find(|(_, v, _)| v["status"] == "firing")
            .unwrap();
        assert_eq!(value["group"], "a");
        assert_eq!(value["rule"], "vibration high");
        let signature = headers["x-mymonit-signature"].to_str().unwrap();
        assert_eq!(
            signature,
            mymonit_server::alerting::delivery::signature(WEBHOOK_SECRET, raw)
        );
        assert!(got.iter().all(|(_, v, _)| v["group"] != "b"));
    }

    // The values come back: resolved, at Alertmanager's webhook and the plain one.
    *feeding.lock().unwrap() = 100.0;
    eventually(30, "the rule to resolve", || async {
        rule(app, &world.scientist, experiment, rule_id).await["state"] == "inactive"
    })
    .await;
    eventually(30, "Alertmanager's resolution", || async {
        am_received
            .bodies()
            .iter()
            .any(|b| b["status"] == "resolved" && b["alerts"][0]["labels"]["host"] == "a")
    })
    .await;
    eventually(10, "the webhook's resolution", || async {
        hook_received
            .bodies()
            .iter()
            .any(|b| b["status"] == "resolved")
    })
    .await;
    let history = app
        .get(&format!("{rules}/{rule_id}/history"), &world.scientist)
        .await
        .json();
    let transitions: Vec<(String, String)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["group"].as_str().unwrap_or("").to_owned(),
                e["transition"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [("a", "pending"), ("a", "firing"), ("a", "resolved")]
            .map(|(g, t)| (g.to_owned(), t.to_owned()))
            .to_vec(),
        "{history}"
    );
    let resolved_value = history["events"][0]["value"].as_f64().unwrap();
    assert!(resolved_value <= 120.0, "{history}");
    assert!(
        history["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["status"] == "delivered"
                && n["receiver"].as_str().unwrap().starts_with("alertmanager:")),
        "{history}"
    );
    feed.abort();

    // An absence rule: the source stops, the rule fires; the late webhook is down at first.
    for _ in 0..3 {
        point(app, experiment, "degree Celsius", "a", 21.0).await;
    }
    let absent = app
        .call(
            Method::POST,
            &rules,
            Some(&world.scientist),
            Some(
                &json!({"name": "thermometer silent", "measure": "degree Celsius",
                "absent_for": "2s", "interval": "1s"}),
            ),
        )
        .await;
    assert_eq!(absent.status, StatusCode::CREATED, "{}", absent.text);
    let absent_id = absent.json()["rule_id"].as_i64().unwrap();
    eventually(30, "the absence rule to fire", || async {
        rule(app, &world.scientist, experiment, absent_id).await["state"] == "firing"
    })
    .await;
    // The late webhook's notifications (the vibration rule's, first) fail and are retried;
    // its queue waits, in order, while the others' go on.
    let late = format!(":{late_port}/");
    eventually(20, "a failed attempt to the late webhook", || async {
        let history = app
            .get(&format!("{rules}/{rule_id}/history"), &world.scientist)
            .await
            .json();
        history["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| {
                n["receiver"].as_str().unwrap().contains(&late)
                    && n["status"] == "pending"
                    && n["attempts"].as_u64().unwrap() >= 1
            })
    })
    .await;
    let _late = receiver(late_port, late_received.clone()).await;
    eventually(60, "the late webhook's deliveries", || async {
        late_received
            .bodies()
            .iter()
            .any(|b| b["rule"] == "thermometer silent" && b["status"] == "firing")
    })
    .await;
    let order: Vec<(String, String)> = late_received
        .bodies()
        .iter()
        .map(|b| {
            (
                b["rule"].as_str().unwrap().to_owned(),
                b["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("vibration high", "firing"),
            ("vibration high", "resolved"),
            ("thermometer silent", "firing")
        ]
        .map(|(r, s)| (r.to_owned(), s.to_owned()))
        .to_vec(),
        "each delivered once, in order"
    );
    // Metrics count the rules and the firing alerts.
    let (rules_count, firing_count) = app.state.alerts.alert_counts().await.unwrap();
    assert_eq!((rules_count, firing_count), (2, 1));
    // Deleting the firing rule tells the receivers it ended.
    let deleted = app
        .call(
            Method::DELETE,
            &format!("{rules}/{absent_id}"),
            Some(&world.scientist),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    eventually(30, "the resolution of the deleted rule", || async {
        late_received
            .bodies()
            .iter()
            .any(|b| b["rule"] == "thermometer silent" && b["status"] == "resolved")
            && am_received.bodies().iter().any(|b| {
                b["status"] == "resolved"
                    && b["alerts"][0]["labels"]["alertname"] == "thermometer silent"
            })
    })
    .await;
    assert_eq!(app.state.alerts.alert_counts().await.unwrap(), (1, 0));
}
