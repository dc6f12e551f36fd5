//! Configuration: built-in defaults, then an optional TOML file (`--config`), then
//! `MYMONIT_*` environment variables (`__` between nested keys, for example
//! `MYMONIT_AUTH__TOKEN_TTL_SECS`), then the original deployment's `REST_HOST`, then
//! command-line flags. `mymonit print-config` shows the result.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

/// Everything the server can be told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address and port of the HTTP API (`REST_HOST` sets the host part).
    pub listen: String,
    /// Directory for the embedded database, the token signing key and demo credentials.
    pub data_dir: PathBuf,
    /// The database (`database.url`, `--database-url`, `MYMONIT_DATABASE_URL`).
    pub database: DatabaseSettings,
    /// `json` (one JSON object per line, the default) or `pretty`.
    pub log_format: LogFormat,
    /// Log filter in `RUST_LOG` syntax, for example `info` or `mymonit_server=debug,info`.
    pub log_filter: String,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Largest ingest body (`POST /api/v1/ingest`) accepted, in bytes.
    pub max_ingest_bytes: usize,
    /// Time allowed to produce a response's headers, in seconds.
    pub request_timeout_secs: u64,
    /// Built-in sign-in and tokens.
    pub auth: AuthSettings,
    /// Trusted external identity providers (OIDC, Firebase, Keycloak).
    pub oidc: Vec<OidcSettings>,
    /// Measures listing.
    pub api: ApiSettings,
    /// Bounds on what a pushed point may carry.
    pub ingest: IngestSettings,
    /// The AMQP consumer (RabbitMQ); off unless `amqp.url` is set.
    pub amqp: AmqpSettings,
    /// Compaction of recent points into chunks.
    pub storage: StorageSettings,
    /// Fetching from pull sources (Flask-MonitoringDashboards, Prometheus pages).
    pub sources: SourcesSettings,
    /// Alert rules' evaluation and where their notifications go.
    pub alerting: AlertingSettings,
    /// The address users reach MyMonit at (`https://monit.example.org`), for links in alert
    /// notifications; unset: `http://` and `listen`.
    pub external_url: Option<String>,
    /// Where to serve Prometheus metrics (`/metrics`), on a listener of its own; `off` (or
    /// empty) for none. Keep it on loopback or a private network.
    pub metrics_listen: Option<String>,
    /// Also send the JSON log lines to `tcp://HOST:PORT` (Logstash tcp/json_lines, Vector,
    /// Fluent Bit); off when unset.
    pub log_ship: Option<String>,
    /// Reverse proxies (addresses or CIDR blocks) whose `Forwarded` / `X-Forwarded-For`
    /// headers name the client; from anyone else those headers are ignored.
    pub trusted_proxies: Vec<String>,
    /// Which header of a trusted proxy names the client: `auto` (`Forwarded` when present,
    /// else `X-Forwarded-For`), `forwarded` or `x-forwarded-for`. Name the one your proxy
    /// sets when it passes the other on from the client as it came (ingress-nginx appends to
    /// `X-Forwarded-For` but forwards a client's `Forwarded` untouched).
    pub forwarded_header: ForwardedHeader,
    /// HTTPS on the API, the UI and the metrics listener; plain HTTP when unset.
    pub tls: TlsSettings,
}

/// The header a trusted proxy names the client in.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `Forwarded` (RFC 7239) when present, else `X-Forwarded-For`.
    #[default]
    Auto,
    /// `Forwarded` only.
    Forwarded,
    /// `X-Forwarded-For` only.
    XForwardedFor,
}

/// The server's certificate (PEM files, read again on SIGHUP).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, leaf first (`--tls-cert`, `MYMONIT_TLS__CERT_FILE`).
    pub cert_file: Option<PathBuf>,
    /// Its private key: PKCS#8, PKCS#1 or SEC1 (`--tls-key`, `MYMONIT_TLS__KEY_FILE`).
    pub key_file: Option<PathBuf>,
    /// Certificate authorities whose client certificates the metrics listener requires;
    /// none: the metrics listener asks for no client certificate.
    pub metrics_client_ca_file: Option<PathBuf>,
}

