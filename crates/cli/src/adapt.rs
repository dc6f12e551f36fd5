//! `mymonit adapt`: reads measures from files or standard input in any supported format and
//! delivers them to MyMonit over HTTP (batched requests with an ingest token) or AMQP
//! (messages with publisher confirms), retrying with backoff, so nothing is lost. `--follow`
//! tails a growing file as the original adapter was used (`tail -f`).
//!
//! Retries cannot double anything: every HTTP batch carries an `Idempotency-Key` and every
//! AMQP message a `message_id`, both kept across retries, and the server stores each once.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lapin::{
    BasicProperties, Connection, ConnectionProperties, ExchangeKind,
    options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions},
    types::FieldTable,
};
use mymonit_formats::{DecodeOptions, Decoded, Format, Record, TimeUnit, json};
use mymonit_model::time::now_ns;
use tokio::sync::mpsc;

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// One number per line (timestamped on arrival) or `TIMESTAMP VALUE`; needs --experiment and --measure.
    Txt,
    /// The original message, an array of them, or concatenated objects.
    Json,
    /// One message per line.
    Ndjson,
    /// CSV with a header naming experiment, measure, timestamp, value.
    Csv,
    /// `<measure>` elements.
    Xml,
    /// InfluxDB line protocol.
    Lp,
}

/// Arguments of `mymonit adapt`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    mymonit adapt --format txt --experiment device-vibrations --measure hertz --follow sensor.log --to http://127.0.0.1:8080 --token mmi_…\n  \
    mymonit adapt --format csv readings.csv --to amqp://guest:guest@127.0.0.1:5672/%2f\n\n\
    The exit code is 0 only when every record was delivered and accepted.")]
pub struct AdaptArgs {
    /// Format of the input.
    #[arg(long, value_enum)]
    format: InputFormat,
    /// Experiment of every record (txt; CSV without an experiment column).
    #[arg(long)]
    experiment: Option<String>,
    /// Measure type of every record (txt; CSV without a measure column).
    #[arg(long)]
    measure: Option<String>,
    /// Unit of numeric timestamps: s, ms, us or ns [default: ns for lp, s otherwise].
    #[arg(long)]
    precision: Option<String>,
    /// CSV delimiter [default: ,].
    #[arg(long)]
    delimiter: Option<char>,
    /// Keep reading the (single) file as it grows, like `tail -f`, until Ctrl-C.
    #[arg(long)]
    follow: bool,
    /// Files to read; none or `-`: standard input.
    files: Vec<PathBuf>,
    /// Where to deliver: http(s)://HOST:PORT (MyMonit's API) or amqp(s)://USER:PASSWORD@HOST:PORT/VHOST.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Ingest token for HTTP.
    #[arg(long, env = "MYMONIT_INGEST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Records per HTTP request or AMQP message (1 gives the original one-measure messages).
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// AMQP exchange.
    #[arg(long, default_value = "mymonit")]
    exchange: String,
    /// AMQP routing key.
    #[arg(long, default_value = "measures")]
    routing_key: String,
    /// Attempts per batch before giving up on it.
    #[arg(long, default_value_t = 10)]
    attempts: u32,
    /// Certificate authorities (PEM) the server's or broker's certificate must chain to, for
    /// https:// and amqps:// [default: the system's].
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for amqps://: RabbitMQ's EXTERNAL mechanism (add
    /// ?auth_mechanism=external to the URL) or its verify_peer.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, PKCS#8).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

enum Item {
    Record(Record),
    Rejected(String),
}

/// A Read that, at the end of the file, waits for more instead of ending (until `stop`).
struct Follow<R> {
    inner: R,
    stop: Arc<AtomicBool>,
}

impl<R: Read> Read for Follow<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let read = self.inner.read(buffer)?;
            if read > 0 || self.stop.load(Ordering::Relaxed) {
                return Ok(read);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.read.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

fn decoder<'a>(
    args: &AdaptArgs,
    reader: Box<dyn BufRead + Send + 'a>,
) -> anyhow::Result<Box<dyn Iterator<Item = Decoded> + Send + 'a>> {
    let format = match args.format {
        InputFormat::Txt => Format::Txt,
        InputFormat::Json => Format::Json,
        InputFormat::Ndjson => Format::Ndjson,
        InputFormat::Csv => Format::Csv,
        InputFormat::Xml => Format::Xml,
        InputFormat::Lp => Format::LineProtocol,
    };
    let unit = match &args.precision {
        Some(text) => text.parse::<TimeUnit>().map_err(anyhow::Error::msg)?,
        None => format.default_unit(),
    };
    let delimiter = match args.delimiter {
        Some(c) if c.is_ascii() => Some(c as u8),
        Some(c) => bail!("--delimiter {c:?} is not an ASCII character"),
        None => None,
    };
    let options = DecodeOptions {
        format,
        unit,
        experiment: args.experiment.clone(),
        measure: args.measure.clone(),
        delimiter,
    };
    mymonit_formats::decoder(reader, &options, now_ns)
        .map_err(|_| anyhow::anyhow!("--format txt needs --experiment and --measure"))
}

