//! Ingest throughput, end to end: measures published → durable → visible in the store, for
//! (a) AMQP with one measure per message (the original format), (b) AMQP with 1,000 measures
//! per message, (c) HTTP NDJSON batches of 5,000 and (c-lp) the same points as line protocol;
//! and, with `--influxdb-url`, (influx) InfluxDB 1.6 taking the same points as its own line
//! protocol, side by side: the runs of all scenarios take turns, so that load from other work
//! falls on them alike. Data: `gen.py --seed 42` from the shared benchmark kit. Each run
//! starts a fresh server on a fresh data directory (InfluxDB: a fresh database); the table
//! shows medians, the JSON file every run.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Instant,
};

use anyhow::bail;
use clap::Parser;
use lapin::{
    BasicProperties, Connection, ConnectionProperties, ExchangeKind,
    options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions},
    types::FieldTable,
};
use serde_json::json;

use mymonit_bench::{Server, generate, median};

#[derive(Parser)]
struct Args {
    /// The mymonit binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/mymonit")]
    mymonit: PathBuf,
    /// The data generator.
    #[arg(long, default_value = "../shared/bench/gen.py")]
    generator: PathBuf,
    /// Points for the HTTP scenarios and (b).
    #[arg(long, default_value_t = 1_000_000)]
    points: usize,
    /// Messages for scenario (a).
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Runs per scenario.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Concurrent HTTP writers.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Broker for (a) and (b); without it they are skipped.
    #[arg(long, env = "MYMONIT_TEST_AMQP_URL")]
    amqp_url: Option<String>,
    /// An InfluxDB 1.x to compare with (`bench/run ingest` starts one).
    #[arg(long, env = "BENCH_INFLUXDB_URL")]
    influxdb_url: Option<String>,
    /// Run only these scenarios (a, a-noid, b, c, c-lp, influx), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the results.
    #[arg(long, default_value = "bench/results/ingest.json")]
    out: PathBuf,
    /// Instead of the scenarios: HTTP NDJSON ingest without pause for this many seconds,
    /// sampling the server's memory (results in bench/results/soak.json).
    #[arg(long)]
    soak_secs: Option<u64>,
    /// A PostgreSQL role that may create databases (`postgres://USER:PASSWORD@HOST:PORT/DB`):
    /// the HTTP and AMQP scenarios run again on PostgreSQL (`c-pg`, `c-lp-pg`, `b-pg`), each
    /// on a fresh database.
    #[arg(long, env = "BENCH_DATABASE_URL")]
    database_url: Option<String>,
}

/// A fresh database for a scenario on PostgreSQL, or none (SQLite).
async fn database_for(args: &Args, on_postgres: bool) -> anyhow::Result<Option<String>> {
    match (&args.database_url, on_postgres) {
        (Some(url), true) => Ok(Some(mymonit_bench::fresh_database(url).await?)),
        _ => Ok(None),
    }
}

/// Sustained HTTP ingest for `seconds`: the generated points again and again, each pass
/// later in time than the one before (as a live source's would be), with the server's resident
/// memory sampled every 10 s. Memory should level off once SQLite's cache and the buffers of
/// the requests in flight are warm.
async fn soak(args: &Args, lines: &[String], seconds: u64) -> anyhow::Result<()> {
    let server = Server::start(&args.mymonit, None, None).await?;
    let points: Vec<(String, String, i64)> = lines
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)?;
            Ok((
                value["measure"].as_str().unwrap_or_default().to_string(),
                value["value"].to_string(),
                value["timestamp"].as_i64().unwrap_or_default(),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let span = points.iter().map(|p| p.2).max().unwrap_or(0)
        - points.iter().map(|p| p.2).min().unwrap_or(0)
        + 1;
    let batches = points.len().div_ceil(5000);
    let points = Arc::new(points);
    // Batch n of the endless sequence: batch n % batches of the data, shifted by whole passes.
    let body = move |points: &[(String, String, i64)], n: usize| {
        use std::fmt::Write as _;
        let (pass, batch) = ((n / batches) as i64, n % batches);
        let mut body = String::with_capacity(5000 * 80);
        for (measure, value, ts) in points.iter().skip(batch * 5000).take(5000) {
            let _ = writeln!(
                body,
                r#"{{"experiment":"bench","measure":"{measure}","value":{value},"timestamp":{}}}"#,
                ts + pass * span
            );
        }
        body
    };
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = format!("{}/api/v1/ingest", server.base);
    let stop = Instant::now() + std::time::Duration::from_secs(seconds);
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..args.writers {
        let (points, next, url, token, accepted) = (
            points.clone(),
            next.clone(),
            url.clone(),
            server.token.clone(),
            accepted.clone(),
        );
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while Instant::now() < stop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let body = body(&points, n);
                let outcome: serde_json::Value = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await?
                    .json()
                    .await?;
                let count = outcome["accepted"].as_u64().unwrap_or(0);
                accepted.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    println!(
        "{:>8} {:>16} {:>12} {:>10}",
        "seconds", "stored", "per second", "RSS MiB"
    );
    let mut last = (0.0, 0u64);
    while Instant::now() < stop {
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let stored = accepted.load(std::sync::atomic::Ordering::Relaxed);
        let rate = (stored - last.1) as f64 / (elapsed - last.0);
        let rss = server.rss_mib();
        println!("{elapsed:>8.0} {stored:>16} {rate:>12.0} {rss:>10.1}");
        samples.push(
            json!({"seconds": elapsed, "stored": stored, "per_second": rate, "rss_mib": rss}),
        );
        last = (elapsed, stored);
    }
    for writer in writers {
        writer.await??;
    }
    let (peak, data) = server.stop();
    let disk = std::fs::metadata(data.path().join("mymonit.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let stored = accepted.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{stored} points in {seconds} s; peak RSS {peak:.1} MiB; {:.2} bytes on disk per point",
        disk as f64 / stored.max(1) as f64
    );
    let out = args.out.with_file_name("soak.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&json!({"seconds": seconds, "writers": args.writers,
            "stored": stored, "peak_rss_mib": peak, "samples": samples}))?,
    )?;
    println!("results written to {}", out.display());
    Ok(())
}

