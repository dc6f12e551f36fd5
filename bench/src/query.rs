//! Query latency over HTTP on the shared benchmark's 10 M points (`gen.py --seed 42`,
//! experiment `bench`, 4 types × 2.5 M points, one a second):
//! q1 hourly count/mean/min/max of one type over the whole range (q1-all: of all four types),
//! q2 hourly p50/p90/p99 (q2-all), q3 the raw points of one type in a one-hour window, q4 the
//! last value of each type, q5 the web UI's chart of one type over the whole range (M4 to
//! 1,200 columns); and bytes on disk per point. The points go in through HTTP line protocol
//! ingest; timing starts once compaction has finished and the server was restarted.
//!
//! The peers get the same points and the same questions in the same run (see `peers`):
//! PostgreSQL's plain row table and InfluxDB 1.6. Every system answers each run in turn, so
//! that load from elsewhere falls on all alike; medians of `--runs` runs after a warm-up,
//! client-side, with each peer's ratio to MyMonit. In each run a system asks a question that
//! took it under 100 ms several times back to back (up to 20, from its warm-up's time): a
//! millisecond figure is then a median of many answers, not of a few.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::bail;
use clap::Parser;
use serde_json::{Value, json};

use mymonit_bench::{
    Server, load, median,
    peers::{Influx, PgRows, Question, START, Span, mymonit_rows},
    scientist_token,
};

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
    /// PostgreSQL database, and both backends are reported side by side; the row table peer
    /// lives in another database there.
    #[arg(long, env = "BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// InfluxDB 1.x, the other peer (bench/run starts a private one).
    #[arg(long, env = "BENCH_INFLUXDB_URL")]
    influxdb_url: Option<String>,
    /// Skip the peers (quick runs).
    #[arg(long)]
    no_peers: bool,
    /// An earlier build of mymonit: it serves a copy of the same SQLite data beside the
    /// current one and answers every run in turn (a change measured before/after).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Keep the loaded servers up this long after the runs (to profile them by hand): their
    /// addresses and a scientist's token are printed.
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
}

/// One loaded MyMonit and what loading it measured.
struct Run {
    server: Server,
    token: String,
    bytes: u64,
    bytes_per_point: f64,
    storage: mymonit_store::StorageStats,
    load_rate: f64,
    compaction_wait: f64,
    peak_load_mib: f64,
}

/// A system asks a quick question about this long per run (as many times as fit, at most
/// [`MAX_REPEATS`]); the median is taken over every answer.
const REPEAT_BUDGET_MS: f64 = 100.0;
/// The most times a system asks one question in a run.
const MAX_REPEATS: f64 = 20.0;

/// Timing a slow system stops once its runs of a query took this long (and at least 3 ran).
const SLOW_QUERY_BUDGET_MS: f64 = 30_000.0;

/// The generator's number of types.
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

/// Copies a stopped server's data directory (SQLite) for another binary to serve.
fn copy_data(from: &std::path::Path) -> anyhow::Result<tempfile::TempDir> {
    let copy = tempfile::tempdir()?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name()))?;
        }
    }
    Ok(copy)
}

/// Loads the points into a server on `database` (`None`: SQLite), waits for compaction and
/// restarts it; with `baseline`, also starts that binary on a copy of the data.
async fn load_mymonit(
    args: &Args,
    database: Option<String>,
    baseline: Option<&std::path::Path>,
) -> anyhow::Result<(Run, Option<Run>)> {
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
    // What loading measured, with a server serving the data.
    let loaded = |server, token| Run {
        server,
        token,
        bytes,
        bytes_per_point,
        storage,
        load_rate,
        compaction_wait,
        peak_load_mib,
    };
    let earlier = match baseline {
        Some(binary) => {
            let copy = copy_data(data.path())?;
            let server = Server::resume(binary, copy, None).await?;
            let token = scientist_token(&server.base).await?;
            Some(loaded(server, token))
        }
        None => None,
    };
    let server = Server::resume(&args.mymonit, data, database).await?;
    let token = scientist_token(&server.base).await?;
    Ok((loaded(server, token), earlier))
}