/// Where batches go.
enum Sink {
    Http {
        client: reqwest::Client,
        url: String,
        token: String,
    },
    Amqp {
        url: String,
        tls: lapin::tcp::OwnedTLSConfig,
        exchange: String,
        routing_key: String,
        channel: Option<Box<(Connection, lapin::Channel)>>,
    },
}

/// What became of one batch.
struct Delivered {
    accepted: u64,
    rejected: Vec<String>,
}

/// A failure worth retrying, or one that is final.
enum SendError {
    Retry(String),
    Final(String),
}

impl Sink {
    fn new(args: &AdaptArgs) -> anyhow::Result<Self> {
        let to = args.to.trim_end_matches('/');
        if to.starts_with("http://") || to.starts_with("https://") {
            let token = args
                .token
                .clone()
                .context("HTTP delivery needs an ingest token: --token or MYMONIT_INGEST_TOKEN (see `mymonit token create`)")?;
            let url = if to.ends_with("/api/v1/ingest") {
                to.to_string()
            } else {
                format!("{to}/api/v1/ingest")
            };
            let mut client = reqwest::Client::builder().timeout(Duration::from_secs(60));
            if let Some(path) = &args.tls_ca {
                let pem =
                    std::fs::read(path).with_context(|| format!("--tls-ca {}", path.display()))?;
                for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                    .with_context(|| format!("--tls-ca {}: not PEM certificates", path.display()))?
                {
                    client = client.add_root_certificate(certificate);
                }
            }
            let client = client.build()?;
            Ok(Sink::Http { client, url, token })
        } else if to.starts_with("amqp://") || to.starts_with("amqps://") {
            Ok(Sink::Amqp {
                url: args.to.clone(),
                tls: mymonit_server::tls::amqp_tls(
                    args.tls_ca.as_deref(),
                    args.tls_cert.as_deref(),
                    args.tls_key.as_deref(),
                )?,
                exchange: args.exchange.clone(),
                routing_key: args.routing_key.clone(),
                channel: None,
            })
        } else {
            bail!("--to {to:?}: expected an http(s):// or amqp(s):// URL")
        }
    }

