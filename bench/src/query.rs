//! Query latency over HTTP on the shared benchmark's 10 M points (`gen.py --seed 42`,
//! experiment `bench`, 4 types × 2.5 M points, one a second):
//! q1 hourly count/mean/min/max of one type over the whole range, q2 hourly p50/p90/p99,
//! q3 the raw points of one type in a one-hour window, q4 the last value of each type, q5 the
//! web UI's chart of one type over the whole range (M4 to 1,200 columns); and
//! bytes on disk per point. The points go in through HTTP line protocol ingest; timing starts
//! once compaction has finished and the server was restarted. Medians of `--runs` runs after
//! a warm-up, client-side.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::bail;
use clap::Parser;
use serde_json::{Value, json};

use mymonit_bench::{Server, load, median, scientist_token};

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
    /// Timed runs per query (after one warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where to write the results.
    #[arg(long, default_value = "bench/results/query.json")]
    out: PathBuf,
    /// Run only these queries (q1 … q5), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A PostgreSQL role that may create databases: the whole benchmark runs again on a fresh
    /// PostgreSQL database, and both backends are reported side by side.
    #[arg(long, env = "BENCH_DATABASE_URL")]
    database_url: Option<String>,
}

/// One backend's figures.
struct Run {
    results: Vec<Value>,
    bytes: u64,
    bytes_per_point: f64,
    storage: mymonit_store::StorageStats,
    load_rate: f64,
    compaction_wait: f64,
    peak_load_mib: f64,
    peak_query_mib: f64,
}

/// The generator's first second (2024-01-01T00:00:00Z) and its number of types.
const START: i64 = 1_704_067_200;
const TYPES: i64 = 4;

