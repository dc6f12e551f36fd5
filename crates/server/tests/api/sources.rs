//! Pull sources against real ones: a Flask-MonitoringDashboard 1.13 app and a
//! `prometheus_client` service (both from PyPI, run by the Python of `MYMONIT_TEST_PYTHON`),
//! and MyMonit's own metrics page. Outside CI, without that Python, the tests are skipped.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::Path,
    time::Duration,
};

use mymonit_model::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestDatabase, free_port, on_postgres, program_available, spawn_app_with, urlencode,
};

/// The Python with the clients' packages, or `None` (skip) outside CI.
fn python() -> Option<String> {
    let python = std::env::var("MYMONIT_TEST_PYTHON").ok();
    program_available(
        "Python with Flask-MonitoringDashboard and prometheus_client (MYMONIT_TEST_PYTHON)",
        python.is_some(),
    )
    .then(|| python.unwrap_or_default())
}

fn script(name: &str) -> String {
    format!("{}/tests/api/clients/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed when dropped.
struct Child(#[allow(dead_code)] tokio::process::Child);

impl Child {
    fn start(python: &str, args: &[String]) -> Self {
        let child = tokio::process::Command::new(python)
            .args(args)
            .env("TZ", "UTC")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the test Python starts");
        Child(child)
    }
}

/// Waits until `url` answers 200.
async fn wait_for(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(response) = client.get(url).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

/// Polls until `done` holds, for at most `secs` seconds.
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A Flask-MonitoringDashboard app on a free port, with `seed` old requests recorded and
/// each export answer delayed by `delay_ms`.
async fn start_dashboard(
    python: &str,
    dir: &Path,
    token: &str,
    seed: usize,
    delay_ms: u64,
) -> (Child, u16) {
    let port = free_port();
    let child = Child::start(
        python,
        &[
            script("fmd_app.py"),
            port.to_string(),
            dir.join("fmd.db").display().to_string(),
            token.to_owned(),
            seed.to_string(),
            delay_ms.to_string(),
        ],
    );
    wait_for(&format!(
        "http://127.0.0.1:{port}/dashboard/get_json_details"
    ))
    .await;
    (child, port)
}

/// Every request the dashboard recorded, read from its export.
async fn dashboard_export(port: u16, token: &str) -> Vec<Value> {
    let text = reqwest::get(format!(
        "http://127.0.0.1:{port}/dashboard/get_json_data/0/4102444800"
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(
        text.trim(),
        &jsonwebtoken::DecodingKey::from_secret(token.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    serde_json::from_str(claims["data"].as_str().unwrap()).unwrap()
}

/// numpy's default percentile (linear between the closest ranks), as `/stats` computes it.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (sorted.len() - 1) as f64 * p / 100.0;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Where two instances (one after the other, or side by side) keep one database: a shared
/// data directory (and signing key), and on PostgreSQL one database.
struct Shared {
    dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
    url: Option<String>,
}

impl Shared {
    async fn new() -> Self {
        let (database, url) = if on_postgres() {
            let (database, url) = TestDatabase::create().await;
            (Some(database), Some(url))
        } else {
            (None, None)
        };
        Self {
            dir: tempfile::tempdir().unwrap(),
            _database: database,
            url,
        }
    }

    async fn instance(&self, metrics: Option<u16>) -> TestApp {
        let dir = self.dir.path().to_path_buf();
        let url = self.url.clone();
        spawn_app_with(move |s| {
            s.data_dir = dir;
            s.database.url = url;
            // Small windows, so that the history takes many fetches; a short timeout, so that
            // the lease of an instance that died lapses within seconds.
            s.sources.history_window_secs = 3_600;
            s.sources.fetch_timeout_secs = 1;
            s.metrics_listen = metrics.map(|port| format!("127.0.0.1:{port}"));
        })
        .await
    }
}

async fn source_state(app: &TestApp, token: &str, source_id: i64) -> Value {
    let reply = app
        .get(&format!("/api/v1/sources/{source_id}"), token)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()
}

/// A dashboard's history is loaded in windows; an instance killed halfway and two instances
/// taking over store every recorded request once (the dashboard's equal requests twice), while
/// new requests from several addresses keep arriving. The per-endpoint figures MyMonit serves
/// equal those computed from the dashboard's own export; bad sources are refused with reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dashboards_history_and_live_requests_are_stored_once_across_a_crash() {
    let Some(python) = python() else {
        return;
    };
    let token = "fmd-security-token";
    let fmd_dir = tempfile::tempdir().unwrap();
    let (_fmd, port) = start_dashboard(&python, fmd_dir.path(), token, 2_000, 150).await;
    let shared = Shared::new().await;
    let first = shared.instance(None).await;
    first.add_user("A001", "aalcorn", Role::Admin).await;
    first.add_user("S001", "phigg", Role::Scientist).await;
    first.add_user("S002", "kbouman", Role::Scientist).await;
    let experiment = first
        .state
        .meta
        .create_experiment("webapp")
        .await
        .unwrap()
        .experiment_id;
    let other = first
        .state
        .meta
        .create_experiment("elsewhere")
        .await
        .unwrap()
        .experiment_id;
    first
        .state
        .meta
        .associate(experiment, "S001")
        .await
        .unwrap();
    first.state.meta.associate(other, "S002").await.unwrap();
    let admin = first.token("aalcorn").await;
    let scientist = first.token("phigg").await;
    let dashboard = format!("http://127.0.0.1:{port}/dashboard");
    let attach = |url: String, secret: &str| {
        json!({"experiment_id": experiment, "kind": "fmd", "url": url, "secret": secret,
               "interval_secs": 1})
    };

    // Refused at creation, with the reason.
    let wrong_token = first
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&admin),
            Some(&attach(dashboard.clone(), "nope")),
        )
        .await;
    assert!(
        wrong_token.problem(422).contains("security_token"),
        "{}",
        wrong_token.text
    );
    let not_a_dashboard = first
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&admin),
            Some(&attach(format!("http://127.0.0.1:{port}/world"), token)),
        )
        .await;
    assert!(
        not_a_dashboard
            .problem(422)
            .contains("no Flask-MonitoringDashboard export"),
        "{}",
        not_a_dashboard.text
    );
    let some_page = first
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&admin),
            Some(&attach(format!("http://127.0.0.1:{port}/hello"), token)),
        )
        .await;
    assert!(
        some_page
            .problem(422)
            .contains("is not a Flask-MonitoringDashboard"),
        "{}",
        some_page.text
    );
    let nobody = first
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&admin),
            Some(&attach(
                format!("http://127.0.0.1:{}/dashboard", free_port()),
                token,
            )),
        )
        .await;
    assert!(
        nobody.problem(422).contains("cannot reach"),
        "{}",
        nobody.text
    );
    let by_scientist = first
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&scientist),
            Some(&attach(dashboard.clone(), token)),
        )
        .await;
    by_scientist.problem(403);

    let created = first
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&admin),
            Some(&attach(dashboard.clone(), token)),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let source = created.json();
    assert!(
        !created.text.contains(token),
        "the secret is never returned"
    );
    assert_eq!(source["has_secret"], true);
    assert_eq!(source["kind"], "fmd");
    let source_id = source["source_id"].as_i64().unwrap();

    // The audit trail names the change and hides the secret.
    let trail_store = first.state.audit_trail.clone();
    let trail = || async {
        trail_store
            .audit_records(&mymonit_store::AuditFilter {
                limit: 1_000,
                ..mymonit_store::AuditFilter::default()
            })
            .await
            .unwrap()
    };
    eventually(10, "the creation in the audit trail", || async {
        trail()
            .await
            .iter()
            .any(|r| r.event.action == "POST /api/v1/sources" && r.event.status == Some(201))
    })
    .await;
    let trail = trail().await;
    let attached = trail
        .iter()
        .find(|r| r.event.action == "POST /api/v1/sources" && r.event.status == Some(201))
        .unwrap();
    assert_eq!(attached.event.detail["changed"]["secret"], "***");
    assert!(!serde_json::to_string(&trail).unwrap().contains(token));

    // Kill the first instance halfway through the history.
    let store = first.state.sources.clone();
    eventually(60, "the history load to begin", || {
        let store = store.clone();
        async move {
            let now = store.get_source(source_id).await.unwrap().unwrap();
            now.points_fetched > 0 && now.backlog_secs > 0
        }
    })
    .await;
    let halfway = store.get_source(source_id).await.unwrap().unwrap();
    assert!(halfway.history_from.is_some());
    // Each export answer takes 150 ms: the stop most likely drops a fetch in flight, whose
    // lease then has to lapse before another instance takes the source.
    first.stop().await;

    // New requests from several addresses while two new instances take over.
    let mut live = 0;
    for n in 2..=5u8 {
        let client = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, n]))
            .build()
            .unwrap();
        for _ in 0..n {
            let reply = client
                .get(format!("http://127.0.0.1:{port}/hello/{n}"))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), StatusCode::OK);
            live += 1;
        }
    }
    let b = shared.instance(None).await;
    let c = shared.instance(None).await;
    let export = dashboard_export(port, token).await;
    // The seeded requests, ten of them twice, the live ones, and the check that asked
    // /hello/get_json_details (a page of the app, so a recorded request).
    assert_eq!(
        export.len(),
        2_000 + 10 + live + 1,
        "the dashboard's own count"
    );
    let measures = b.state.measures.clone();
    let expected = export.len() as u64;
    eventually(90, "every recorded request to be stored", || {
        let measures = measures.clone();
        async move { measures.count(experiment).await.unwrap() >= expected }
    })
    .await;
    // A few more fetches change nothing: each request is stored once.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(b.state.measures.count(experiment).await.unwrap(), expected);
    let status = source_state(&c, &scientist, source_id).await;
    assert_eq!(status["state"], "ok", "{status}");
    assert_eq!(status["backlog"], 0);
    assert_eq!(
        status["points_fetched"].as_u64().unwrap(),
        expected,
        "{status}"
    );

    // Per endpoint: visits, unique visitors and execution-time figures equal the export's.
    let mut by_endpoint: BTreeMap<String, (Vec<f64>, BTreeSet<String>)> = BTreeMap::new();
    let mut by_ip: BTreeMap<String, u64> = BTreeMap::new();
    for row in &export {
        let entry = by_endpoint
            .entry(row["endpoint"].as_str().unwrap().to_owned())
            .or_default();
        entry.0.push(row["execution_time"].as_f64().unwrap());
        entry.1.insert(row["ip"].as_str().unwrap().to_owned());
        *by_ip
            .entry(row["ip"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let stats = b
        .get(
            &format!(
                "/api/v1/experiments/{experiment}/stats?measure=execution_time&from=0\
                 &group_by=tag:endpoint&statistics=count,count_distinct:tag:ip,mean,p25,p50,p75,p90,p99,min,max"
            ),
            &scientist,
        )
        .await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.text);
    let buckets = stats.json()["buckets"].as_array().unwrap().clone();
    assert_eq!(buckets.len(), by_endpoint.len(), "{buckets:?}");
    for bucket in &buckets {
        let endpoint = bucket["group"].as_str().unwrap();
        let (values, ips) = &by_endpoint[endpoint];
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(bucket["count"], values.len(), "{endpoint}");
        assert_eq!(bucket["count_distinct:tag:ip"], ips.len(), "{endpoint}");
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!(
            close(bucket["mean"].as_f64().unwrap(), mean),
            "{endpoint} mean"
        );
        for p in [25, 50, 75, 90, 99] {
            let served = bucket[format!("p{p}")].as_f64().unwrap();
            assert!(
                close(served, percentile(&sorted, f64::from(p))),
                "{endpoint} p{p}: {served}"
            );
        }
        assert_eq!(bucket["min"].as_f64().unwrap(), sorted[0]);
        assert_eq!(bucket["max"].as_f64().unwrap(), sorted[sorted.len() - 1]);
    }
    // Visits per IP.
    let per_ip = c
        .get(
            &format!(
                "/api/v1/experiments/{experiment}/stats?measure=execution_time&from=0\
                 &group_by=tag:ip&statistics=count"
            ),
            &scientist,
        )
        .await
        .json();
    let served: BTreeMap<String, u64> = per_ip["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["group"].as_str().unwrap().to_owned(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(served, by_ip);
    // Filtered to the endpoints of interest; one box per endpoint.
    let only_hello = urlencode(r#"{"endpoint":["hello"]}"#);
    let filtered = c
        .get(
            &format!(
                "/api/v1/experiments/{experiment}/boxplot?measure=execution_time&from=0\
                 &group_by=tag:endpoint&tags={only_hello}"
            ),
            &scientist,
        )
        .await;
    assert_eq!(filtered.status, StatusCode::OK, "{}", filtered.text);
    let boxes = filtered.json()["boxes"].as_array().unwrap().clone();
    assert_eq!(boxes.len(), 1, "{boxes:?}");
    assert_eq!(boxes[0]["group"], "hello");
    assert_eq!(boxes[0]["count"], by_endpoint["hello"].0.len());

    // Who sees what: the scientist sees the source of their experiment, not others'.
    let listed = c.get("/api/v1/sources", &scientist).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let outsider = c.token("kbouman").await;
    assert_eq!(c.get("/api/v1/sources", &outsider).await.json(), json!([]));
    c.get(&format!("/api/v1/sources/{source_id}"), &outsider)
        .await
        .problem(403);
    // Disabled, it is not fetched; deleted, its points stay.
    let disabled = c
        .call(
            Method::PATCH,
            &format!("/api/v1/sources/{source_id}"),
            Some(&admin),
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(disabled.json()["state"], "disabled", "{}", disabled.text);
    let deleted = c
        .call(
            Method::DELETE,
            &format!("/api/v1/sources/{source_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(c.state.measures.count(experiment).await.unwrap(), expected);
}

/// A `prometheus_client` service and MyMonit's own metrics page are scraped into an
/// experiment that creates its types; a page that goes away shows the error and recovers;
/// pages pushed to the ingest endpoint are read the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_pages_are_scraped_and_a_source_recovers_when_its_target_returns() {
    let Some(python) = python() else {
        return;
    };
    let shared = Shared::new().await;
    let metrics_port = free_port();
    let app = shared.instance(Some(metrics_port)).await;
    app.add_user("A001", "aalcorn", Role::Admin).await;
    app.add_user("S001", "phigg", Role::Scientist).await;
    let meta = app.state.meta.clone();
    let experiment = meta
        .create_experiment("services")
        .await
        .unwrap()
        .experiment_id;
    meta.associate(experiment, "S001").await.unwrap();
    meta.set_creates_measure_types(experiment, true)
        .await
        .unwrap();
    let admin = app.token("aalcorn").await;
    let scientist = app.token("phigg").await;
    let port = free_port();
    let service = Child::start(&python, &[script("prometheus_app.py"), port.to_string()]);
    let page = format!("http://127.0.0.1:{port}/metrics");
    wait_for(&page).await;

    // Not a metrics page: refused, with the reason.
    let json_page = app
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&admin),
            Some(&json!({"experiment_id": experiment, "kind": "prometheus",
                         "url": app.url("/api/v1/openapi.json")})),
        )
        .await;
    assert!(
        json_page
            .problem(422)
            .contains("not a Prometheus metrics page"),
        "{}",
        json_page.text
    );
    let created = app
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&admin),
            Some(
                &json!({"experiment_id": experiment, "kind": "prometheus", "url": page,
                         "interval_secs": 1}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let source_id = created.json()["source_id"].as_i64().unwrap();
    let own = app
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&admin),
            Some(&json!({"experiment_id": experiment, "kind": "prometheus",
                         "url": format!("http://127.0.0.1:{metrics_port}/metrics"),
                         "include": "^mymonit_http_requests", "interval_secs": 1})),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);

    // Counters, gauges, histograms (as their series) and the own page arrive, by name.
    let latest = || async {
        app.get(
            &format!("/api/v1/experiments/{experiment}/latest"),
            &scientist,
        )
        .await
        .json()["latest"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    eventually(30, "scraped series", || async {
        let names: BTreeSet<String> = latest()
            .await
            .iter()
            .map(|p| p["measure_type"].as_str().unwrap().to_owned())
            .collect();
        [
            "app_requests_total",
            "app_temperature_celsius",
            "app_latency_seconds_bucket",
            "app_latency_seconds_count",
            "app_response_bytes_sum",
            "mymonit_http_requests_total",
        ]
        .iter()
        .all(|name| names.contains(*name))
    })
    .await;
    let points = latest().await;
    let find = |name: &str, tag: (&str, &str)| {
        points
            .iter()
            .find(|p| p["measure_type"] == name && p["tags"][tag.0] == tag.1)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} with {tag:?} in {points:?}"))
    };
    assert_eq!(
        find(
            "app_temperature_celsius",
            ("instance", &format!("127.0.0.1:{port}"))
        )["value"],
        21.5
    );
    let get_200 = find("app_requests_total", ("method", "get"));
    assert_eq!(get_200["tags"]["code"], "200");
    let all_below = find("app_latency_seconds_bucket", ("le", "+Inf"));
    let below_tenth = find("app_latency_seconds_bucket", ("le", "0.1"));
    // Two of every four observations are under 0.1 s.
    assert_eq!(
        below_tenth["value"].as_f64().unwrap() * 2.0,
        all_below["value"].as_f64().unwrap()
    );
    let own_instance = format!("127.0.0.1:{metrics_port}");
    assert!(
        points
            .iter()
            .filter(|p| p["tags"]["instance"] == own_instance.as_str())
            .all(|p| p["measure_type"]
                .as_str()
                .unwrap()
                .starts_with("mymonit_http_requests")),
        "the include filter keeps only the metrics it names"
    );
    eventually(30, "a second scrape", || async {
        let counted = app
            .get(
                &format!(
                    "/api/v1/experiments/{experiment}/stats?measure=app_temperature_celsius&from=0"
                ),
                &scientist,
            )
            .await
            .json();
        counted["buckets"][0]["count"].as_u64().unwrap_or(0) >= 2
    })
    .await;

    // The target goes away: the source fails with the reason, and recovers when it is back.
    drop(service);
    eventually(30, "the source to fail", || async {
        let state = source_state(&app, &admin, source_id).await;
        state["state"] == "failing"
            && state["last_error"]
                .as_str()
                .unwrap_or("")
                .contains("cannot reach")
    })
    .await;
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failing_line = metrics
        .lines()
        .find(|line| {
            line.starts_with("mymonit_source_consecutive_failures{")
                && line.contains(&format!("source_id=\"{source_id}\""))
        })
        .unwrap_or_else(|| panic!("no failure gauge in {metrics}"));
    assert!(!failing_line.ends_with(" 0"), "{failing_line}");
    let _service = Child::start(&python, &[script("prometheus_app.py"), port.to_string()]);
    eventually(40, "the source to recover", || async {
        let state = source_state(&app, &admin, source_id).await;
        state["state"] == "ok" && state["failures"] == 0
    })
    .await;

    // The same format pushed to the ingest endpoint.
    let secret = mymonit_server::ingest::tokens::create(
        app.state.meta.as_ref(),
        &["services".to_owned()],
        "push",
        None,
    )
    .await
    .unwrap()
    .1
    .into_inner();
    let pushed = app
        .raw(
            Method::POST,
            "/api/v1/ingest?experiment=services",
            Some(&secret),
            Some("text/plain; version=0.0.4"),
            b"# TYPE pushed_jobs gauge\npushed_jobs{queue=\"a\"} 3 1700000000000\npushed_jobs{queue=\"b\"} 4\nbad line\n"
                .to_vec(),
        )
        .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.text);
    let outcome = pushed.json();
    assert_eq!(outcome["accepted"], 2, "{outcome}");
    assert_eq!(outcome["rejected_count"], 1, "{outcome}");
}
