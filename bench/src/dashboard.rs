//! A Grafana dashboard's load on the InfluxDB-compatible API, MyMonit against InfluxDB 1.6 in
//! one run: the shared benchmark's 10 M points (`gen.py --seed 42`, 4 types × 2.5 M, one a
//! second; each type its own measurement with the field `value`) go into both through their
//! `/write`, then 10 panel queries, `mean` or `percentile` `GROUP BY time(1m)` over the last
//! 24 hours or 7 days of the data, run as Grafana sends them (`GET /query?epoch=ms`, Basic
//! credentials), alternating between the two systems. Each panel's answers are compared (same
//! rows, values to 1e-9) and its medians of `--runs` runs after a warm-up are printed with the
//! ratio; JSON results go to `--out`.

use std::path::PathBuf;

use anyhow::Context;
use base64::Engine as _;
use clap::Parser;
use serde_json::{Value, json};

use mymonit_bench::{PASSWORD, Server, generate, influx_query as query, login, median, write_all};

#[derive(Parser)]
struct Args {
    /// The mymonit binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/mymonit")]
    mymonit: PathBuf,
    /// The data generator.
    #[arg(long, default_value = "../shared/bench/gen.py")]
    generator: PathBuf,
    /// Points to load.
    #[arg(long, default_value_t = 10_000_000)]
    points: usize,
    /// Timed runs per panel (after one warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// InfluxDB 1.x to compare with (bench/run starts a private one).
    #[arg(long, env = "BENCH_INFLUXDB_URL")]
    influxdb_url: String,
    /// Where to write the results.
    #[arg(long, default_value = "bench/results/dashboard.json")]
    out: PathBuf,
}

/// The generator's first second (2024-01-01T00:00:00Z) and its number of types.
const START: i64 = 1_704_067_200;
const TYPES: usize = 4;
/// One panel: its name and its query over `[from, to]` (milliseconds).
fn panels(end_ms: i64) -> Vec<(String, String)> {
    let day = 86_400_000;
    let mut out = Vec::new();
    for (span, label) in [(day, "24h"), (7 * day, "7d")] {
        let filter = format!("time >= {}ms and time <= {end_ms}ms", end_ms - span);
        let mut add = |what: &str, measurement: &str| {
            out.push((
                format!("{label} {what} {measurement}"),
                format!(
                    "SELECT {what}(\"value\"{}) FROM \"{measurement}\" WHERE {filter} GROUP BY time(1m) fill(null)",
                    if what == "percentile" { ", 95" } else { "" }
                ),
            ));
        };
        for measurement in ["hertz", "volt", "pascal"] {
            add("mean", measurement);
        }
        add("percentile", "hertz");
        add("percentile", "celsius");
    }
    out
}