    async fn send(&mut self, body: &[u8], key: &str, records: u64) -> Result<Delivered, SendError> {
        match self {
            Sink::Http { client, url, token } => {
                let response = client
                    .post(url.as_str())
                    .bearer_auth(token.as_str())
                    .header("content-type", "application/x-ndjson")
                    .header("idempotency-key", key)
                    .body(body.to_vec())
                    .send()
                    .await
                    .map_err(|err| SendError::Retry(format!("cannot reach {url}: {err}")))?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if status.is_success() {
                    let outcome: serde_json::Value =
                        serde_json::from_str(&text).map_err(|err| {
                            SendError::Final(format!("unexpected answer from {url}: {err}"))
                        })?;
                    let rejected = outcome["rejected"]
                        .as_array()
                        .map(|list| {
                            list.iter()
                                .filter_map(|r| r["error"].as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let rejected_count = outcome["rejected_count"].as_u64().unwrap_or(0);
                    let mut rejected: Vec<String> = rejected;
                    if rejected_count as usize > rejected.len() {
                        rejected.resize(
                            rejected_count as usize,
                            "(rejected; reason not listed)".to_string(),
                        );
                    }
                    return Ok(Delivered {
                        accepted: outcome["accepted"].as_u64().unwrap_or(0),
                        rejected,
                    });
                }
                let detail = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|problem| problem["detail"].as_str().map(str::to_string))
                    .unwrap_or(text);
                let message = format!("{url} answered {status}: {detail}");
                if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                    Err(SendError::Retry(message))
                } else {
                    Err(SendError::Final(message))
                }
            }
            Sink::Amqp {
                url,
                tls,
                exchange,
                routing_key,
                channel,
            } => {
                if channel.is_none() {
                    let runtime = lapin::runtime::default_runtime()
                        .map_err(|err| SendError::Final(err.to_string()))?;
                    let connection = Connection::connect_with_config(
                        url,
                        ConnectionProperties::default(),
                        tls.clone(),
                        runtime,
                    )
                    .await
                    .map_err(|err| {
                        // A refused certificate will be refused again: say so at once.
                        match mymonit_server::tls::certificate_problem(&err) {
                            Some(problem) => SendError::Final(format!(
                                "the broker's TLS handshake failed: {problem} (check --tls-ca, \
                                 the host name in --to, --tls-cert/--tls-key)"
                            )),
                            None => SendError::Retry(format!("cannot reach the broker: {err}")),
                        }
                    })?;
                    let opened = connection
                        .create_channel()
                        .await
                        .map_err(|err| SendError::Retry(err.to_string()))?;
                    opened
                        .confirm_select(ConfirmSelectOptions::default())
                        .await
                        .map_err(|err| SendError::Retry(err.to_string()))?;
                    opened
                        .exchange_declare(
                            exchange.as_str().into(),
                            ExchangeKind::Direct,
                            ExchangeDeclareOptions {
                                durable: true,
                                ..Default::default()
                            },
                            FieldTable::default(),
                        )
                        .await
                        .map_err(|err| {
                            SendError::Final(format!("cannot declare exchange {exchange}: {err}"))
                        })?;
                    *channel = Some(Box::new((connection, opened)));
                }
                let Some((_, open)) = channel.as_deref() else {
                    return Err(SendError::Retry("no channel".into()));
                };
                let properties = BasicProperties::default()
                    .with_message_id(key.into())
                    .with_content_type("application/x-ndjson".into())
                    .with_delivery_mode(2);
                let confirmed = async {
                    open.basic_publish(
                        exchange.as_str().into(),
                        routing_key.as_str().into(),
                        BasicPublishOptions::default(),
                        body,
                        properties,
                    )
                    .await?
                    .await
                }
                .await;
                match confirmed {
                    Ok(confirmation) if confirmation.is_ack() => Ok(Delivered {
                        accepted: records,
                        rejected: Vec::new(),
                    }),
                    Ok(_) => {
                        *channel = None;
                        Err(SendError::Retry(
                            "the broker refused the message (nack)".into(),
                        ))
                    }
                    Err(err) => {
                        *channel = None;
                        Err(SendError::Retry(format!("publishing failed: {err}")))
                    }
                }
            }
        }
    }
}

#[derive(Default)]
struct Summary {
    delivered: u64,
    rejected: Vec<String>,
    rejected_count: u64,
    undelivered: u64,
    failures: Vec<String>,
}

impl Summary {
    fn reject(&mut self, reason: String) {
        self.rejected_count += 1;
        if self.rejected.len() < 20 {
            self.rejected.push(reason);
        }
    }
}

async fn deliver(sink: &mut Sink, batch: &mut Vec<Record>, attempts: u32, summary: &mut Summary) {
    if batch.is_empty() {
        return;
    }
    let mut body = Vec::with_capacity(batch.len() * 96);
    if let Err(err) = json::encode(batch, &mut body) {
        summary.undelivered += batch.len() as u64;
        summary
            .failures
            .push(format!("cannot encode a batch: {err}"));
        batch.clear();
        return;
    }
    let key = uuid::Uuid::new_v4().to_string();
    let count = batch.len() as u64;
    let mut backoff = Duration::from_millis(250);
    for attempt in 1..=attempts.max(1) {
        match sink.send(&body, &key, count).await {
            Ok(delivered) => {
                summary.delivered += delivered.accepted;
                for reason in delivered.rejected {
                    summary.reject(reason);
                }
                batch.clear();
                return;
            }
            Err(SendError::Retry(reason)) if attempt < attempts => {
                eprintln!(
                    "mymonit adapt: {reason}; retrying in {:.1} s",
                    backoff.as_secs_f64()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(SendError::Retry(reason) | SendError::Final(reason)) => {
                summary.undelivered += count;
                summary.failures.push(reason);
                batch.clear();
                return;
            }
        }
    }
}

/// Runs the adapter; `Ok(true)` when everything was delivered and accepted.
pub async fn run(args: AdaptArgs) -> anyhow::Result<bool> {
    let mut sink = Sink::new(&args)?;
    let inputs: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files
            .iter()
            .map(|f| (f.as_os_str() != "-").then(|| f.clone()))
            .collect()
    };
    if args.follow && inputs.len() != 1 {
        bail!("--follow takes exactly one file");
    }
    for input in inputs.iter().flatten() {
        if !input.is_file() {
            bail!("{} is not a readable file", input.display());
        }
    }
    // Fail on bad options before reading anything.
    drop(decoder(&args, Box::new(std::io::empty()))?);

    let total: Option<u64> = (!args.follow && inputs.iter().all(Option::is_some)).then(|| {
        inputs
            .iter()
            .flatten()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    });
    let progress = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    };
    let read_bytes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (sender, mut receiver) = mpsc::channel::<Item>(20_000);
    let args = Arc::new(args);
    let reader = {
        let args = args.clone();
        let read_bytes = read_bytes.clone();
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for input in inputs {
                let raw: Box<dyn Read + Send> = match &input {
                    Some(path) => Box::new(
                        File::open(path)
                            .with_context(|| format!("cannot open {}", path.display()))?,
                    ),
                    None => Box::new(std::io::stdin()),
                };
                let raw: Box<dyn Read + Send> = if args.follow {
                    Box::new(Follow {
                        inner: raw,
                        stop: stop.clone(),
                    })
                } else {
                    raw
                };
                let counted = Counting {
                    inner: raw,
                    read: read_bytes.clone(),
                };
                let items = decoder(
                    &args,
                    Box::new(BufReader::with_capacity(256 * 1024, counted)),
                )?;
                for item in items {
                    let item = match item {
                        Ok(record) => Item::Record(record),
                        Err(err) => Item::Rejected(match &input {
                            Some(path) => format!("{}: {err}", path.display()),
                            None => format!("stdin: {err}"),
                        }),
                    };
                    if sender.blocking_send(item).is_err() {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })
    };
    // While following, Ctrl-C ends the input: what was read is delivered and summed up.
    // Otherwise Ctrl-C keeps its usual meaning and stops the adapter at once.
    if args.follow {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        });
    }

