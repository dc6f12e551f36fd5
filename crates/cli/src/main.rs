//! The `mymonit` binary: parses the command line, sets up logging, loads the configuration
//! and calls the libraries.

mod adapt;
mod audit;
mod migrate;
mod token;
mod user;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mymonit_server::{Server, Settings, demo, settings::LogFormat};
use serde::Serialize;
use tracing_subscriber::EnvFilter;

/// MyMonit collects measurements from experiments and serves them, with statistics and
/// charts, only to the scientists allowed to see them.
///
/// Configuration comes from built-in defaults, then the TOML file given with --config, then
/// MYMONIT_* environment variables (MYMONIT_LISTEN, MYMONIT_DATA_DIR, nested keys with a
/// double underscore such as MYMONIT_AUTH__TOKEN_TTL_SECS; REST_HOST sets the listen host as in
/// the original system), then command-line flags. `mymonit print-config` shows the result.
#[derive(Debug, Parser)]
#[command(name = "mymonit", version, propagate_version = true)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "MYMONIT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Data directory: embedded database, token signing key, demo credentials
    /// [default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Database: sqlite://DIR (the embedded default, in the data directory) or
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE, shared by many instances. Also
    /// MYMONIT_DATABASE_URL, or database.url in the configuration.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (HTTP API and original routes) until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Manage user accounts directly in the database (works beside a running server).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage ingest tokens, the credentials sources push measures with.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Read measures from files or standard input and deliver them over HTTP or AMQP.
    Adapt(adapt::AdaptArgs),
    /// Check the audit trail (works beside a running server).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Copy an embedded deployment (users, experiments, associations, measure types, tokens,
    /// measures, audit trail) into PostgreSQL, with a progress bar, and verify the copy:
    /// row counts, every series' points by count and checksum, the audit chain on the target.
    MigrateData(migrate::MigrateArgs),
    /// Print the configuration in force (defaults, file, environment, flags) as TOML.
    PrintConfig,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,

    /// Log format [default: json].
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,

    /// Consume measures from RabbitMQ at this URL, for example
    /// amqp://guest:guest@127.0.0.1:5672/%2f (amqps:// for TLS). Also MYMONIT_AMQP__URL, or
    /// the original RABBIT_URL, RABBIT_USER and RABBIT_PASSWORD. Exchange, routing key, queue
    /// and dead-letter queue are set in the configuration (amqp.*; RABBIT_EXCHANGE,
    /// RABBIT_ROUTING, RABBIT_QUEUE).
    #[arg(long, value_name = "URL")]
    amqp_url: Option<String>,

    /// Send alerts to this Alertmanager (its base URL, such as http://127.0.0.1:9093);
    /// repeatable, one per member of an Alertmanager cluster. Also alerting.alertmanager_urls.
    #[arg(long, value_name = "URL")]
    alertmanager_url: Vec<String>,

    /// Serve Prometheus metrics at http://HOST:PORT/metrics, on a listener of its own
    /// [default: 127.0.0.1:9464]; `off` for none. Also metrics_listen in the configuration.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_listen: Option<String>,

    /// Also send the JSON log lines to tcp://HOST:PORT (Logstash tcp input with json_lines,
    /// Vector, Fluent Bit). A slow or absent sink never slows requests: lines wait in a
    /// bounded queue and are dropped (and counted) when it is full. Also log_ship.
    #[arg(long, value_name = "tcp://HOST:PORT")]
    log_ship: Option<String>,

    /// Serve HTTPS with this certificate chain (PEM, leaf first) on the API, the UI and the
    /// metrics listener; read again on SIGHUP. Also tls.cert_file, MYMONIT_TLS__CERT_FILE.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM). Also tls.key_file, MYMONIT_TLS__KEY_FILE.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Seed the demo (users, experiments, a week of sample measures) before serving; the
    /// generated passwords are printed once and kept in DATA_DIR/demo-credentials.json.
    /// Running it again adds nothing.
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable lines.
    Pretty,
}

#[derive(Serialize, Default)]
struct AmqpOverride {
    url: String,
}

#[derive(Serialize, Default)]
struct AlertingOverride {
    alertmanager_urls: Vec<String>,
}

#[derive(Serialize, Default)]
struct DatabaseOverride {
    url: String,
}

#[derive(Serialize, Default)]
struct TlsOverride {
    cert_file: PathBuf,
    key_file: PathBuf,
}

#[derive(Serialize, Default)]
struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<DatabaseOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amqp: Option<AmqpOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerting: Option<AlertingOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_ship: Option<String>,
}

fn load_settings(cli: &Cli, mut overrides: Overrides) -> anyhow::Result<Settings> {
    if let Some(url) = &cli.database_url {
        overrides.database = Some(DatabaseOverride { url: url.clone() });
    }
    let overrides = figment::Figment::from(figment::providers::Serialized::defaults(overrides));
    Ok(Settings::load(cli.config.as_deref(), overrides)?)
}