impl TlsSettings {
    /// Whether HTTPS is on.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// Where and how to consume measures from RabbitMQ.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    /// `amqp://user:password@host:5672/%2f` (or `amqps://`); none: no consumer. For a
    /// RabbitMQ cluster, the nodes' URLs separated by commas: a lost connection moves on to
    /// the next node.
    pub url: Option<String>,
    /// `classic`, or `quorum` (replicated across a RabbitMQ cluster's nodes) for the queue
    /// and the dead-letter queue.
    pub queue_type: QueueType,
    /// Durable exchange the sources publish to.
    pub exchange: String,
    /// Routing key binding the queue to the exchange.
    pub routing_key: String,
    /// Durable queue consumed.
    pub queue: String,
    /// Durable queue receiving messages that cannot be stored, with header `x-mymonit-error`.
    pub dead_letter_queue: String,
    /// Unacknowledged messages the broker may send ahead (the prefetch window). Their bodies
    /// wait in memory: with large messages, this window is most of the consumer's memory.
    pub prefetch: u16,
    /// Most messages stored in one transaction.
    pub batch_size: usize,
    /// A batch closes once its messages' bodies hold this many bytes (the measures of a
    /// batch are decoded together, in memory, before its transaction).
    pub batch_bytes: usize,
    /// Longest wait for a batch to fill before storing what has come, in milliseconds.
    pub batch_wait_ms: u64,
    /// For `amqps://`: the certificate authorities (PEM) the broker's certificate must chain
    /// to; none: the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// For `amqps://`: a client certificate (PEM), for the broker's `EXTERNAL` mechanism
    /// (add `?auth_mechanism=external` to the URL) or its `verify_peer`.
    pub tls_cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM, PKCS#8).
    pub tls_key_file: Option<PathBuf>,
}

/// The kind of RabbitMQ queue MyMonit declares.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// A classic queue (one node).
    #[default]
    Classic,
    /// A quorum queue: replicated, survives the loss of a minority of nodes.
    Quorum,
}

impl QueueType {
    /// The `x-queue-type` argument (none for classic, the broker's default).
    pub fn argument(self) -> Option<&'static str> {
        match self {
            QueueType::Classic => None,
            QueueType::Quorum => Some("quorum"),
        }
    }
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: None,
            queue_type: QueueType::Classic,
            exchange: "mymonit".into(),
            routing_key: "measures".into(),
            queue: "measures".into(),
            dead_letter_queue: "measures.dead".into(),
            // 250 × 1-measure messages keeps the original format's throughput (as 2,000
            // did); 250 × 1,000-measure messages (~90 KB each) is ~22 MB waiting.
            prefetch: 250,
            batch_size: 1000,
            batch_bytes: 2 << 20,
            batch_wait_ms: 5,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// The URL with its password replaced by `***`, for logs.
pub use mymonit_store::redact_password as redact_url;

/// The database.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://DIR` (the embedded default) or `postgres://USER:PASSWORD@HOST:PORT/DB`
    /// (many instances sharing one database); unset: SQLite in `data_dir`.
    pub url: Option<String>,
    /// Most connections each instance opens (PostgreSQL).
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
        }
    }
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl std::fmt::Debug for AmqpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSettings")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("queue", &self.queue)
            .field("queue_type", &self.queue_type)
            .field("dead_letter_queue", &self.dead_letter_queue)
            .field("prefetch", &self.prefetch)
            .field("batch_size", &self.batch_size)
            .field("batch_bytes", &self.batch_bytes)
            .finish_non_exhaustive()
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON lines for log shippers.
    #[default]
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

