//! Ingest throughput, end to end: measures published → durable → visible in the store, for
//! (a) AMQP with one measure per message (the original format), (b) AMQP with 1,000 measures
//! per message, (c) HTTP NDJSON batches of 5,000 and (c-lp) the same points as line protocol.
//! Data: `gen.py --seed 42` from the shared benchmark kit. Each run starts a fresh server on a
//! fresh data directory; the table shows medians, the JSON file every run.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use lapin::{
    BasicProperties, Connection, ConnectionProperties, ExchangeKind,
    options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions},
    types::FieldTable,
};
use mymonit_store::{MeasureStore, SqliteStore};
use serde_json::json;

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
    /// Run only these scenarios (a, b, c, c-lp), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the results.
    #[arg(long, default_value = "bench/results/ingest.json")]
    out: PathBuf,
}

const PASSWORD: &str = "Vq7pLm2xZr9t-Hk4w-Qs8y";

/// A server on a fresh data directory, with the experiment `bench` and an ingest token.
struct Server {
    child: Child,
    base: String,
    data: tempfile::TempDir,
    token: String,
}

impl Server {
    async fn start(binary: &Path, amqp: Option<(&str, &str)>) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let dir = data.path().to_str().context("temp path")?.to_string();
        let mut add = Command::new(binary)
            .args([
                "user",
                "add",
                "--id",
                "A001",
                "--name",
                "Bench Admin",
                "--username",
                "bench",
                "--email",
                "bench@home.cern",
                "--role",
                "ADMIN",
                "--password-stdin",
                "--data-dir",
                &dir,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        use std::io::Write as _;
        add.stdin
            .take()
            .context("stdin")?
            .write_all(format!("{PASSWORD}\n").as_bytes())?;
        if !add.wait()?.success() {
            bail!("cannot add the bench user");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(binary);
        command.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            &dir,
        ]);
        if let Some((url, name)) = amqp {
            let config = data.path().join("bench.toml");
            std::fs::write(
                &config,
                format!(
                    "[amqp]\nurl = \"{url}\"\nexchange = \"{name}\"\nqueue = \"{name}.measures\"\ndead_letter_queue = \"{name}.dead\"\n"
                ),
            )?;
            command.arg("--config").arg(config);
        }
        let log = std::fs::File::create(data.path().join("server.log"))?;
        let child = command
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.get(format!("{base}/readyz")).send().await.is_err() {
            if Instant::now() > deadline {
                bail!("the server did not start");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let login: serde_json::Value = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "bench", "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let admin = login["access_token"]
            .as_str()
            .context("no token")?
            .to_string();
        client
            .post(format!("{base}/api/v1/experiments"))
            .bearer_auth(&admin)
            .json(&json!({"name": "bench"}))
            .send()
            .await?;
        let created: serde_json::Value = client
            .post(format!("{base}/api/v1/ingest-tokens"))
            .bearer_auth(&admin)
            .json(&json!({"experiments": ["bench"]}))
            .send()
            .await?
            .json()
            .await?;
        let token = created["token"]
            .as_str()
            .context("no ingest token")?
            .to_string();
        if amqp.is_some() {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let ready: serde_json::Value = client
                    .get(format!("{base}/readyz"))
                    .send()
                    .await?
                    .json()
                    .await?;
                if ready["amqp"]["state"] == "consuming" {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the AMQP consumer did not start: {ready}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(Self {
            child,
            base,
            data,
            token,
        })
    }

    /// Stops the server; returns its peak resident memory (VmHWM) in MiB.
    fn stop(mut self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let peak_kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0.0);
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        peak_kib / 1024.0
    }

    /// Waits until the store holds `expected` measures; returns when it does.
    async fn wait_stored(&self, expected: u64) -> anyhow::Result<()> {
        let store = SqliteStore::open(self.data.path()).await?;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let count = store.count(1).await?;
            if count >= expected {
                store.close().await;
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("only {count} of {expected} measures stored after 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn generate(generator: &Path, points: usize, format: &str) -> anyhow::Result<Vec<String>> {
    let output = Command::new("python3")
        .arg(generator)
        .args([
            "--n",
            &points.to_string(),
            "--seed",
            "42",
            "--format",
            format,
        ])
        .output()
        .with_context(|| format!("cannot run {}", generator.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            generator.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?
        .lines()
        .map(str::to_string)
        .collect())
}

/// (c): batches of 5,000 lines over `writers` connections; measures per second.
async fn http_run(
    args: &Args,
    lines: &[String],
    content_type: &str,
    query: &str,
) -> anyhow::Result<(f64, f64)> {
    let server = Server::start(&args.mymonit, None).await?;
    let bodies: Vec<String> = lines
        .chunks(5000)
        .map(|chunk| chunk.join("\n") + "\n")
        .collect();
    let queue = Arc::new(Mutex::new(bodies));
    let url = format!("{}/api/v1/ingest{query}", server.base);
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..args.writers {
        let (queue, url, token, content_type) = (
            queue.clone(),
            url.clone(),
            server.token.clone(),
            content_type.to_string(),
        );
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut accepted = 0u64;
            loop {
                let body = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop();
                let Some(body) = body else {
                    return Ok::<u64, anyhow::Error>(accepted);
                };
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", &content_type)
                    .body(body)
                    .send()
                    .await?;
                let outcome: serde_json::Value = response.json().await?;
                if outcome["rejected_count"].as_u64() != Some(0) {
                    bail!("rejections: {outcome}");
                }
                accepted += outcome["accepted"].as_u64().unwrap_or(0);
            }
        }));
    }
    let mut accepted = 0;
    for writer in writers {
        accepted += writer.await??;
    }
    let elapsed = started.elapsed();
    let peak = server.stop();
    if accepted != lines.len() as u64 {
        bail!("accepted {accepted} of {}", lines.len());
    }
    Ok((accepted as f64 / elapsed.as_secs_f64(), peak))
}

/// (a) and (b): publish with confirms, time until everything is stored.
async fn amqp_run(
    args: &Args,
    url: &str,
    lines: &[String],
    per_message: usize,
) -> anyhow::Result<(f64, f64)> {
    let name = format!(
        "bench-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let server = Server::start(&args.mymonit, Some((url, &name))).await?;
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
        let properties = BasicProperties::default()
            .with_message_id(format!("m{index}").into())
            .with_content_type(content_type.into())
            .with_delivery_mode(2);
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
    let peak = server.stop();
    let _ = connection.close(200, "done".into()).await;
    Ok((lines.len() as f64 / elapsed.as_secs_f64(), peak))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
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
    let line_protocol = generate(&args.generator, args.points, "mlp")?;
    let mut results = Vec::new();
    let mut scenarios: Vec<(&str, &str, f64)> = Vec::new();
    if let Some(url) = args.amqp_url.clone() {
        scenarios.push((
            "a",
            "AMQP, 1 measure per message (original format)",
            20_000.0,
        ));
        scenarios.push(("b", "AMQP, 1,000 measures per message", 500_000.0));
        let _ = url;
    } else {
        eprintln!("no broker (--amqp-url / MYMONIT_TEST_AMQP_URL): skipping (a) and (b)");
    }
    scenarios.push(("c", "HTTP NDJSON, batches of 5,000", 2_000_000.0));
    scenarios.push(("c-lp", "HTTP line protocol, batches of 5,000", 2_000_000.0));
    scenarios.retain(|(id, _, _)| args.only.is_empty() || args.only.iter().any(|only| only == id));
    for (id, description, target) in scenarios {
        let mut runs = Vec::new();
        let mut peaks = Vec::new();
        for run in 0..args.runs {
            let (rate, peak) = match id {
                "a" => {
                    amqp_run(
                        &args,
                        args.amqp_url.as_deref().unwrap_or_default(),
                        &ndjson[..args.messages.min(ndjson.len())],
                        1,
                    )
                    .await?
                }
                "b" => {
                    amqp_run(
                        &args,
                        args.amqp_url.as_deref().unwrap_or_default(),
                        &ndjson,
                        1000,
                    )
                    .await?
                }
                "c" => http_run(&args, &ndjson, "application/x-ndjson", "").await?,
                _ => http_run(&args, &line_protocol, "text/plain", "?precision=s").await?,
            };
            eprintln!(
                "{id} run {}: {rate:.0} measures/s, server peak RSS {peak:.0} MiB",
                run + 1
            );
            runs.push(rate);
            peaks.push(peak);
        }
        results.push(
            json!({"scenario": id, "description": description, "measures_per_second": runs,
            "median": median(&runs), "target": target, "server_peak_rss_mib": peaks}),
        );
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
        println!(
            "{:<6} {:<48} {:>14.0} {:>12.0} {:>14.0}",
            result["scenario"].as_str().unwrap_or_default(),
            result["description"].as_str().unwrap_or_default(),
            result["median"].as_f64().unwrap_or_default(),
            result["target"].as_f64().unwrap_or_default(),
            peak
        );
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let document = json!({"points": args.points, "messages_a": args.messages, "runs": args.runs, "writers": args.writers, "results": results});
    std::fs::write(&args.out, serde_json::to_string_pretty(&document)?)?;
    println!("results written to {}", args.out.display());
    Ok(())
}
