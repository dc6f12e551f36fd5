//! InfluxQL answers compared with a real InfluxDB 1.x: the same points (the benchmark
//! generator's, plus tagged series with gaps and several fields) go into a private `influxd`
//! and into MyMonit through their `/write`, then a corpus of the queries Grafana generates
//! runs against both: same series, same tags, same columns, same times, values equal to
//! 1e-9 relative.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{World, free_port, program_available, urlencode, world},
    ingest::create_token,
};

/// A private InfluxDB on loopback, stopped (by its PID) when dropped.
struct Influxd {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Influxd {
    async fn start() -> Option<Self> {
        let found = Command::new("influxd")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !program_available("influxd", found) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (port, bind_port) = (free_port(), free_port());
        let path = |name: &str| dir.path().join(name).display().to_string();
        let config = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{bind_port}\"\n\
             [meta]\n  dir = \"{}\"\n[data]\n  dir = \"{}\"\n  wal-dir = \"{}\"\n  query-log-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
             [monitor]\n  store-enabled = false\n",
            path("meta"),
            path("data"),
            path("wal")
        );
        std::fs::write(dir.path().join("influxdb.conf"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("influxd.log")).unwrap();
        let child = Command::new("influxd")
            .arg("-config")
            .arg(dir.path().join("influxdb.conf"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let influxd = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(reply) = client.get(format!("{}/ping", influxd.url)).send().await
                && reply.status() == StatusCode::NO_CONTENT
            {
                return Some(influxd);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log =
            std::fs::read_to_string(influxd._dir.path().join("influxd.log")).unwrap_or_default();
        panic!("influxd did not start:\n{log}");
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 2024-03-29T00:00:00Z: the data spans the night Zurich moves to summer time.
const T0: i64 = 1_711_670_400;
const DAY: i64 = 86_400;

/// A small deterministic generator (64-bit LCG), so that both systems get the same values.
struct Values(u64);

impl Values {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) % 100_000) as f64 / 1_000.0
    }
}

/// The points: the benchmark generator's (4 types as tag `type` of the measurement
/// `measurement`), `hertz` with three hosts (host b has a three-hour gap) and `cpu` with two
/// fields (`usage_system` missing now and then). No two points of one measurement share a
/// time, so `first` and `last` have no ties to break.
fn lines(generator: &Path) -> Vec<String> {
    let generated = Command::new("python3")
        .arg(generator)
        .args(["--n", "20000", "--format", "lp"])
        .output()
        .expect("python3 runs the benchmark generator");
    assert!(generated.status.success(), "gen.py failed");
    let mut lines: Vec<String> = String::from_utf8(generated.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            // Seconds → nanoseconds, as the rest.
            let (head, seconds) = line.rsplit_once(' ').unwrap();
            format!("{head} {seconds}000000000")
        })
        .collect();
    let mut values = Values(42);
    for (index, host) in ["a", "b", "c"].iter().enumerate() {
        let mut t = T0 * 1_000_000_000 + index as i64 * 1_000_000;
        while t < (T0 + 3 * DAY) * 1_000_000_000 {
            let gap = *host == "b"
                && (T0 + DAY + 3_600..T0 + DAY + 4 * 3_600).contains(&(t / 1_000_000_000));
            let value = values.next();
            if !gap {
                lines.push(format!(
                    "hertz,host={host},rack=r{} value={value} {t}",
                    index % 2
                ));
            }
            t += 30_000_000_000;
        }
    }
    for (index, host) in ["a", "b"].iter().enumerate() {
        let mut t = T0 * 1_000_000_000 + 500_000_000 + index as i64 * 1_000_000;
        let mut n = 0;
        while t < (T0 + 2 * DAY) * 1_000_000_000 {
            let (user, system) = (values.next(), values.next());
            n += 1;
            if n % 7 == 0 {
                lines.push(format!("cpu,host={host} usage_user={user} {t}"));
            } else {
                lines.push(format!(
                    "cpu,host={host} usage_user={user},usage_system={system} {t}"
                ));
            }
            t += 120_000_000_000;
        }
    }
    lines
}

fn ms(seconds: i64) -> String {
    format!("{}ms", seconds * 1000)
}

/// The corpus: the shapes Grafana's query editor and dashboards send.
fn corpus() -> Vec<String> {
    let (from, to) = (ms(T0 + 6 * 3_600), ms(T0 + 30 * 3_600));
    let range = format!("time >= {from} and time <= {to}");
    let gen_range = "time >= 1704067200000ms and time <= 1704070800000ms";
    let mut queries = Vec::new();
    for function in [
        "mean", "median", "count", "min", "max", "sum", "stddev", "spread", "first", "last",
    ] {
        queries.push(format!(
            "SELECT {function}(\"value\") FROM \"hertz\" WHERE {range} GROUP BY time(1h) fill(null)"
        ));
    }
    for p in ["95", "50", "5", "99.9"] {
        queries.push(format!(
            "SELECT percentile(\"value\", {p}) FROM \"hertz\" WHERE (\"host\" = 'a') AND {range} GROUP BY time(30m) fill(null)"
        ));
    }
    // Every fill, over host b's gap.
    let gap = format!(
        "time >= {} and time <= {}",
        ms(T0 + DAY),
        ms(T0 + DAY + 6 * 3_600)
    );
    for fill in ["null", "none", "previous", "linear", "0", "-1.5"] {
        queries.push(format!(
            "SELECT mean(\"value\") FROM \"hertz\" WHERE \"host\" = 'b' AND {gap} GROUP BY time(20m) fill({fill})"
        ));
        queries.push(format!(
            "SELECT count(\"value\") FROM \"hertz\" WHERE \"host\" = 'b' AND {gap} GROUP BY time(20m) fill({fill})"
        ));
    }
    // Group-by forms.
    queries.extend([
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE {range} GROUP BY time(1h), \"host\" fill(null)"),
        format!("SELECT max(\"value\") FROM \"hertz\" WHERE {range} GROUP BY time(2h), \"host\"::tag, \"rack\" fill(none)"),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE {range} GROUP BY time(1h), * fill(null)"),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE {range} GROUP BY time(1h, 15m) fill(null)"),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE {range} GROUP BY time(7m) fill(none) LIMIT 20"),
        format!("SELECT sum(\"value\") FROM \"hertz\" WHERE {range} GROUP BY \"host\""),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE time >= {} and time < {} GROUP BY time(1d) fill(null) tz('Europe/Zurich')", ms(T0), ms(T0 + 3 * DAY)),
        format!("SELECT count(\"value\") FROM \"hertz\" WHERE time >= {} and time < {} GROUP BY time(6h), \"host\" fill(0) tz('America/New_York')", ms(T0), ms(T0 + 3 * DAY)),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE time <= {} GROUP BY time(1d) fill(null)", ms(T0 + 3 * DAY)),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE {range} GROUP BY time(1h) ORDER BY time DESC LIMIT 5"),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE {range} GROUP BY time(1h), \"host\" fill(null) LIMIT 3 OFFSET 2 SLIMIT 2 SOFFSET 1"),
    ]);
    // Time forms and tag conditions.
    queries.extend([
        "SELECT mean(\"value\") FROM \"hertz\" WHERE time >= '2024-03-29T06:00:00Z' AND time < '2024-03-29T12:00:00Z' GROUP BY time(1h)".to_owned(),
        "SELECT count(\"value\") FROM \"hertz\" WHERE time >= '2024-03-30' AND time < '2024-03-31' GROUP BY time(6h)".to_owned(),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE time > {}000000000 AND time <= {}000000000 GROUP BY time(10m)", T0 + 3_600, T0 + 7_200),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE time > {}s - 1h AND time < {}s GROUP BY time(15m)", T0 + 7_200, T0 + 7_200),
        "SELECT mean(\"value\") FROM \"hertz\" WHERE time > now() - 1h GROUP BY time(1m) fill(null)".to_owned(),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE time >= {} AND time <= {} GROUP BY time(1m)", ms(T0 - DAY), ms(T0 - DAY + 3_600)),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE \"host\" != 'a' AND {range} GROUP BY time(3h), \"host\""),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE \"host\" =~ /^(a|c)$/ AND {range} GROUP BY time(3h), \"host\""),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE \"host\" !~ /a/ AND {range} GROUP BY time(3h)"),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE (\"host\" = 'a' OR \"rack\" = 'r1') AND {range} GROUP BY time(3h), \"host\""),
        format!("SELECT mean(\"value\") FROM \"hertz\" WHERE \"host\" = 'nobody' AND {range} GROUP BY time(3h)"),
        format!("SELECT mean(\"value\") FROM \"nothing\" WHERE {range} GROUP BY time(3h)"),
        format!("SELECT mean(\"nothing\") FROM \"hertz\" WHERE {range} GROUP BY time(3h)"),
    ]);
    // Several fields, arithmetic, aliases, the generator's data.
    queries.extend([
        format!("SELECT mean(\"usage_user\"), max(\"usage_system\") FROM \"cpu\" WHERE {range} GROUP BY time(2h), \"host\""),
        format!("SELECT mean(\"usage_user\") * 2 + 1 AS doubled, count(\"usage_system\") / 3 FROM \"cpu\" WHERE {range} GROUP BY time(4h)"),
        format!("SELECT max(\"value\") - min(\"value\") AS range, spread(\"value\") FROM \"hertz\" WHERE {range} GROUP BY time(4h)"),
        format!("SELECT mean(\"value\"), mean(\"value\") FROM \"hertz\" WHERE {range} GROUP BY time(4h)"),
        format!("SELECT mean(\"value\") FROM \"measurement\" WHERE \"type\" = 'hertz' AND {gen_range} GROUP BY time(5m) fill(null)"),
        format!("SELECT percentile(\"value\", 99) FROM \"measurement\" WHERE \"type\" = 'volt' AND {gen_range} GROUP BY time(10m)"),
        format!("SELECT mean(\"value\") FROM \"measurement\" WHERE {gen_range} GROUP BY time(15m), \"type\""),
        format!("SELECT last(\"value\") FROM \"measurement\" WHERE {gen_range} GROUP BY \"type\""),
    ]);
    // Without GROUP BY time: a selector alone reports its point's time, the rest the start.
    queries.extend([
        format!("SELECT max(\"value\") FROM \"hertz\" WHERE {range}"),
        format!("SELECT min(\"value\") FROM \"hertz\" WHERE \"host\" = 'c' AND {range}"),
        format!("SELECT first(\"value\") FROM \"hertz\" WHERE {range} GROUP BY \"host\""),
        format!("SELECT last(\"value\") FROM \"hertz\" WHERE {range}"),
        format!("SELECT percentile(\"value\", 90) FROM \"hertz\" WHERE {range}"),
        format!("SELECT mean(\"value\"), count(\"value\") FROM \"hertz\" WHERE {range}"),
        format!("SELECT max(\"value\"), min(\"value\") FROM \"hertz\" WHERE {range}"),
        "SELECT count(\"value\") FROM \"hertz\"".to_owned(),
        "SELECT stddev(\"value\") FROM \"hertz\" WHERE \"host\" = 'a'".to_owned(),
    ]);
    // Raw points.
    let hour = format!(
        "time >= {} and time < {}",
        ms(T0 + 3_600),
        ms(T0 + 2 * 3_600)
    );
    queries.extend([
        format!("SELECT \"value\" FROM \"hertz\" WHERE \"host\" = 'a' AND {hour}"),
        format!("SELECT \"value\" FROM \"hertz\" WHERE {hour} ORDER BY time DESC LIMIT 7"),
        format!("SELECT \"value\" FROM \"hertz\" WHERE {hour} GROUP BY \"host\" LIMIT 3 OFFSET 1"),
        format!("SELECT \"value\" * 10 AS tenfold, \"host\" FROM \"hertz\" WHERE {hour} LIMIT 10"),
        format!("SELECT \"usage_user\", \"usage_system\" FROM \"cpu\" WHERE {range} LIMIT 40"),
        format!("SELECT * FROM \"cpu\" WHERE {range} LIMIT 20"),
        format!("SELECT * FROM \"cpu\" WHERE {range} GROUP BY * LIMIT 5"),
        format!(
            "SELECT \"value\" FROM \"hertz\" WHERE {hour} GROUP BY \"host\" SLIMIT 1 SOFFSET 1"
        ),
    ]);
    // What the editor asks for its menus.
    queries.extend([
        "SHOW MEASUREMENTS".to_owned(),
        "SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)HER/ LIMIT 100".to_owned(),
        "SHOW MEASUREMENTS WHERE \"host\" = 'b'".to_owned(),
        "SHOW FIELD KEYS FROM \"cpu\"".to_owned(),
        "SHOW FIELD KEYS".to_owned(),
        "SHOW TAG KEYS FROM \"hertz\"".to_owned(),
        "SHOW TAG KEYS".to_owned(),
        "SHOW TAG VALUES FROM \"hertz\" WITH KEY = \"host\"".to_owned(),
        "SHOW TAG VALUES FROM \"hertz\" WITH KEY = \"host\" WHERE \"rack\" = 'r0'".to_owned(),
        "SHOW TAG VALUES WITH KEY =~ /host|type/".to_owned(),
        "SHOW RETENTION POLICIES ON \"lab\"".to_owned(),
    ]);
    queries
}