/// Built-in sign-in and token settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// `iss` of the tokens MyMonit signs.
    pub issuer: String,
    /// `aud` of the tokens MyMonit signs and accepts.
    pub audience: String,
    /// Lifetime of a token, in seconds.
    pub token_ttl_secs: u64,
    /// Lifetime of a web UI session, in seconds (a dashboard left open through the night
    /// stays signed in).
    pub session_ttl_secs: u64,
    /// Failed sign-ins allowed per username and client address within the window.
    pub max_failed_logins: u32,
    /// Failed sign-ins allowed per client address (any username) within the window.
    pub max_failed_logins_per_client: u32,
    /// Window over which failed sign-ins are counted, in seconds.
    pub failed_login_window_secs: u64,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Mark the web UI's session cookie `Secure` (sent over HTTPS only). Set it when MyMonit
    /// is served through a TLS proxy; a request with `X-Forwarded-Proto: https` gets a
    /// `Secure` cookie regardless.
    pub secure_cookies: bool,
    /// The Ed25519 key (PKCS#8, DER) MyMonit signs its tokens with. Every instance behind
    /// one load balancer must have the same key (or a token from one is refused by the
    /// others). Unset: `DATA_DIR/jwt-signing-key.ed25519.pk8`, created on first start.
    pub signing_key_file: Option<PathBuf>,
    /// Keys signed with before the current one: still verified and published in JWKS, never
    /// signed with. Keep a retired key here until the tokens it signed have expired.
    pub previous_signing_key_files: Vec<PathBuf>,
}

/// One trusted external issuer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// Expected `iss`, for example `https://securetoken.google.com/my-project`.
    pub issuer: String,
    /// Where its public keys are published (JWKS).
    pub jwks_url: String,
    /// Expected `aud`.
    pub audience: String,
    /// Claim holding the username MyMonit knows the user by (Firebase: `sub`, the uid).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Accepted signature algorithms.
    #[serde(default = "default_oidc_algorithms")]
    pub algorithms: Vec<String>,
}

/// Measures listing limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Page size when the client gives no `limit`.
    pub default_page_size: u32,
    /// Largest `limit` accepted.
    pub max_page_size: u32,
    /// Most buckets a statistics request may produce.
    pub max_buckets: usize,
    /// Most points a chart series request may ask for.
    pub max_series_points: usize,
    /// Most distinct statistics one request may name.
    pub max_statistics: usize,
    /// Most figures one statistics answer may hold: buckets × statistics × groups.
    pub max_stats_cells: usize,
    /// Statistics, boxplot and chart requests one user may have computed at once.
    pub max_concurrent_stats_per_user: usize,
}

/// Bounds on the tags of pushed points (every path: HTTP, AMQP, the adapter's targets).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// Most tags one point may carry (at most 1,000 are read from a CSV row whatever this
    /// says).
    pub max_tags_per_point: usize,
    /// Longest tag key, in bytes.
    pub max_tag_key_bytes: usize,
    /// Longest tag value, in bytes.
    pub max_tag_value_bytes: usize,
    /// Most series (measure type × tag set) one experiment may have; points that would make
    /// a new series beyond it are refused.
    pub max_series_per_experiment: u64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_tags_per_point: 32,
            max_tag_key_bytes: 128,
            max_tag_value_bytes: 256,
            max_series_per_experiment: 10_000,
        }
    }
}

/// The time-series store's background work.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Pause between compaction passes, in milliseconds.
    pub compact_interval_ms: u64,
    /// Most recent points compacted in one transaction (the writer waits meanwhile).
    pub compact_batch_points: usize,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            compact_interval_ms: 1000,
            compact_batch_points: 65_536,
        }
    }
}

/// Fetching from pull sources.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesSettings {
    /// Whether this instance fetches (every instance may: each source is fetched by one).
    pub fetch: bool,
    /// Most fetches this instance runs at once.
    pub max_concurrent_fetches: usize,
    /// Time allowed for one fetch (connecting, reading the answer), in seconds.
    pub fetch_timeout_secs: u64,
    /// Largest answer read from a source, in bytes.
    pub max_response_bytes: usize,
    /// How much of a dashboard's history one fetch loads while catching up, in seconds.
    pub history_window_secs: i64,
}

impl Default for SourcesSettings {
    fn default() -> Self {
        Self {
            fetch: true,
            max_concurrent_fetches: 4,
            fetch_timeout_secs: 10,
            max_response_bytes: 64 * 1024 * 1024,
            history_window_secs: 6 * 3600,
        }
    }
}

