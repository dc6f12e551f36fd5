//! The query benchmark's peers, loaded with the same points and asked the same questions in
//! the same run: PostgreSQL with the plain row table a team would start from, and InfluxDB 1.6.

use std::{path::Path, process::Stdio, time::Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use tokio::io::AsyncReadExt;

use crate::{fresh_database, influx_query, write_all};

/// The generator's first second (2024-01-01T00:00:00Z).
pub const START: i64 = 1_704_067_200;

/// What the benchmark asks every system: the same work, so the figures compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    /// Hourly count/mean/min/max of one type over the whole range.
    Q1,
    /// The same for all four types.
    Q1All,
    /// Hourly p50/p90/p99 of one type over the whole range.
    Q2,
    /// The same for all four types.
    Q2All,
    /// The raw points of one type in one hour.
    Q3,
    /// The last value of each type.
    Q4,
}

/// The benchmark's time range and the hour q3 reads, in epoch seconds.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// First second.
    pub from: i64,
    /// One past the last second.
    pub to: i64,
    /// The start of q3's hour.
    pub hour: i64,
}

/// A system's answer: how long it took (ms, client-side) and how many rows (buckets, points)
/// it held, to check that the systems did the same work.
pub struct Timed {
    pub ms: f64,
    pub rows: usize,
}

/// PostgreSQL with one row per point: `(experiment_id int, type smallint, ts timestamptz,
/// value float8)`, indexed on `(experiment_id, type, ts)`, loaded with COPY.
pub struct PgRows {
    connection: PgConnection,
    /// Seconds the COPY, index and VACUUM ANALYZE took.
    pub load_secs: f64,
    /// Table, index and TOAST bytes.
    pub bytes: u64,
}

impl PgRows {
    /// Loads `points` of the generator (`--seed 42`, format `tsv`) into a fresh database of
    /// the cluster at `server_url`.
    pub async fn load(server_url: &str, generator: &Path, points: usize) -> anyhow::Result<Self> {
        let url = fresh_database(server_url).await?;
        let mut connection = PgConnection::connect(&url).await?;
        sqlx::raw_sql(
            "create table m (experiment_id int not null, type smallint not null,
                             ts timestamptz not null, value float8 not null)",
        )
        .execute(&mut connection)
        .await?;
        let started = Instant::now();
        let mut child = tokio::process::Command::new("python3")
            .arg(generator)
            .args([
                "--n",
                &points.to_string(),
                "--seed",
                "42",
                "--format",
                "tsv",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", generator.display()))?;
        let mut stdout = child.stdout.take().context("generator output")?;
        let mut copy = connection
            .copy_in_raw("copy m (experiment_id, type, ts, value) from stdin")
            .await?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = stdout.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            copy.send(&buffer[..read]).await?;
        }
        let copied = copy.finish().await?;
        if !child.wait().await?.success() || copied != points as u64 {
            bail!("PostgreSQL rows: {copied} of {points} points copied");
        }
        sqlx::raw_sql("create index m_series_ts on m (experiment_id, type, ts)")
            .execute(&mut connection)
            .await?;
        sqlx::raw_sql("vacuum analyze m")
            .execute(&mut connection)
            .await?;
        let load_secs = started.elapsed().as_secs_f64();
        let bytes: i64 = sqlx::query_scalar("select pg_total_relation_size('m')")
            .fetch_one(&mut connection)
            .await?;
        Ok(Self {
            connection,
            load_secs,
            bytes: bytes.max(0) as u64,
        })
    }