/// `a` and `b` agree: the same keys and strings, numbers equal to 1e-9 relative.
fn same(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            if (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) {
                Ok(())
            } else {
                Err(format!("{path}: {x} against {y}"))
            }
        }
        (Value::Array(xs), Value::Array(ys)) => {
            if xs.len() != ys.len() {
                return Err(format!("{path}: {} items against {}", xs.len(), ys.len()));
            }
            for (index, (x, y)) in xs.iter().zip(ys).enumerate() {
                same(x, y, &format!("{path}[{index}]"))?;
            }
            Ok(())
        }
        (Value::Object(xs), Value::Object(ys)) => {
            let keys: std::collections::BTreeSet<&String> = xs.keys().chain(ys.keys()).collect();
            for key in keys {
                // Error texts are our own; whether there is one must agree.
                if key == "error" {
                    if xs.contains_key(key) != ys.contains_key(key) {
                        return Err(format!(
                            "{path}.error: {:?} against {:?}",
                            xs.get(key),
                            ys.get(key)
                        ));
                    }
                    continue;
                }
                same(
                    xs.get(key).unwrap_or(&Value::Null),
                    ys.get(key).unwrap_or(&Value::Null),
                    &format!("{path}.{key}"),
                )?;
            }
            Ok(())
        }
        (x, y) if x == y => Ok(()),
        (x, y) => Err(format!("{path}: {x} against {y}")),
    }
}