/// Alert rules' evaluation and where their notifications go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingSettings {
    /// Whether this instance evaluates rules and sends notifications (every instance may:
    /// each rule is evaluated by one at a time).
    pub evaluate: bool,
    /// Alertmanagers to send alerts to (`http://127.0.0.1:9093`; `--alertmanager-url`,
    /// repeatable). Each receives every alert, as Prometheus sends to an Alertmanager cluster.
    pub alertmanager_urls: Vec<String>,
    /// Webhooks to send alerts to (a JSON body, signed with HMAC-SHA256 when a secret is set).
    pub webhooks: Vec<WebhookSettings>,
    /// How late a point may arrive and still count: each evaluation looks at the window
    /// ending this many seconds ago, so a point on its way does not make an alert flap.
    pub grace_secs: u64,
    /// Most rules this instance evaluates at once.
    pub max_concurrent_evaluations: usize,
    /// Time allowed for one notification request, in seconds.
    pub timeout_secs: u64,
    /// A notification not delivered after this many seconds is given up (and logged).
    pub give_up_after_secs: u64,
    /// CA certificates (PEM) that Alertmanagers' and webhooks' HTTPS certificates chain to,
    /// beside the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// A client certificate (PEM) for receivers that ask for one.
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub tls_key_file: Option<PathBuf>,
}

