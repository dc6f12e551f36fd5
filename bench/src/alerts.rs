//! How many alert rules one MyMonit instance evaluates per second over the shared benchmark's
//! 10 M points (`gen.py --seed 42`, experiment `bench`, 4 types × 2.5 M, one a second). The
//! points go in through HTTP line protocol ingest with their times moved so that the last is
//! now (rules look at the windows before now); once compacted, an instance runs in this
//! process with `--rules` rules, all due every second (so its evaluator never rests), a mix of
//! `mean` over 5 minutes, `max` over 1 minute, `p99` over 1 hour, `count` over 10 minutes,
//! `rate` over 5 minutes and absences of 10 minutes, over the 4 types. Evaluations per second
//! and the mean time of one are read from its own metrics over `--seconds` seconds, after a
//! warm-up; JSON results go to `--out`.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

use mymonit_bench::{Server, load};
use mymonit_model::alert::{Comparison, Condition, RuleSpec};

#[derive(Parser)]
struct Args {
    /// The mymonit binary (build it with `cargo build --release`), which loads the points.
    #[arg(long, default_value = "target/release/mymonit")]
    mymonit: PathBuf,
    /// The data generator.
    #[arg(long, default_value = "../shared/bench/gen.py")]
    generator: PathBuf,
    /// Points to load.
    #[arg(long, default_value_t = 10_000_000)]
    points: usize,
    /// Rules to evaluate.
    #[arg(long, default_value_t = 1_000)]
    rules: usize,
    /// Seconds measured (after 10 s of warm-up).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Where to write the results.
    #[arg(long, default_value = "bench/results/alerts.json")]
    out: PathBuf,
    /// A PostgreSQL role that may create databases: the benchmark runs again on PostgreSQL.
    #[arg(long, env = "BENCH_DATABASE_URL")]
    database_url: Option<String>,
}

/// The generator's first second (2024-01-01T00:00:00Z) and its number of types.
const START: i64 = 1_704_067_200;
const TYPES: usize = 4;
// The generator names its fourth type `celsius` in InfluxDB and `watt` in MyMonit.
const MEASURES: [&str; TYPES] = ["hertz", "volt", "pascal", "watt"];

/// The `index`-th rule of the mix.
fn rule(index: usize) -> RuleSpec {
    let measure = MEASURES[index % TYPES].to_owned();
    let minutes = |m: i64| m * 60_000;
    let threshold =
        |statistic: &str, window_ms: i64, op: Comparison, threshold: f64| Condition::Threshold {
            statistic: statistic.to_owned(),
            window_ms,
            op,
            threshold,
        };
    let condition = match (index / TYPES) % 6 {
        0 => threshold("mean", minutes(5), Comparison::Above, 1e6),
        1 => threshold("max", minutes(1), Comparison::Above, 1e6),
        2 => threshold("p99", minutes(60), Comparison::Above, 1e6),
        3 => threshold("count", minutes(10), Comparison::Below, 1.0),
        4 => threshold("rate", minutes(5), Comparison::Above, 1e6),
        _ => Condition::Absent {
            for_ms: minutes(10),
        },
    };
    RuleSpec {
        name: format!("rule {index}"),
        measure,
        tags: Default::default(),
        condition,
        for_ms: 60_000,
        interval_ms: 1_000,
        group_by: None,
        labels: Default::default(),
        description: String::new(),
    }
}

/// A counter or a histogram's `_count`/`_sum` from the metrics text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn run(args: &Args, database: Option<String>) -> anyhow::Result<Value> {
    let backend = if database.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let server = Server::start(&args.mymonit, None, database.clone()).await?;
    let seconds = (args.points / TYPES) as i64;
    let now = mymonit_model::time::now_ns() / 1_000_000_000;
    let shift = now - (START + seconds);
    let load_rate = load(&args.generator, args.points, &server, shift).await?;
    server.wait_stored(args.points as u64).await?;
    let store = server.store().await?;
    while store.pending_compaction().await? > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    store.close().await;
    let (_, data) = server.stop();

    let mut settings = mymonit_server::Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: data.path().to_path_buf(),
        metrics_listen: None,
        log_filter: "warn".into(),
        ..mymonit_server::Settings::default()
    };
    settings.database.url = database;
    settings.sources.fetch = false;
    settings.alerting.grace_secs = 0;
    let instance = mymonit_server::Server::build(settings).await?;
    let state = instance.state().clone();
    for index in 0..args.rules {
        let spec = serde_json::to_string(&rule(index))?;
        state
            .alerts
            .create_rule(1, &spec, None, mymonit_model::time::now_ns() / 1_000_000)
            .await?;
    }
    let listener = instance.bind().await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(instance.run(listener, async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before = state.metrics.encode();
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let after = state.metrics.encode();
    let elapsed = started.elapsed().as_secs_f64();
    let name = "mymonit_alert_evaluation_duration_seconds";
    let count =
        metric(&after, &format!("{name}_count")) - metric(&before, &format!("{name}_count"));
    let sum = metric(&after, &format!("{name}_sum")) - metric(&before, &format!("{name}_sum"));
    let errors = state
        .alerts
        .list_rules(1)
        .await?
        .iter()
        .filter(|r| r.rule.last_error.is_some())
        .count();
    let _ = stop.send(());
    serving.await??;
    if count == 0.0 {
        bail!("no rule was evaluated");
    }
    if errors > 0 {
        bail!("{errors} rules failed to evaluate");
    }
    let per_second = count / elapsed;
    let mean_ms = sum / count * 1_000.0;
    println!(
        "{backend:<9} {:>7} rules  {per_second:>9.0} evaluations/s  {mean_ms:>7.2} ms each (mean)  load {load_rate:.0} points/s",
        args.rules
    );
    Ok(json!({
        "backend": backend,
        "points": args.points,
        "rules": args.rules,
        "seconds": elapsed,
        "evaluations": count,
        "evaluations_per_second": per_second,
        "mean_evaluation_ms": mean_ms,
        "concurrency": mymonit_server::settings::AlertingSettings::default().max_concurrent_evaluations,
        "load_points_per_second": load_rate,
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut results = vec![run(&args, None).await?];
    if let Some(url) = &args.database_url {
        let database = mymonit_bench::fresh_database(url).await?;
        results.push(run(&args, Some(database)).await?);
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        &args.out,
        serde_json::to_string_pretty(&json!({
            "benchmark": "alert rule evaluation",
            "machine_cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "results": results,
        }))?,
    )
    .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("results in {}", args.out.display());
    Ok(())
}