async fn wait_compacted(
    server: &Server,
    points: u64,
) -> anyhow::Result<(f64, mymonit_store::StorageStats)> {
    let started = Instant::now();
    let store = server.store().await?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let stored = store.count(1).await?;
        let pending = store.pending_compaction().await?;
        if stored >= points && pending == 0 {
            // PostgreSQL's size is measured as autovacuum leaves it: the dead rows of
            // compaction's rewrites are space it reuses, not data.
            if let Some(url) = &server.database {
                let postgres =
                    mymonit_store::PgStore::open(url, &mymonit_store::OpenOptions::default())
                        .await?;
                postgres.vacuum().await?;
                postgres.pool().close().await;
            }
            let stats = store.storage_stats().await?;
            store.close().await;
            return Ok((started.elapsed().as_secs_f64(), stats));
        }
        if Instant::now() > deadline {
            bail!("{stored} stored, {pending} not compacted after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn bytes_on_disk(data: &std::path::Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for name in ["mymonit.db", "mymonit.db-wal"] {
        if let Ok(meta) = std::fs::metadata(data.join(name)) {
            total += meta.len();
        }
    }
    Ok(total)
}

fn rfc3339(seconds: i64) -> String {
    mymonit_model::time::format_rfc3339(seconds * 1_000_000_000)
}

/// A query of the benchmark: its name, path and a check of the answer.
struct Query {
    name: &'static str,
    what: &'static str,
    path: String,
    check: fn(&Value) -> bool,
    target_ms: f64,
    /// The reference figures, where it gives them.
    influxdb_ms: Option<f64>,
    postgresql_ms: Option<f64>,
}

/// Loads the points into a server on `database` (`None`: SQLite) and times the queries.
async fn run_on(args: &Args, database: Option<String>) -> anyhow::Result<Run> {
    let seconds = (args.points as u64).div_ceil(TYPES as u64) as i64;
    let end = START + seconds;
    let server = Server::start(&args.mymonit, None, database.clone()).await?;
    eprintln!(
        "loading {} points through HTTP line protocol into {}…",
        args.points,
        if database.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let load_rate = load(&args.generator, args.points, &server, 0).await?;
    let (compaction_wait, storage) = wait_compacted(&server, args.points as u64).await?;
    let (peak_load_mib, data) = server.stop();
    let bytes = match database {
        Some(_) => storage.file_bytes,
        None => bytes_on_disk(data.path())?,
    };
    let bytes_per_point = bytes as f64 / args.points as f64;
    let server = Server::resume(&args.mymonit, data, database).await?;
    let token = scientist_token(&server.base).await?;
    let experiment = "/api/v1/experiments/1";
    let whole = format!("from={}&to={}", rfc3339(START), rfc3339(end));
    let middle = START + seconds / 2;
    let queries = [
        Query {
            name: "q1",
            what: "hourly count/mean/min/max, whole range",
            path: format!(
                "{experiment}/stats?measure=hertz&statistics=count,mean,min,max&timeslice=hour&{whole}"
            ),
            check: |v| {
                v["buckets"]
                    .as_array()
                    .is_some_and(|b| b.len() > 1 && b[0]["count"] == 3600)
            },
            target_ms: 50.0,
            influxdb_ms: Some(3900.0),
            postgresql_ms: Some(930.0),
        },
        Query {
            name: "q2",
            what: "hourly p50/p90/p99, whole range",
            path: format!(
                "{experiment}/stats?measure=hertz&statistics=p50,p90,p99&timeslice=hour&{whole}"
            ),
            check: |v| {
                v["buckets"]
                    .as_array()
                    .is_some_and(|b| b.len() > 1 && b[0]["p50"].is_f64())
            },
            target_ms: 250.0,
            influxdb_ms: Some(17_000.0),
            postgresql_ms: Some(4400.0),
        },
        Query {
            name: "q3",
            what: "raw points of one type, one hour",
            path: format!(
                "{experiment}/measures?measure=hertz&limit=10000&from={}&to={}",
                rfc3339(middle),
                rfc3339(middle + 3600)
            ),
            check: |v| v["measures"].as_array().is_some_and(|m| m.len() == 3600),
            target_ms: 5.0,
            influxdb_ms: Some(4.7),
            postgresql_ms: Some(1.9),
        },
        Query {
            name: "q4",
            what: "last value of each type",
            path: format!("{experiment}/latest"),
            check: |v| v["latest"].as_array().is_some_and(|l| l.len() == 4),
            target_ms: 2.0,
            influxdb_ms: Some(2.7),
            postgresql_ms: Some(0.1),
        },
        Query {
            name: "q5",
            what: "chart of one type, whole range, 1,200 px",
            path: format!("{experiment}/series?measure=hertz&points=1200&{whole}"),
            check: |v| {
                v["series"][0]["values"]
                    .as_array()
                    .is_some_and(|values| values.len() > 1000 && values.len() <= 4 * 1200)
            },
            // What the dashboard needs to redraw after a zoom without a visible wait.
            target_ms: 100.0,
            influxdb_ms: None,
            postgresql_ms: None,
        },
    ];
    let client = reqwest::Client::new();
    let mut results = Vec::new();
    for query in queries
        .iter()
        .filter(|q| args.only.is_empty() || args.only.iter().any(|only| only == q.name))
    {
        let url = format!("{}{}", server.base, query.path);
        let mut times = Vec::new();
        for run in 0..=args.runs {
            let started = Instant::now();
            let reply = client.get(&url).bearer_auth(&token).send().await?;
            let status = reply.status();
            let body = reply.bytes().await?;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            if !status.is_success() {
                bail!(
                    "{}: {status} {}",
                    query.name,
                    String::from_utf8_lossy(&body)
                );
            }
            if run == 0 {
                let value: Value = serde_json::from_slice(&body)?;
                if !(query.check)(&value) {
                    bail!(
                        "{}: unexpected answer {}",
                        query.name,
                        &value.to_string()[..300.min(value.to_string().len())]
                    );
                }
            } else {
                times.push(elapsed);
            }
        }
        results.push(json!({
            "query": query.name, "what": query.what, "runs_ms": times,
            "median_ms": median(&times), "target_ms": query.target_ms,
            "influxdb_1_6_ms": query.influxdb_ms, "postgresql_15_ms": query.postgresql_ms,
        }));
    }
    let (peak_query_mib, _) = server.stop();
    Ok(Run {
        results,
        bytes,
        bytes_per_point,
        storage,
        load_rate,
        compaction_wait,
        peak_load_mib,
        peak_query_mib,
    })
}

fn report(args: &Args, run: &Run) -> Value {
    json!({
        "points": args.points, "runs": args.runs, "queries": run.results,
        "bytes_on_disk": run.bytes, "bytes_per_point": run.bytes_per_point,
        "storage": run.storage, "load_points_per_s": run.load_rate,
        "compaction_wait_s": run.compaction_wait,
        "peak_rss_mib": {"load": run.peak_load_mib, "queries": run.peak_query_mib},
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sqlite = run_on(&args, None).await?;
    let postgres = match &args.database_url {
        Some(url) => Some(run_on(&args, Some(mymonit_bench::fresh_database(url).await?)).await?),
        None => None,
    };
    println!(
        "{:<4} {:<42} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "", "query", "SQLite ms", "on PG ms", "target ms", "InfluxDB ms", "PG rows ms"
    );
    let reference = |value: &Value| {
        value
            .as_f64()
            .map_or_else(|| "–".to_string(), |ms| format!("{ms:.1}"))
    };
    for (index, result) in sqlite.results.iter().enumerate() {
        let on_postgres = postgres
            .as_ref()
            .and_then(|run| run.results.get(index))
            .and_then(|r| r["median_ms"].as_f64())
            .map_or_else(|| "–".to_string(), |ms| format!("{ms:.2}"));
        println!(
            "{:<4} {:<42} {:>10.2} {:>10} {:>10.1} {:>12} {:>12}",
            result["query"].as_str().unwrap_or_default(),
            result["what"].as_str().unwrap_or_default(),
            result["median_ms"].as_f64().unwrap_or_default(),
            on_postgres,
            result["target_ms"].as_f64().unwrap_or_default(),
            reference(&result["influxdb_1_6_ms"]),
            reference(&result["postgresql_15_ms"]),
        );
    }
    for (name, run) in
        std::iter::once(("SQLite", &sqlite)).chain(postgres.as_ref().map(|run| ("PostgreSQL", run)))
    {
        let storage = &run.storage;
        println!(
            "{name}: {:.2} bytes on disk per point{} (target 3; InfluxDB 6.4, PostgreSQL rows 84); \
             chunk payload {:.2}, free pages {:.2}, other (rows, indexes, users…) {:.2}; {} chunks",
            run.bytes_per_point,
            if name == "PostgreSQL" {
                " after VACUUM"
            } else {
                ""
            },
            storage.chunk_bytes as f64 / args.points as f64,
            storage.free_bytes as f64 / args.points as f64,
            storage
                .file_bytes
                .saturating_sub(storage.chunk_bytes + storage.free_bytes) as f64
                / args.points as f64,
            storage.chunks
        );
        println!(
            "{name}: load {:.0} points/s over HTTP; compaction finished {:.1} s after the last request",
            run.load_rate, run.compaction_wait
        );
    }
    let mut report = report(&args, &sqlite);
    if let Some(run) = &postgres {
        report["postgresql_backend"] = self::report(&args, run);
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("results written to {}", args.out.display());
    Ok(())
}
