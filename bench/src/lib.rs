//! MyMonit's benchmarks (`ingest-bench`, `query-bench`, `dashboard-bench`, `alerts-bench`)
//! and what they share: a MyMonit server on a fresh data directory, the data generator of the
//! shared benchmark kit and loading its points, medians.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use mymonit_store::Store;
use serde_json::Value;
use serde_json::json;

pub mod peers;

pub const PASSWORD: &str = "Vq7pLm2xZr9t-Hk4w-Qs8y";

/// A server on a fresh data directory, with the experiment `bench` and an ingest token.
pub struct Server {
    child: Running,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data directory, removed when dropped.
    pub data: tempfile::TempDir,
    /// An ingest token for `bench`.
    pub token: String,
    /// The PostgreSQL database it uses (`None`: SQLite in `data`).
    pub database: Option<String>,
}

/// A server process, killed if it is still running when dropped (a benchmark that fails
/// half-way leaves no server behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Creates a fresh database through `server_url` (a PostgreSQL role that may create
/// databases); returns its URL.
pub async fn fresh_database(server_url: &str) -> anyhow::Result<String> {
    static DATABASES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "mymonit_bench_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    Ok(mymonit_store::PgStore::create_database(server_url, &name).await?)
}

impl Server {
    /// Starts a server on a fresh data directory with an admin, the experiment `bench` and an
    /// ingest token; with `amqp` (url, name prefix) it also consumes.
    /// With `database` (a PostgreSQL URL), on that database instead of SQLite.
    pub async fn start(
        binary: &Path,
        amqp: Option<(&str, &str)>,
        database: Option<String>,
    ) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let dir = data.path().to_str().context("temp path")?.to_string();
        let mut add = Command::new(binary);
        if let Some(url) = &database {
            add.arg("--database-url").arg(url);
        }
        let mut add = add
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
        let (child, base) = Self::launch(binary, &dir, &data, amqp, database.as_deref()).await?;
        let client = reqwest::Client::new();
        let admin = login(&base, "bench").await?;
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
            database,
        })
    }

    /// Starts `mymonit serve` on `dir` and waits until it answers.
    async fn launch(
        binary: &Path,
        dir: &str,
        data: &tempfile::TempDir,
        amqp: Option<(&str, &str)>,
        database: Option<&str>,
    ) -> anyhow::Result<(Running, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(binary);
        command.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            dir,
        ]);
        if let Some(url) = database {
            command.arg("--database-url").arg(url);
        }
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
        let child = Running(
            command
                .env("RUST_LOG", "warn")
                .env("MYMONIT_METRICS_LISTEN", "off")
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?,
        );
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.get(format!("{base}/readyz")).send().await.is_err() {
            if Instant::now() > deadline {
                bail!("the server did not start");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok((child, base))
    }

    /// Starts a server again on the data directory of a stopped one.
    pub async fn resume(
        binary: &Path,
        data: tempfile::TempDir,
        database: Option<String>,
    ) -> anyhow::Result<Self> {
        let dir = data.path().to_str().context("temp path")?.to_string();
        let (child, base) = Self::launch(binary, &dir, &data, None, database.as_deref()).await?;
        Ok(Self {
            child,
            base,
            data,
            token: String::new(),
            database,
        })
    }

    /// The server's store, opened beside it.
    pub async fn store(&self) -> anyhow::Result<std::sync::Arc<dyn Store>> {
        let url = match &self.database {
            Some(url) => mymonit_store::DatabaseUrl::Postgres(url.clone()),
            None => mymonit_store::DatabaseUrl::Sqlite(self.data.path().to_path_buf()),
        };
        Ok(mymonit_store::open(&url, &mymonit_store::OpenOptions::default()).await?)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The server's resident memory now (VmRSS), in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.0.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    /// Stops the server; returns its peak resident memory (VmHWM) in MiB and the data
    /// directory.
    pub fn stop(mut self) -> (f64, tempfile::TempDir) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.0.id()))
            .unwrap_or_default();
        let peak_kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0.0);
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.0.id().to_string())
            .status();
        let _ = self.child.0.wait();
        (peak_kib / 1024.0, self.data)
    }

    /// Waits until the store holds `expected` measures; returns when it does.
    pub async fn wait_stored(&self, expected: u64) -> anyhow::Result<()> {
        let store = self.store().await?;
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

/// Runs the generator with seed 42; one string per line.
pub fn generate(generator: &Path, points: usize, format: &str) -> anyhow::Result<Vec<String>> {
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

/// Signs in with the bench password; returns the access token.
pub async fn login(base: &str, username: &str) -> anyhow::Result<String> {
    let reply: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    Ok(reply["access_token"]
        .as_str()
        .with_context(|| format!("{username} could not sign in: {reply}"))?
        .to_string())
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Lines per ingest request.
const BATCH_LINES: usize = 10_000;

/// Streams the generator's line protocol (`--seed 42`) into the server, 4 requests in
/// flight, every timestamp moved by `shift_secs`; returns points per second.
pub async fn load(
    generator_path: &Path,
    points: usize,
    server: &Server,
    shift_secs: i64,
) -> anyhow::Result<f64> {
    let mut generator = Command::new("python3")
        .arg(generator_path)
        .args([
            "--n",
            &points.to_string(),
            "--seed",
            "42",
            "--format",
            "mlp",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", generator_path.display()))?;
    let stdout = generator.stdout.take().context("generator stdout")?;
    let (send, receive) = tokio::sync::mpsc::channel::<String>(8);
    let reader = std::thread::spawn(move || -> anyhow::Result<()> {
        let mut body = String::new();
        let mut lines = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            match line.rsplit_once(' ') {
                Some((rest, seconds)) if shift_secs != 0 => {
                    let seconds: i64 = seconds.parse().context("a line without its time")?;
                    body.push_str(rest);
                    body.push(' ');
                    body.push_str(&(seconds + shift_secs).to_string());
                }
                _ => body.push_str(&line),
            }
            body.push('\n');
            lines += 1;
            if lines == BATCH_LINES {
                send.blocking_send(std::mem::take(&mut body))?;
                lines = 0;
            }
        }
        if !body.is_empty() {
            send.blocking_send(body)?;
        }
        Ok(())
    });
    let receive = std::sync::Arc::new(tokio::sync::Mutex::new(receive));
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/ingest?precision=s", server.base);
    let started = Instant::now();
    let progress = indicatif::ProgressBar::new(points as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "loading {bar:40} {pos}/{len} points ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (receive, client, url, token, progress) = (
            receive.clone(),
            client.clone(),
            url.clone(),
            server.token.clone(),
            progress.clone(),
        );
        writers.push(tokio::spawn(async move {
            loop {
                let Some(body) = receive.lock().await.recv().await else {
                    return anyhow::Ok(());
                };
                let lines = body.lines().count() as u64;
                let reply = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "text/plain")
                    .body(body)
                    .send()
                    .await?;
                if !reply.status().is_success() {
                    bail!("ingest failed: {} {}", reply.status(), reply.text().await?);
                }
                progress.inc(lines);
            }
        }));
    }
    for writer in writers {
        writer.await??;
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    if !generator.wait()?.success() {
        bail!("the generator failed");
    }
    progress.finish_and_clear();
    Ok(points as f64 / started.elapsed().as_secs_f64())
}

/// Makes the scientist S900, associated with `bench`, and signs them in.
pub async fn scientist_token(base: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let admin = login(base, "bench").await?;
    client
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(&admin)
        .json(
            &json!({"user_id": "S900", "name": "Bench Scientist", "username": "scientist",
            "email": "scientist@home.cern", "role": "SCIENTIST", "password": PASSWORD}),
        )
        .send()
        .await?
        .error_for_status()?;
    client
        .post(format!("{base}/api/v1/associations"))
        .bearer_auth(&admin)
        .json(&json!({"experiment_id": 1, "user_id": "S900"}))
        .send()
        .await?
        .error_for_status()?;
    login(base, "scientist").await
}

/// Lines per `/write` request.
const WRITE_BATCH: usize = 5_000;

/// Writes line protocol to an InfluxDB-compatible `/write` URL, 5,000 lines a request from 4
/// writers, with a progress bar; returns lines per second.
pub async fn write_all(
    client: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
    lines: &[String],
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let progress = indicatif::ProgressBar::new(lines.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "loading {bar:40} {pos}/{len} ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let batches: Vec<String> = lines
        .chunks(WRITE_BATCH)
        .map(|batch| batch.join("\n"))
        .collect();
    let batches = std::sync::Arc::new(tokio::sync::Mutex::new(batches.into_iter()));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (client, url, authorization, batches, progress) = (
            client.clone(),
            url.to_owned(),
            authorization.map(str::to_owned),
            batches.clone(),
            progress.clone(),
        );
        writers.push(tokio::spawn(async move {
            loop {
                let Some(body) = batches.lock().await.next() else {
                    return anyhow::Ok(());
                };
                let count = body.lines().count() as u64;
                let mut request = client.post(&url).body(body);
                if let Some(value) = &authorization {
                    request = request.header("authorization", value);
                }
                let reply = request.send().await?;
                if reply.status() != reqwest::StatusCode::NO_CONTENT {
                    bail!("{url}: {} {}", reply.status(), reply.text().await?);
                }
                progress.inc(count);
            }
        }));
    }
    for writer in writers {
        writer.await??;
    }
    progress.finish_and_clear();
    Ok(lines.len() as f64 / started.elapsed().as_secs_f64())
}

/// Runs one InfluxQL query (`GET /query?db=bench&epoch=ms`); returns the milliseconds it took,
/// client-side, and the answer.
pub async fn influx_query(
    client: &reqwest::Client,
    base: &str,
    authorization: Option<&str>,
    q: &str,
) -> anyhow::Result<(f64, Value)> {
    let url = format!(
        "{base}/query?db=bench&epoch=ms&q={}",
        q.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' =>
                    (b as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    );
    let mut request = client.get(url);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let started = Instant::now();
    let reply = request.send().await?;
    let status = reply.status();
    let body: Value = reply.json().await?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() || body["results"][0].get("error").is_some() {
        bail!("{base}: {q}: {status} {body}");
    }
    Ok((elapsed, body))
}