impl Default for AlertingSettings {
    fn default() -> Self {
        Self {
            evaluate: true,
            alertmanager_urls: Vec::new(),
            webhooks: Vec::new(),
            grace_secs: 5,
            max_concurrent_evaluations: 4,
            timeout_secs: 10,
            give_up_after_secs: 86_400,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// A webhook that receives alerts.
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where to POST.
    pub url: String,
    /// Signs each body: `X-MyMonit-Signature: sha256=HEX(HMAC-SHA256(secret, body))`.
    pub secret: Option<String>,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

fn default_username_claim() -> String {
    "sub".into()
}

fn default_oidc_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

/// Where metrics are served unless configured otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

impl Settings {
    /// Where users reach MyMonit, without a trailing slash (`external_url`, or `http://` and
    /// the listen address).
    pub fn external_url(&self) -> String {
        match &self.external_url {
            Some(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
            _ => {
                let scheme = if self.tls.cert_file.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{}", self.listen)
            }
        }
    }

    /// The metrics address, if metrics are on.
    pub fn metrics_address(&self) -> Option<&str> {
        self.metrics_listen
            .as_deref()
            .map(str::trim)
            .filter(|address| !address.is_empty() && !address.eq_ignore_ascii_case("off"))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database: DatabaseSettings::default(),
            log_format: LogFormat::Json,
            log_filter: "info".into(),
            max_body_bytes: 1024 * 1024,
            max_ingest_bytes: 64 * 1024 * 1024,
            request_timeout_secs: 30,
            auth: AuthSettings::default(),
            oidc: Vec::new(),
            api: ApiSettings::default(),
            amqp: AmqpSettings::default(),
            ingest: IngestSettings::default(),
            storage: StorageSettings::default(),
            sources: SourcesSettings::default(),
            alerting: AlertingSettings::default(),
            external_url: None,
            metrics_listen: Some(DEFAULT_METRICS_LISTEN.into()),
            log_ship: None,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::Auto,
            tls: TlsSettings::default(),
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: "mymonit".into(),
            audience: "mymonit".into(),
            token_ttl_secs: 3600,
            session_ttl_secs: 43_200,
            max_failed_logins: 5,
            max_failed_logins_per_client: 50,
            failed_login_window_secs: 900,
            leeway_secs: 30,
            secure_cookies: false,
            signing_key_file: None,
            previous_signing_key_files: Vec::new(),
        }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            default_page_size: 1000,
            max_page_size: 10_000,
            max_buckets: 100_000,
            max_series_points: 100_000,
            max_statistics: 32,
            max_stats_cells: 500_000,
            max_concurrent_stats_per_user: 2,
        }
    }
}

/// Configuration that cannot be used, with what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file, an environment variable or a flag holds a bad value.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// `--config` names a file that does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    /// An entry of `trusted_proxies` is neither an address nor a CIDR block.
    #[error("trusted_proxies: {0:?} is neither an IP address nor a CIDR block such as 10.0.0.0/8")]
    TrustedProxy(String),
    /// The database URL names no backend or does not parse.
    #[error("database.url: {0}")]
    Database(String),
    /// The listen address does not parse.
    #[error("invalid listen address {0:?}: expected HOST:PORT, for example 127.0.0.1:8080")]
    Listen(String),
    /// A certificate without its key, a key without its certificate, and the like.
    #[error("{0}")]
    Tls(&'static str),
}

impl Settings {
    /// Loads the layers described in the module doc from the process environment;
    /// `overrides` are command-line flags.
    pub fn load(config_file: Option<&Path>, overrides: Figment) -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = config_file {
            if !path.is_file() {
                return Err(SettingsError::MissingFile(path.to_path_buf()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // The original system's REST_HOST is the bind host only (Flask picked the port).
        if let Some(host) = std::env::var("REST_HOST")
            .ok()
            .filter(|host| !host.is_empty())
        {
            let current: Settings = figment.extract().map_err(Box::new)?;
            let listen = rest_host_listen(&host, &current.listen);
            figment = figment.merge(Serialized::default("listen", listen));
        }
        // The original deployment's RABBIT_* variables.
        for (variable, key) in [
            ("RABBIT_EXCHANGE", "amqp.exchange"),
            ("RABBIT_ROUTING", "amqp.routing_key"),
            ("RABBIT_QUEUE", "amqp.queue"),
        ] {
            if let Some(value) = std::env::var(variable).ok().filter(|v| !v.is_empty()) {
                figment = figment.merge(Serialized::default(key, value));
            }
        }
        if let Some(url) = std::env::var("RABBIT_URL").ok().filter(|v| !v.is_empty()) {
            let user = std::env::var("RABBIT_USER").ok();
            let password = std::env::var("RABBIT_PASSWORD").ok();
            let url = rabbit_url(&url, user.as_deref(), password.as_deref());
            figment = figment.merge(Serialized::default("amqp.url", url));
        }
        // MYMONIT_DATABASE_URL, the name every tool uses, is database.url.
        if let Some(url) = std::env::var("MYMONIT_DATABASE_URL")
            .ok()
            .filter(|v| !v.is_empty())
        {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        let settings: Settings = figment
            .merge(
                Env::prefixed("MYMONIT_")
                    .split("__")
                    // Variables of the same prefix that are not settings: the configuration
                    // file's path, the adapter's ingest token, the test suite's broker.
                    .ignore(&["config", "ingest_token", "database_url"])
                    .filter(|key| !key.as_str().to_ascii_lowercase().starts_with("test_")),
            )
            .merge(overrides)
            .extract()
            .map_err(Box::new)?;
        settings.listen_addr()?;
        settings.trusted_proxy_nets()?;
        settings.database_url()?;
        settings.check_tls()?;
        Ok(settings)
    }

    /// The database: `database.url`, or SQLite in `data_dir` when it is unset.
    pub fn database_url(&self) -> Result<mymonit_store::DatabaseUrl, SettingsError> {
        match self.database.url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => url
                .parse()
                .map_err(|err: mymonit_store::StoreError| SettingsError::Database(err.to_string())),
            _ => Ok(mymonit_store::DatabaseUrl::Sqlite(self.data_dir.clone())),
        }
    }

    /// How to open the store.
    pub fn store_options(&self) -> mymonit_store::OpenOptions {
        mymonit_store::OpenOptions {
            max_series_per_experiment: Some(self.ingest.max_series_per_experiment),
            max_connections: Some(self.database.max_connections),
        }
    }

    /// `trusted_proxies`, parsed (a bare address is a block of one).
    pub fn trusted_proxy_nets(&self) -> Result<Vec<ipnet::IpNet>, SettingsError> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                let text = entry.trim();
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| SettingsError::TrustedProxy(entry.clone()))
            })
            .collect()
    }

    /// TLS files given in pairs, and a client CA only with a certificate.
    fn check_tls(&self) -> Result<(), SettingsError> {
        let tls = &self.tls;
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => {
                return Err(SettingsError::Tls(
                    "tls.cert_file is set but tls.key_file is not (--tls-key)",
                ));
            }
            (None, Some(_)) => {
                return Err(SettingsError::Tls(
                    "tls.key_file is set but tls.cert_file is not (--tls-cert)",
                ));
            }
            (None, None) if tls.metrics_client_ca_file.is_some() => {
                return Err(SettingsError::Tls(
                    "tls.metrics_client_ca_file needs tls.cert_file and tls.key_file: client certificates are asked for over TLS only",
                ));
            }
            _ => {}
        }
        let amqp = &self.amqp;
        if amqp.tls_cert_file.is_some() != amqp.tls_key_file.is_some() {
            return Err(SettingsError::Tls(
                "amqp.tls_cert_file and amqp.tls_key_file go together",
            ));
        }
        Ok(())
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, SettingsError> {
        self.listen
            .parse()
            .map_err(|_| SettingsError::Listen(self.listen.clone()))
    }

    /// The configuration as TOML, for `mymonit print-config`, with the broker password
    /// replaced by `***`.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        shown.amqp.url = shown.amqp.url.as_deref().map(redact_url);
        shown.database.url = shown.database.url.as_deref().map(redact_url);
        toml::to_string_pretty(&shown).unwrap_or_else(|err| format!("# cannot render: {err}\n"))
    }
}