/// The bodies of the HTTP scenarios: 5,000 lines each.
fn batches(lines: &[String]) -> Vec<String> {
    lines
        .chunks(5000)
        .map(|chunk| chunk.join("\n") + "\n")
        .collect()
}

/// Sends `bodies` over `writers` concurrent connections, each request made by `request`;
/// returns every answer's status and text once all are in.
async fn post_batches(
    writers: usize,
    bodies: Vec<String>,
    request: impl Fn(&reqwest::Client, String) -> reqwest::RequestBuilder + Clone + Send + 'static,
) -> anyhow::Result<Vec<(reqwest::StatusCode, String)>> {
    let queue = Arc::new(Mutex::new(bodies));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (queue, request) = (queue.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut answers = Vec::new();
            loop {
                let body = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop();
                let Some(body) = body else {
                    return Ok::<_, anyhow::Error>(answers);
                };
                let response = request(&client, body).send().await?;
                answers.push((response.status(), response.text().await?));
            }
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await??);
    }
    Ok(answers)
}

/// (c): batches of 5,000 lines over `writers` connections; measures per second.
async fn http_run(
    args: &Args,
    lines: &[String],
    content_type: &str,
    query: &str,
    on_postgres: bool,
) -> anyhow::Result<(f64, f64)> {
    let database = database_for(args, on_postgres).await?;
    let server = Server::start(&args.mymonit, None, database).await?;
    let bodies = batches(lines);
    let url = format!("{}/api/v1/ingest{query}", server.base);
    let (token, content_type) = (server.token.clone(), content_type.to_string());
    let started = Instant::now();
    let answers = post_batches(args.writers, bodies, move |client, body| {
        client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", &content_type)
            .body(body)
    })
    .await?;
    let elapsed = started.elapsed();
    let peak = server.stop().0;
    let mut accepted = 0;
    for (_, text) in answers {
        let outcome: serde_json::Value = serde_json::from_str(&text)?;
        if outcome["rejected_count"].as_u64() != Some(0) {
            bail!("rejections: {outcome}");
        }
        accepted += outcome["accepted"].as_u64().unwrap_or(0);
    }
    if accepted != lines.len() as u64 {
        bail!("accepted {accepted} of {}", lines.len());
    }
    Ok((accepted as f64 / elapsed.as_secs_f64(), peak))
}

/// (influx): the same points, as InfluxDB's own line protocol, in batches of 5,000 over
/// `writers` connections to InfluxDB 1.x; its write answers once the points are in its WAL.
async fn influx_run(args: &Args, base: &str, lines: &[String]) -> anyhow::Result<f64> {
    // A database of its own per run: dropping and re-creating one name races in InfluxDB.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let database = format!(
        "bench_{}_{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/query?q=CREATE%20DATABASE%20{database}"))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("InfluxDB CREATE DATABASE: {}", response.status());
    }
    let bodies = batches(lines);
    let url = format!("{base}/write?db={database}&precision=s");
    let started = Instant::now();
    let answers = post_batches(args.writers, bodies, move |client, body| {
        client.post(&url).body(body)
    })
    .await?;
    let elapsed = started.elapsed();
    if let Some((status, text)) = answers
        .iter()
        .find(|(status, _)| *status != reqwest::StatusCode::NO_CONTENT)
    {
        bail!("InfluxDB write: {status} {text}");
    }
    // Everything answered 204; check that it is all there.
    let counted: serde_json::Value = client
        .get(format!(
            "{base}/query?db={database}&q=SELECT%20count(value)%20FROM%20%2F.*%2F"
        ))
        .send()
        .await?
        .json()
        .await?;
    let stored: u64 = counted["results"][0]["series"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .filter_map(|one| one["values"][0][1].as_u64())
                .sum()
        })
        .unwrap_or_default();
    if stored != lines.len() as u64 {
        bail!("InfluxDB holds {stored} of {} points", lines.len());
    }
    client
        .post(format!("{base}/query?q=DROP%20DATABASE%20{database}"))
        .send()
        .await?;
    Ok(lines.len() as f64 / elapsed.as_secs_f64())
}