fn init_logging(settings: &Settings, to_stderr: bool) -> anyhow::Result<()> {
    use tracing_subscriber::{Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let local = match (settings.log_format, to_stderr) {
        (LogFormat::Json, false) => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        (LogFormat::Json, true) => fmt::layer().json().with_writer(std::io::stderr).boxed(),
        (LogFormat::Pretty, false) => fmt::layer().boxed(),
        (LogFormat::Pretty, true) => fmt::layer().with_writer(std::io::stderr).boxed(),
    };
    // Shipped lines are JSON whatever the local format.
    let shipped = match &settings.log_ship {
        Some(target) => Some(
            fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_writer(mymonit_server::logship::start(target)?)
                .boxed(),
        ),
        None => None,
    };
    if let Err(err) = tracing_subscriber::registry()
        .with(filter)
        .with(local)
        .with(shipped)
        .try_init()
    {
        eprintln!("mymonit: cannot set up logging: {err}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mymonit: {}", describe(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause once: libraries often repeat their source's text in
/// their own message, which `{:#}` would print again.
fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Adapt(args) = cli.command {
        if !adapt::run(args).await? {
            anyhow::bail!("not every record was delivered and accepted (see above)");
        }
        return Ok(());
    }
    match &cli.command {
        Command::Serve(args) => {
            let settings = load_settings(
                &cli,
                Overrides {
                    database: None,
                    data_dir: cli.data_dir.clone(),
                    listen: args.listen.clone(),
                    amqp: args.amqp_url.clone().map(|url| AmqpOverride { url }),
                    alerting: (!args.alertmanager_url.is_empty()).then(|| AlertingOverride {
                        alertmanager_urls: args.alertmanager_url.clone(),
                    }),
                    metrics_listen: args.metrics_listen.clone(),
                    log_ship: args.log_ship.clone(),
                    tls: args.tls_cert.clone().zip(args.tls_key.clone()).map(
                        |(cert_file, key_file)| TlsOverride {
                            cert_file,
                            key_file,
                        },
                    ),
                    log_format: args.log_format.map(|format| match format {
                        LogFormatArg::Json => LogFormat::Json,
                        LogFormatArg::Pretty => LogFormat::Pretty,
                    }),
                },
            )?;
            init_logging(&settings, false)?;
            serve(settings, args.demo).await
        }
        Command::User(command) => {
            let store = open_store(&cli).await?;
            let result = user::execute(command, store.as_ref()).await;
            store.close().await;
            result
        }
        Command::Audit(command) => {
            let store = open_store(&cli).await?;
            let result = audit::execute(command, store.as_ref()).await;
            store.close().await;
            result
        }
        Command::Token(command) => {
            let store = open_store(&cli).await?;
            let result = token::execute(command, store.as_ref()).await;
            store.close().await;
            result
        }
        Command::MigrateData(args) => {
            let settings = load_settings(
                &cli,
                Overrides {
                    data_dir: cli.data_dir.clone(),
                    ..Default::default()
                },
            )?;
            migrate::run(args, &settings.data_dir).await
        }
        Command::Adapt(_) => unreachable!("handled above"),
        Command::PrintConfig => {
            let settings = load_settings(
                &cli,
                Overrides {
                    data_dir: cli.data_dir.clone(),
                    ..Default::default()
                },
            )?;
            print!("{}", settings.to_toml());
            Ok(())
        }
    }
}

/// The database of the configured data directory, for the commands that work on it directly
/// (beside a running server or without one); they log warnings only, on stderr.
async fn open_store(cli: &Cli) -> anyhow::Result<std::sync::Arc<dyn mymonit_store::Store>> {
    let settings = load_settings(
        cli,
        Overrides {
            data_dir: cli.data_dir.clone(),
            ..Default::default()
        },
    )?;
    // Commands beside the server log warnings to stderr, and ship nothing.
    init_logging(
        &Settings {
            log_filter: "warn".into(),
            log_ship: None,
            ..settings.clone()
        },
        true,
    )?;
    let url = settings.database_url()?;
    mymonit_store::open(&url, &settings.store_options())
        .await
        .with_context(|| format!("cannot open the database {url}"))
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let data_dir = settings.data_dir.clone();
    let tls_enabled = settings.tls.enabled();
    let server = Server::build(settings).await?;
    if demo {
        let outcome = demo::seed(server.state())
            .await
            .context("cannot seed the demo")?;
        print_demo(&outcome, &data_dir);
    }
    let listener = server.bind().await?;
    let addr = listener.local_addr()?;
    let scheme = if tls_enabled { "https" } else { "http" };
    eprintln!("MyMonit is listening on {scheme}://{addr}  (API docs: {scheme}://{addr}/docs)");
    server
        .run(listener, mymonit_server::shutdown_signal())
        .await
}

fn print_demo(outcome: &demo::DemoOutcome, data_dir: &std::path::Path) {
    if outcome.new_credentials.is_empty() {
        eprintln!(
            "Demo data already present; the demo passwords are in {}",
            outcome.credentials_file.display()
        );
    } else {
        println!(
            "Demo accounts (passwords shown once; also in {}):",
            outcome.credentials_file.display()
        );
        println!(
            "  {:<8} {:<10} {:<10} password",
            "user_id", "role", "username"
        );
        for credential in &outcome.new_credentials {
            println!(
                "  {:<8} {:<10} {:<10} {}",
                credential.user_id,
                credential.role.as_str(),
                credential.username,
                credential.password
            );
        }
    }
    if outcome.measures_added > 0 {
        eprintln!(
            "Seeded {} sample measures in {}",
            outcome.measures_added,
            data_dir.display()
        );
    }
}