    let mut summary = Summary::default();
    let mut batch: Vec<Record> = Vec::with_capacity(args.batch_size);
    let batch_size = args.batch_size.max(1);
    loop {
        // While following, a quiet input still sends what it has after a moment.
        let next = if args.follow && !batch.is_empty() {
            match tokio::time::timeout(Duration::from_millis(500), receiver.recv()).await {
                Ok(item) => item,
                Err(_) => {
                    deliver(&mut sink, &mut batch, args.attempts, &mut summary).await;
                    continue;
                }
            }
        } else {
            receiver.recv().await
        };
        match next {
            Some(Item::Record(record)) => {
                batch.push(record);
                if batch.len() >= batch_size {
                    deliver(&mut sink, &mut batch, args.attempts, &mut summary).await;
                    progress.set_position(read_bytes.load(Ordering::Relaxed));
                    progress.set_message(format!("{} delivered", summary.delivered));
                }
            }
            Some(Item::Rejected(reason)) => summary.reject(reason),
            None => break,
        }
    }
    deliver(&mut sink, &mut batch, args.attempts, &mut summary).await;
    progress.finish_and_clear();
    reader.await.context("the reader failed")??;
    if let Sink::Amqp {
        channel: Some(open),
        ..
    } = &sink
    {
        let _ = open.0.close(200, "done".into()).await;
    }

    eprintln!(
        "mymonit adapt: {} delivered, {} rejected, {} not delivered",
        summary.delivered, summary.rejected_count, summary.undelivered
    );
    for reason in &summary.rejected {
        eprintln!("  rejected: {reason}");
    }
    if summary.rejected_count > summary.rejected.len() as u64 {
        eprintln!(
            "  … and {} more rejections",
            summary.rejected_count - summary.rejected.len() as u64
        );
    }
    for failure in &summary.failures {
        eprintln!("  not delivered: {failure}");
    }
    Ok(summary.rejected_count == 0 && summary.undelivered == 0)
}