/// (a) and (b): publish with confirms, time until everything is stored.
async fn amqp_run(
    args: &Args,
    url: &str,
    lines: &[String],
    per_message: usize,
    with_ids: bool,
    on_postgres: bool,
) -> anyhow::Result<(f64, f64)> {
    let name = format!(
        "bench-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let database = database_for(args, on_postgres).await?;
    let server = Server::start(&args.mymonit, Some((url, &name)), database).await?;
    let bodies: Vec<String> = lines
        .chunks(per_message)
        .map(|chunk| chunk.join("\n"))
        .collect();
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let content_type = if per_message == 1 {
        "application/json"
    } else {
        "application/x-ndjson"
    };
    let started = Instant::now();
    let mut pending = Vec::with_capacity(1000);
    for (index, body) in bodies.iter().enumerate() {
        let mut properties = BasicProperties::default()
            .with_content_type(content_type.into())
            .with_delivery_mode(2);
        if with_ids {
            properties = properties.with_message_id(format!("m{index}").into());
        }
        pending.push(
            channel
                .basic_publish(
                    name.as_str().into(),
                    "measures".into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    properties,
                )
                .await?,
        );
        if pending.len() >= 10_000 {
            for confirm in pending.drain(..) {
                if !confirm.await?.is_ack() {
                    bail!("the broker refused a message");
                }
            }
        }
    }
    for confirm in pending {
        if !confirm.await?.is_ack() {
            bail!("the broker refused a message");
        }
    }
    let published = started.elapsed();
    server.wait_stored(lines.len() as u64).await?;
    eprintln!(
        "  published (confirmed by the broker) in {:.2} s, stored by {:.2} s",
        published.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let elapsed = started.elapsed();
    let peak = server.stop().0;
    let _ = connection.close(200, "done".into()).await;
    Ok((lines.len() as f64 / elapsed.as_secs_f64(), peak))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.mymonit.is_file() {
        bail!(
            "{} not found: run `cargo build --release` first",
            args.mymonit.display()
        );
    }
    let ndjson = generate(&args.generator, args.points, "ndjson")?;
    if let Some(seconds) = args.soak_secs {
        return soak(&args, &ndjson, seconds).await;
    }
    let line_protocol = generate(&args.generator, args.points, "mlp")?;
    let mut results = Vec::new();
    let mut scenarios: Vec<(&str, &str, f64)> = Vec::new();
    if let Some(url) = args.amqp_url.clone() {
        scenarios.push((
            "a",
            "AMQP, 1 measure per message (original format)",
            20_000.0,
        ));
        scenarios.push((
            "a-noid",
            "AMQP, 1 per message, no message id (original adapter)",
            20_000.0,
        ));
        scenarios.push(("b", "AMQP, 1,000 measures per message", 1_500_000.0));
        let _ = url;
    } else {
        eprintln!("no broker (--amqp-url / MYMONIT_TEST_AMQP_URL): skipping (a) and (b)");
    }
    scenarios.push(("c", "HTTP NDJSON, batches of 5,000", 2_000_000.0));
    scenarios.push(("c-lp", "HTTP line protocol, batches of 5,000", 2_000_000.0));
    if args.database_url.is_some() {
        if args.amqp_url.is_some() {
            scenarios.push(("b-pg", "(b) on PostgreSQL", 1_000_000.0));
        }
        scenarios.push(("c-pg", "(c) on PostgreSQL", 1_000_000.0));
        scenarios.push(("c-lp-pg", "(c-lp) on PostgreSQL", 1_000_000.0));
    }
    let influx_lines = match &args.influxdb_url {
        Some(_) => {
            scenarios.push((
                "influx",
                "InfluxDB 1.6, its line protocol, batches of 5,000",
                f64::NAN,
            ));
            generate(&args.generator, args.points, "lp")?
        }
        None => {
            eprintln!("no InfluxDB (--influxdb-url): skipping the side-by-side scenario");
            Vec::new()
        }
    };
    scenarios.retain(|(id, _, _)| args.only.is_empty() || args.only.iter().any(|only| only == id));
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    let mut peaks: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    for run in 0..args.runs {
        for (index, (id, _, _)) in scenarios.iter().enumerate() {
            let (rate, peak) = match *id {
                "a" => {
                    amqp_run(
                        &args,
                        args.amqp_url.as_deref().unwrap_or_default(),
                        &ndjson[..args.messages.min(ndjson.len())],
                        1,
                        true,
                        false,
                    )
                    .await?
                }
                "a-noid" => {
                    amqp_run(
                        &args,
                        args.amqp_url.as_deref().unwrap_or_default(),
                        &ndjson[..args.messages.min(ndjson.len())],
                        1,
                        false,
                        false,
                    )
                    .await?
                }
                // A scenario's `-pg` twin is the same work on PostgreSQL.
                "b" | "b-pg" => {
                    amqp_run(
                        &args,
                        args.amqp_url.as_deref().unwrap_or_default(),
                        &ndjson,
                        1000,
                        true,
                        id.ends_with("-pg"),
                    )
                    .await?
                }
                "c" | "c-pg" => {
                    http_run(
                        &args,
                        &ndjson,
                        "application/x-ndjson",
                        "",
                        id.ends_with("-pg"),
                    )
                    .await?
                }
                "influx" => (
                    influx_run(
                        &args,
                        args.influxdb_url.as_deref().unwrap_or_default(),
                        &influx_lines,
                    )
                    .await?,
                    f64::NAN,
                ),
                _ => {
                    http_run(
                        &args,
                        &line_protocol,
                        "text/plain",
                        "?precision=s",
                        id.ends_with("-pg"),
                    )
                    .await?
                }
            };
            eprintln!(
                "{id} run {}: {rate:.0} measures/s, server peak RSS {peak:.0} MiB",
                run + 1
            );
            rates[index].push(rate);
            peaks[index].push(peak);
        }
    }
    for (((id, description, target), runs), peaks) in scenarios.iter().zip(rates).zip(peaks) {
        results.push(
            json!({"scenario": id, "description": description, "measures_per_second": runs,
            "median": median(&runs), "target": target, "server_peak_rss_mib": peaks}),
        );
    }
    // MyMonit's line protocol against InfluxDB's, run for run.
    let median_of = |id: &str| {
        results
            .iter()
            .find(|r| r["scenario"] == id)
            .and_then(|r| r["median"].as_f64())
    };
    let runs_of = |id: &str| -> Vec<f64> {
        results
            .iter()
            .find(|r| r["scenario"] == id)
            .and_then(|r| r["measures_per_second"].as_array())
            .map(|runs| runs.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default()
    };
    let mut side_by_side = serde_json::Value::Null;
    if let (Some(ours), Some(theirs)) = (median_of("c-lp"), median_of("influx")) {
        let ratios: Vec<f64> = runs_of("c-lp")
            .iter()
            .zip(runs_of("influx"))
            .map(|(ours, theirs)| ours / theirs)
            .collect();
        println!(
            "side by side: MyMonit line protocol {ours:.0}/s, InfluxDB 1.6 {theirs:.0}/s: {:.2}× \
             (median of the run-by-run ratios {:.2}×; target 2.5×)",
            ours / theirs,
            median(&ratios)
        );
        side_by_side = json!({"ratio_of_medians": ours / theirs, "run_ratios": ratios,
            "median_run_ratio": median(&ratios)});
    }
    println!(
        "{:<6} {:<48} {:>14} {:>12} {:>14}",
        "", "scenario", "median /s", "target /s", "peak RSS MiB"
    );
    for result in &results {
        let peak = result["server_peak_rss_mib"]
            .as_array()
            .map(|peaks| {
                peaks
                    .iter()
                    .filter_map(serde_json::Value::as_f64)
                    .fold(0.0, f64::max)
            })
            .unwrap_or_default();
        let or_dash = |value: Option<f64>| {
            value
                .filter(|v| v.is_finite() && *v > 0.0)
                .map_or_else(|| "–".to_string(), |v| format!("{v:.0}"))
        };
        println!(
            "{:<6} {:<48} {:>14.0} {:>12} {:>14}",
            result["scenario"].as_str().unwrap_or_default(),
            result["description"].as_str().unwrap_or_default(),
            result["median"].as_f64().unwrap_or_default(),
            or_dash(result["target"].as_f64()),
            or_dash(Some(peak))
        );
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let document = json!({"points": args.points, "messages_a": args.messages, "runs": args.runs,
        "writers": args.writers, "results": results, "side_by_side": side_by_side});
    std::fs::write(&args.out, serde_json::to_string_pretty(&document)?)?;
    println!("results written to {}", args.out.display());
    Ok(())
}