/// A question of the benchmark as MyMonit's API asks it.
struct Query {
    name: &'static str,
    what: &'static str,
    /// The same question to the peers (q5 has none).
    question: Option<Question>,
    path: String,
    target_ms: f64,
}

fn queries(span: Span) -> Vec<Query> {
    let experiment = "/api/v1/experiments/1";
    let whole = format!("from={}&to={}", rfc3339(span.from), rfc3339(span.to));
    let stats = |statistics: &str, one: bool| {
        format!(
            "{experiment}/stats?{}&statistics={statistics}&timeslice=hour&{whole}",
            if one {
                "measure=hertz"
            } else {
                "group_by=measure"
            }
        )
    };
    vec![
        Query {
            name: "q1",
            what: "hourly count/mean/min/max, one type",
            question: Some(Question::Q1),
            path: stats("count,mean,min,max", true),
            target_ms: 10.0,
        },
        Query {
            name: "q1-all",
            what: "hourly count/mean/min/max, 4 types",
            question: Some(Question::Q1All),
            path: stats("count,mean,min,max", false),
            target_ms: 40.0,
        },
        Query {
            name: "q2",
            what: "hourly p50/p90/p99, one type",
            question: Some(Question::Q2),
            path: stats("p50,p90,p99", true),
            target_ms: 30.0,
        },
        Query {
            name: "q2-all",
            what: "hourly p50/p90/p99, 4 types",
            question: Some(Question::Q2All),
            path: stats("p50,p90,p99", false),
            target_ms: 120.0,
        },
        Query {
            name: "q3",
            what: "raw points of one type, one hour",
            question: Some(Question::Q3),
            path: format!(
                "{experiment}/measures?measure=hertz&limit=10000&from={}&to={}",
                rfc3339(span.hour),
                rfc3339(span.hour + 3600)
            ),
            target_ms: 1.5,
        },
        Query {
            name: "q4",
            what: "last value of each type",
            question: Some(Question::Q4),
            path: format!("{experiment}/latest"),
            target_ms: 0.5,
        },
        Query {
            name: "q5",
            what: "chart of one type, 1,200 px",
            question: None,
            path: format!("{experiment}/series?measure=hertz&points=1200&{whole}"),
            // The issue's: near what the layout allows (a redraw after a zoom).
            target_ms: 10.0,
        },
    ]
}

/// One system under test.
enum System {
    /// MyMonit; `true` for an earlier build, which may not know every question (it is
    /// skipped for those).
    MyMonit(Box<Run>, bool),
    PgRows(PgRows),
    Influx(Influx),
}

impl System {
    /// Asks one question; `None` when the system has no equivalent.
    async fn ask(
        &mut self,
        client: &reqwest::Client,
        query: &Query,
        span: Span,
    ) -> anyhow::Result<Option<(f64, usize)>> {
        match self {
            System::MyMonit(run, earlier) => {
                let started = Instant::now();
                let reply = client
                    .get(format!("{}{}", run.server.base, query.path))
                    .bearer_auth(&run.token)
                    .send()
                    .await?;
                let status = reply.status();
                let body = reply.bytes().await?;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                if *earlier && status.is_client_error() {
                    return Ok(None);
                }
                if !status.is_success() {
                    bail!(
                        "{}: {status} {}",
                        query.name,
                        String::from_utf8_lossy(&body)
                    );
                }
                let rows = mymonit_rows(&serde_json::from_slice(&body)?);
                Ok(Some((ms, rows)))
            }
            System::PgRows(peer) => match query.question {
                Some(question) => {
                    let timed = peer.ask(question, span).await?;
                    Ok(Some((timed.ms, timed.rows)))
                }
                None => Ok(None),
            },
            System::Influx(peer) => match query.question {
                Some(question) => {
                    let timed = peer.ask(question, span).await?;
                    Ok(Some((timed.ms, timed.rows)))
                }
                None => Ok(None),
            },
        }
    }
}

