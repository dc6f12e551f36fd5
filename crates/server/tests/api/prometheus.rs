//! A real Prometheus (the Debian package) scrapes the server: `up` is 1, an ingest counter
//! moves, and the alert rules of `deploy/prometheus` load. `promtool` checks the deployment
//! files. Each test run starts its own Prometheus on loopback and stops it by PID.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    helpers::{free_port, program_available, world_with},
    ingest::{create_token, push},
};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/prometheus");

/// Whether `prometheus` is installed; outside CI its absence skips the test, in CI it fails.
fn prometheus_available() -> bool {
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    program_available("prometheus", found)
}

/// A Prometheus of the test's own, killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
                 rule_files: ['{DEPLOY}/alerts.yml']\n\
                 scrape_configs:\n  - job_name: mymonit\n    static_configs: [ {{ targets: ['{target}'] }} ]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let reply = reqwest::get(format!("{}{path}", self.base)).await.ok()?;
        reply.json().await.ok()
    }

    /// The first value of an instant query, once there is one.
    async fn value(&self, query: &str) -> Option<f64> {
        let answer = self
            .get(&format!("/api/v1/query?query={}", urlencode(query)))
            .await?;
        answer["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    }

    /// Waits (up to 60 s) until `query` gives `wanted`.
    async fn wait_for(&self, query: &str, wanted: f64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let value = self.value(query).await;
            if value == Some(wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{query} is {value:?}, not {wanted}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_server_and_loads_the_rules() {
    if !prometheus_available() {
        return;
    }
    for check in [["config", "prometheus.yml"], ["rules", "alerts.yml"]] {
        let output = Command::new("promtool")
            .args(["check", check[0], &format!("{DEPLOY}/{}", check[1])])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "promtool check {} failed: {}{}",
            check[0],
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let metrics_port = free_port();
    let world = world_with(|s| s.metrics_listen = Some(format!("127.0.0.1:{metrics_port}"))).await;
    let prometheus = Prometheus::start(&format!("127.0.0.1:{metrics_port}"));
    prometheus.wait_for("up{job=\"mymonit\"}", 1.0).await;

    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let lines: String = (0..5)
        .map(|i| format!("{{\"experiment\":\"device-vibrations\",\"measure\":\"volt\",\"value\":{i},\"timestamp\":{}}}\n", 1_653_040_000 + i))
        .collect();
    push(&world, &secret, "", "application/x-ndjson", &lines).await;
    prometheus
        .wait_for("sum(mymonit_measures_accepted_total{job=\"mymonit\"})", 5.0)
        .await;

    let rules = prometheus.get("/api/v1/rules").await.unwrap();
    let loaded = rules["data"]["groups"][0]["rules"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(loaded, 8, "{rules}");
}