/// The original's `RABBIT_URL` was a host name, with `RABBIT_USER` and `RABBIT_PASSWORD`
/// beside it; a full `amqp://` URL is taken as it is.
fn rabbit_url(url: &str, user: Option<&str>, password: Option<&str>) -> String {
    if url.starts_with("amqp://") || url.starts_with("amqps://") {
        return url.to_string();
    }
    let host = if url.contains(':') {
        url.to_string()
    } else {
        format!("{url}:5672")
    };
    let user = user.unwrap_or("guest");
    let password = password.unwrap_or("guest");
    format!("amqp://{user}:{password}@{host}/%2f")
}

/// `REST_HOST` with the port of the listen address configured so far.
fn rest_host_listen(host: &str, current_listen: &str) -> String {
    if host.parse::<SocketAddr>().is_ok() {
        return host.to_string();
    }
    let port = current_listen
        .rsplit_once(':')
        .map(|(_, port)| port)
        .unwrap_or("8080");
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_on_loopback_unless_turned_off() {
        let mut settings = Settings::default();
        assert_eq!(settings.metrics_address(), Some("127.0.0.1:9464"));
        for off in ["off", "OFF", "", "  "] {
            settings.metrics_listen = Some(off.into());
            assert_eq!(settings.metrics_address(), None, "{off:?}");
        }
        settings.metrics_listen = None;
        assert_eq!(settings.metrics_address(), None);
    }

    #[test]
    fn rest_host_sets_the_host_and_keeps_the_port() {
        assert_eq!(
            rest_host_listen("0.0.0.0", "127.0.0.1:8080"),
            "0.0.0.0:8080"
        );
        assert_eq!(
            rest_host_listen("10.0.0.1:5000", "127.0.0.1:8080"),
            "10.0.0.1:5000"
        );
        assert_eq!(rest_host_listen("::", "127.0.0.1:9000"), "[::]:9000");
    }

    #[test]
    fn rabbit_variables_make_an_amqp_url() {
        assert_eq!(
            rabbit_url("localhost", None, None),
            "amqp://guest:guest@localhost:5672/%2f"
        );
        assert_eq!(
            rabbit_url("rabbit:5673", Some("u"), Some("p")),
            "amqp://u:p@rabbit:5673/%2f"
        );
        assert_eq!(
            rabbit_url("amqp://a:b@h/%2f", Some("u"), None),
            "amqp://a:b@h/%2f"
        );
        assert_eq!(
            redact_url("amqp://u:secret@h:5672/%2f"),
            "amqp://u:***@h:5672/%2f"
        );
        assert_eq!(redact_url("amqp://h:5672"), "amqp://h:5672");
        let settings = Settings {
            amqp: AmqpSettings {
                url: Some("amqp://u:secret@h/".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(!format!("{settings:?}").contains("secret"));
    }

    #[test]
    fn defaults_render_as_toml_and_parse_back() {
        let text = Settings::default().to_toml();
        assert!(text.contains("listen = \"127.0.0.1:8080\""), "{text}");
        let parsed: Settings = Figment::from(Toml::string(&text)).extract().unwrap();
        assert_eq!(parsed, Settings::default());
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string("lisen = \"0.0.0.0:1\""))
            .extract::<Settings>()
            .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