/// Whether two answers hold the same rows (values to 1e-9 relative).
fn same_rows(ours: &Value, theirs: &Value) -> bool {
    let rows = |answer: &Value| answer["results"][0]["series"][0]["values"].clone();
    let (ours, theirs) = (rows(ours), rows(theirs));
    let (Some(ours), Some(theirs)) = (ours.as_array(), theirs.as_array()) else {
        return false;
    };
    ours.len() == theirs.len()
        && ours.iter().zip(theirs).all(|(a, b)| {
            a[0] == b[0]
                && match (a[1].as_f64(), b[1].as_f64()) {
                    (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                    (None, None) => true,
                    _ => false,
                }
        })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::new();
    let lines: Vec<String> = generate(&args.generator, args.points, "lp")?
        .into_iter()
        .map(|line| {
            // `measurement,experiment_id=1,type=volt value=… SECONDS` → `volt value=… SECONDS`.
            let (series, rest) = line.split_once(' ').unwrap_or((&line, ""));
            let measurement = series.rsplit_once("type=").map_or(series, |(_, t)| t);
            format!("{measurement} {rest}")
        })
        .collect();
    let seconds = args.points.div_ceil(TYPES) as i64;
    let end_ms = (START + seconds - 1) * 1000;

    let server = Server::start(&args.mymonit, None, None).await?;
    let admin = login(&server.base, "bench").await?;
    client
        .put(format!(
            "{}/api/v1/experiments/1/ingest-settings",
            server.base
        ))
        .bearer_auth(&admin)
        .json(&json!({"create_measure_types": true}))
        .send()
        .await?
        .error_for_status()?;
    client
        .post(format!("{}/api/v1/users", server.base))
        .bearer_auth(&admin)
        .json(
            &json!({"user_id": "S900", "name": "Bench Scientist", "username": "scientist",
            "email": "scientist@home.cern", "role": "SCIENTIST", "password": PASSWORD}),
        )
        .send()
        .await?
        .error_for_status()?;
    client
        .post(format!("{}/api/v1/associations", server.base))
        .bearer_auth(&admin)
        .json(&json!({"experiment_id": 1, "user_id": "S900"}))
        .send()
        .await?
        .error_for_status()?;
    let scientist = login(&server.base, "scientist").await?;
    let created: Value = client
        .post(format!("{}/api/v1/auth/tokens", server.base))
        .bearer_auth(&scientist)
        .json(&json!({"name": "grafana"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let secret = created["secret"].as_str().context("no token secret")?;
    let reader = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("scientist:{secret}"))
    );
    let writer = format!("Token {}", server.token);

    eprintln!("loading {} points into MyMonit…", lines.len());
    let ours_rate = write_all(
        &client,
        &format!("{}/write?db=bench&precision=s", server.base),
        Some(&writer),
        &lines,
    )
    .await?;
    let store = server.store().await?;
    while store.pending_compaction().await? > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    store.close().await;
    eprintln!("loading {} points into InfluxDB…", lines.len());
    client
        .post(format!("{}/query", args.influxdb_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("q=CREATE+DATABASE+bench")
        .send()
        .await?
        .error_for_status()?;
    let theirs_rate = write_all(
        &client,
        &format!("{}/write?db=bench&precision=s", args.influxdb_url),
        None,
        &lines,
    )
    .await?;
    drop(lines);

    println!("| panel | MyMonit ms | InfluxDB 1.6 ms | InfluxDB / MyMonit | rows | same answer |");
    println!("|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for (name, q) in panels(end_ms) {
        // Warm-up, and the answers compared.
        let (_, ours) = query(&client, &server.base, Some(&reader), &q).await?;
        let (_, theirs) = query(&client, &args.influxdb_url, None, &q).await?;
        let same = same_rows(&ours, &theirs);
        let rows = ours["results"][0]["series"][0]["values"]
            .as_array()
            .map_or(0, Vec::len);
        let (mut ours_ms, mut theirs_ms) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            ours_ms.push(query(&client, &server.base, Some(&reader), &q).await?.0);
            theirs_ms.push(query(&client, &args.influxdb_url, None, &q).await?.0);
        }
        let (ours_median, theirs_median) = (median(&ours_ms), median(&theirs_ms));
        let ratio = theirs_median / ours_median;
        println!(
            "| {name} | {ours_median:.1} | {theirs_median:.1} | {ratio:.1}× | {rows} | {} |",
            if same { "yes" } else { "NO" }
        );
        results.push(json!({
            "panel": name, "query": q, "mymonit_ms": ours_median, "influxdb_ms": theirs_median,
            "ratio": ratio, "rows": rows, "same_answer": same,
            "mymonit_runs_ms": ours_ms, "influxdb_runs_ms": theirs_ms,
        }));
    }
    let (_, data) = server.stop();
    drop(data);
    let summary = json!({
        "points": args.points,
        "runs": args.runs,
        "load_points_per_s": {"mymonit": ours_rate, "influxdb": theirs_rate},
        "panels": results,
    });
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&summary)?)?;
    println!(
        "\nloaded at {ours_rate:.0} points/s (MyMonit) and {theirs_rate:.0} points/s (InfluxDB); results in {}",
        args.out.display()
    );
    Ok(())
}