    /// Asks one question (`percentile_cont` for q2, `LATERAL … LIMIT 1` for q4).
    pub async fn ask(&mut self, question: Question, span: Span) -> anyhow::Result<Timed> {
        const HOURLY: &str = "date_trunc('hour', ts)";
        let (sql, bounds) = match question {
            Question::Q1 => (
                format!(
                    "select {HOURLY} as h, count(*), avg(value), min(value), max(value) from m
                     where experiment_id = 1 and type = 1
                       and ts >= to_timestamp($1) and ts < to_timestamp($2)
                     group by h order by h"
                ),
                Some((span.from, span.to)),
            ),
            Question::Q1All => (
                format!(
                    "select type, {HOURLY} as h, count(*), avg(value), min(value), max(value)
                     from m where experiment_id = 1
                       and ts >= to_timestamp($1) and ts < to_timestamp($2)
                     group by type, h order by h, type"
                ),
                Some((span.from, span.to)),
            ),
            Question::Q2 => (
                format!(
                    "select {HOURLY} as h,
                            percentile_cont(array[0.5, 0.9, 0.99]) within group (order by value)
                     from m where experiment_id = 1 and type = 1
                       and ts >= to_timestamp($1) and ts < to_timestamp($2)
                     group by h order by h"
                ),
                Some((span.from, span.to)),
            ),
            Question::Q2All => (
                format!(
                    "select type, {HOURLY} as h,
                            percentile_cont(array[0.5, 0.9, 0.99]) within group (order by value)
                     from m where experiment_id = 1
                       and ts >= to_timestamp($1) and ts < to_timestamp($2)
                     group by type, h order by h, type"
                ),
                Some((span.from, span.to)),
            ),
            Question::Q3 => (
                "select ts, value from m where experiment_id = 1 and type = 1
                   and ts >= to_timestamp($1) and ts < to_timestamp($2) order by ts"
                    .to_string(),
                Some((span.hour, span.hour + 3600)),
            ),
            // A skip scan for the types would need a recursive query; the four codes are
            // known, as an application would know its types.
            Question::Q4 => (
                "select t.type, last.ts, last.value
                 from unnest(array[1, 2, 3, 4]::smallint[]) as t(type)
                 cross join lateral (
                     select ts, value from m where experiment_id = 1 and type = t.type
                     order by ts desc limit 1) last"
                    .to_string(),
                None,
            ),
        };
        let started = Instant::now();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some((from, to)) = bounds {
            query = query.bind(from as f64).bind(to as f64);
        }
        let rows = query.fetch_all(&mut self.connection).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(Timed {
            ms,
            rows: rows.len(),
        })
    }
}

/// InfluxDB 1.6 holding the generator's line protocol as it writes it (measurement
/// `measurement`, a keyword of InfluxQL, so quoted in queries; tags `experiment_id` and `type`, field `value`) in the database `bench`.
pub struct Influx {
    client: reqwest::Client,
    url: String,
    /// Points per second `/write` took.
    pub load_rate: f64,
}

impl Influx {
    /// Loads `points` of the generator (`--seed 42`, format `lp`) into `url`'s database
    /// `bench`, 5,000 lines a request from 4 writers.
    pub async fn load(url: &str, generator: &Path, points: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::new();
        client
            .post(format!("{url}/query"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("q=CREATE+DATABASE+bench")
            .send()
            .await?
            .error_for_status()?;
        let lines = crate::generate(generator, points, "lp")?;
        let load_rate = write_all(
            &client,
            &format!("{url}/write?db=bench&precision=s"),
            None,
            &lines,
        )
        .await?;
        Ok(Self {
            client,
            url: url.to_owned(),
            load_rate,
        })
    }

    /// Asks one question in InfluxQL.
    pub async fn ask(&self, question: Question, span: Span) -> anyhow::Result<Timed> {
        const FROM: &str = r#"FROM "measurement""#;
        let range = |from: i64, to: i64| format!("time >= {from}s AND time < {to}s");
        let whole = range(span.from, span.to);
        let one = "experiment_id = '1' AND type = 'hertz'";
        let q1 = r#"count("value"), mean("value"), min("value"), max("value")"#;
        let q2 = r#"percentile("value", 50), percentile("value", 90), percentile("value", 99)"#;
        let q = match question {
            Question::Q1 => {
                format!("SELECT {q1} {FROM} WHERE {one} AND {whole} GROUP BY time(1h)")
            }
            Question::Q1All => format!(
                "SELECT {q1} {FROM} WHERE experiment_id = '1' AND {whole} GROUP BY time(1h), type"
            ),
            Question::Q2 => {
                format!("SELECT {q2} {FROM} WHERE {one} AND {whole} GROUP BY time(1h)")
            }
            Question::Q2All => format!(
                "SELECT {q2} {FROM} WHERE experiment_id = '1' AND {whole} GROUP BY time(1h), type"
            ),
            Question::Q3 => format!(
                r#"SELECT "value" {FROM} WHERE {one} AND {}"#,
                range(span.hour, span.hour + 3600)
            ),
            Question::Q4 => {
                format!(r#"SELECT last("value") {FROM} WHERE experiment_id = '1' GROUP BY type"#)
            }
        };
        let (ms, answer) = influx_query(&self.client, &self.url, None, &q).await?;
        let rows = answer["results"][0]["series"]
            .as_array()
            .map_or(0, |series| {
                series
                    .iter()
                    .map(|one| one["values"].as_array().map_or(0, Vec::len))
                    .sum()
            });
        Ok(Timed { ms, rows })
    }
}

/// The rows of a MyMonit answer: buckets, measures or latest points.
pub fn mymonit_rows(answer: &Value) -> usize {
    ["buckets", "measures", "latest"]
        .iter()
        .find_map(|key| answer[*key].as_array().map(Vec::len))
        .or_else(|| answer["series"][0]["values"].as_array().map(Vec::len))
        .unwrap_or(0)
}