/// What loading measured (peak memory while querying is added once the server stops).
fn report(args: &Args, run: &Run) -> Value {
    json!({
        "points": args.points, "bytes_on_disk": run.bytes, "bytes_per_point": run.bytes_per_point,
        "storage": run.storage, "load_points_per_s": run.load_rate,
        "compaction_wait_s": run.compaction_wait,
        "peak_rss_mib": {"load": run.peak_load_mib},
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seconds = (args.points as u64).div_ceil(TYPES as u64) as i64;
    let span = Span {
        from: START,
        to: START + seconds,
        hour: START + seconds / 2,
    };
    let mut systems: Vec<(&str, System)> = Vec::new();
    let (sqlite, baseline) = load_mymonit(&args, None, args.baseline.as_deref()).await?;
    systems.push(("MyMonit", System::MyMonit(Box::new(sqlite), false)));
    if let Some(run) = baseline {
        systems.push(("baseline", System::MyMonit(Box::new(run), true)));
    }
    if let Some(url) = &args.database_url {
        let database = mymonit_bench::fresh_database(url).await?;
        let (postgres, _) = load_mymonit(&args, Some(database), None).await?;
        systems.push(("MyMonit on PG", System::MyMonit(Box::new(postgres), false)));
    }
    if !args.no_peers {
        match &args.database_url {
            Some(url) => {
                eprintln!(
                    "loading {} points into a PostgreSQL row table…",
                    args.points
                );
                let peer = PgRows::load(url, &args.generator, args.points).await?;
                systems.push(("PG rows", System::PgRows(peer)));
            }
            None => eprintln!("no PostgreSQL: the row table peer is skipped"),
        }
        match &args.influxdb_url {
            Some(url) => {
                eprintln!("loading {} points into InfluxDB…", args.points);
                let peer = Influx::load(url, &args.generator, args.points).await?;
                systems.push(("InfluxDB", System::Influx(peer)));
            }
            None => eprintln!("no InfluxDB: that peer is skipped"),
        }
    }

    let client = reqwest::Client::new();
    let mut results = Vec::new();
    for query in queries(span)
        .into_iter()
        .filter(|q| args.only.is_empty() || args.only.iter().any(|only| only == q.name))
    {
        eprintln!("timing {} ({})…", query.name, query.what);
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
        let mut rows: Vec<Option<usize>> = vec![None; systems.len()];
        // How often each system asks in a run: a quick question several times back to back
        // (from its warm-up's time), so that a millisecond figure is not one sample's luck.
        let mut repeats: Vec<usize> = vec![1; systems.len()];
        for run in 0..=args.runs {
            for (index, (_, system)) in systems.iter_mut().enumerate() {
                // A peer taking seconds a query stops after three runs past half a minute.
                let spent: f64 = times[index].iter().sum();
                if times[index].len() >= 3 && spent > SLOW_QUERY_BUDGET_MS {
                    continue;
                }
                for _ in 0..if run == 0 { 1 } else { repeats[index] } {
                    let Some((ms, count)) = system.ask(&client, &query, span).await? else {
                        break;
                    };
                    if run == 0 {
                        rows[index] = Some(count);
                        repeats[index] = (REPEAT_BUDGET_MS / ms).clamp(1.0, MAX_REPEATS) as usize;
                    } else {
                        times[index].push(ms);
                    }
                }
            }
        }
        // Every system must have done the same work: the same number of rows.
        if let Some(ours) = rows[0] {
            for ((name, _), theirs) in systems.iter().zip(&rows) {
                if theirs.is_some_and(|theirs| theirs != ours) {
                    bail!(
                        "{}: MyMonit answered {ours} rows, {name} {theirs:?}",
                        query.name
                    );
                }
            }
        }
        let mut by_system = serde_json::Map::new();
        for (((name, _), runs), rows) in systems.iter().zip(&times).zip(&rows) {
            if runs.is_empty() {
                continue;
            }
            by_system.insert(
                (*name).to_string(),
                json!({"median_ms": median(runs), "runs_ms": runs, "rows": rows}),
            );
        }
        results.push(json!({
            "query": query.name, "what": query.what, "target_ms": query.target_ms,
            "systems": by_system,
        }));
    }

    if args.hold_secs > 0 {
        for (name, system) in &systems {
            if let System::MyMonit(run, _) = system {
                eprintln!(
                    "{name}: {} pid {} token {}",
                    run.server.base,
                    run.server.pid(),
                    run.token
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    }
    let names: Vec<&str> = systems.iter().map(|(name, _)| *name).collect();
    print!("{:<7} {:<36}", "", "query");
    for name in &names {
        print!(" {:>14}", format!("{name} ms"));
    }
    println!(" {:>10}  ratios to MyMonit", "target ms");
    for result in &results {
        let median_of = |name: &str| result["systems"][name]["median_ms"].as_f64();
        print!(
            "{:<7} {:<36}",
            result["query"].as_str().unwrap_or_default(),
            result["what"].as_str().unwrap_or_default()
        );
        for name in &names {
            print!(
                " {:>14}",
                median_of(name).map_or_else(|| "–".to_string(), |ms| format!("{ms:.2}"))
            );
        }
        print!(
            " {:>10.1} ",
            result["target_ms"].as_f64().unwrap_or_default()
        );
        if let Some(ours) = median_of("MyMonit") {
            for name in names.iter().skip(1) {
                if let Some(theirs) = median_of(name) {
                    print!(" {name} {:.2}×", theirs / ours);
                }
            }
        }
        println!();
    }

    let mut report_json = json!({"points": args.points, "runs": args.runs, "queries": results});
    for (name, system) in systems {
        match system {
            System::MyMonit(run, _) => {
                let storage = &run.storage;
                println!(
                    "{name}: {:.2} bytes on disk per point{}; chunk payload {:.2}, free pages {:.2}, \
                     other (rows, indexes, users…) {:.2}; {} chunks; load {:.0} points/s over HTTP, \
                     compaction finished {:.1} s after the last request",
                    run.bytes_per_point,
                    if run.server.database.is_some() {
                        " after VACUUM"
                    } else {
                        ""
                    },
                    storage.chunk_bytes as f64 / args.points as f64,
                    storage.free_bytes as f64 / args.points as f64,
                    storage
                        .file_bytes
                        .saturating_sub(storage.chunk_bytes + storage.free_bytes)
                        as f64
                        / args.points as f64,
                    storage.chunks,
                    run.load_rate,
                    run.compaction_wait,
                );
                let key = match name {
                    "MyMonit" => "mymonit",
                    "baseline" => "baseline",
                    _ => "mymonit_postgresql",
                };
                let mut entry = report(&args, &run);
                let (peak_query_mib, _) = run.server.stop();
                entry["peak_rss_mib"]["queries"] = json!(peak_query_mib);
                report_json[key] = entry;
            }
            System::PgRows(peer) => {
                println!(
                    "{name}: {:.2} bytes per point (table and index), loaded (COPY, index, VACUUM ANALYZE) in {:.1} s",
                    peer.bytes as f64 / args.points as f64,
                    peer.load_secs
                );
                report_json["postgresql_rows"] = json!({
                    "bytes_per_point": peer.bytes as f64 / args.points as f64,
                    "load_s": peer.load_secs,
                });
            }
            System::Influx(peer) => {
                println!("{name}: loaded at {:.0} points/s", peer.load_rate);
                report_json["influxdb"] = json!({"load_points_per_s": peer.load_rate});
            }
        }
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report_json)?)?;
    println!("results written to {}", args.out.display());
    Ok(())
}