async fn write(client: &reqwest::Client, url: &str, authorization: Option<&str>, lines: &[String]) {
    for batch in lines.chunks(5_000) {
        let mut request = client.post(url).body(batch.join("\n"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let reply = request.send().await.unwrap();
        let status = reply.status();
        assert_eq!(
            status,
            StatusCode::NO_CONTENT,
            "{url}: {}",
            reply.text().await.unwrap_or_default()
        );
    }
}

async fn query(
    client: &reqwest::Client,
    base: &str,
    authorization: Option<&str>,
    q: &str,
    epoch: Option<&str>,
) -> Value {
    let mut url = format!("{base}/query?db=lab&q={}", urlencode(q));
    if let Some(epoch) = epoch {
        url.push_str(&format!("&epoch={epoch}"));
    }
    let mut request = client.get(url);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status();
    let body: Value = reply.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "{q}: {body}");
    body
}

/// A world with the experiment `lab`, whose scientist is phigg, that creates the types written
/// to it; returns the Basic credentials of a personal access token and an ingest token.
async fn lab(world: &World) -> (String, String) {
    let meta = &world.app.state.meta;
    let lab = meta.create_experiment("lab").await.unwrap().experiment_id;
    meta.associate(lab, "S001").await.unwrap();
    meta.set_creates_measure_types(lab, true).await.unwrap();
    let (_, ingest) = create_token(world, &["lab"]).await;
    let reply = world
        .app
        .call(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(&world.scientist),
            Some(&json!({"name": "grafana"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let secret = reply.json()["secret"].as_str().unwrap().to_owned();
    (
        format!("Basic {}", STANDARD.encode(format!("phigg:{secret}"))),
        format!("Token {ingest}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxql_answers_equal_influxdbs() {
    let Some(influxd) = Influxd::start().await else {
        return;
    };
    let world = world().await;
    let (reader, writer) = lab(&world).await;
    let client = reqwest::Client::new();
    let generator = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/gen.py");
    let lines = lines(&generator);
    let reply = client
        .post(format!("{}/query", influxd.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("q=CREATE+DATABASE+lab")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    write(
        &client,
        &format!("{}/write?db=lab", influxd.url),
        None,
        &lines,
    )
    .await;
    write(
        &client,
        &world.app.url("/write?db=lab"),
        Some(&writer),
        &lines,
    )
    .await;

    let corpus = corpus();
    assert!(corpus.len() >= 60, "{} queries", corpus.len());
    let mut failures = Vec::new();
    for (index, q) in corpus.iter().enumerate() {
        // Most in Grafana's epoch=ms; every fourth in RFC 3339, as other clients read times.
        let epoch = if index % 4 == 3 { None } else { Some("ms") };
        let theirs = query(&client, &influxd.url, None, q, epoch).await;
        let ours = query(&client, &world.app.url(""), Some(&reader), q, epoch).await;
        if theirs["results"][0].get("error").is_some() {
            failures.push(format!("InfluxDB refused {q}: {theirs}"));
            continue;
        }
        if let Err(difference) = same(&ours, &theirs, "") {
            failures.push(format!(
                "{q}\n  {difference}\n  ours:   {}\n  theirs: {}",
                short(&ours),
                short(&theirs)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ from InfluxDB:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    drop(influxd);
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 600 {
        format!("{}…", &text[..600])
    } else {
        text
    }
}
