//! `spawn_app()` and the per-role fixtures the tests share.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use mymonit_model::{Redacted, Role, User, measure::NewMeasure};
use mymonit_server::{AppState, Server, Settings, accounts};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::{sync::oneshot, task::JoinHandle};

/// Password of every fixture account.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running server on a fresh database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    pub data_dir: PathBuf,
    /// The database the server uses (`None`: SQLite in `data_dir`).
    pub database_url: Option<String>,
    _dir: tempfile::TempDir,
    /// A PostgreSQL database made for this app, dropped with it.
    _database: Option<TestDatabase>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    /// Reads a response whole.
    pub async fn read(response: reqwest::Response) -> Self {
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.text))
    }

    /// Asserts the body is a problem document of this status and returns its detail.
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        let content_type = self.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap();
        assert_eq!(content_type, "application/problem+json", "{}", self.text);
        let body = self.json();
        assert_eq!(body["status"], status, "{body}");
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:mymonit:problem:")
        );
        assert!(body["title"].is_string());
        body["detail"].as_str().unwrap().to_string()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The backend the suite runs on: `MYMONIT_TEST_BACKEND=postgres` gives every app a fresh
/// database on the test PostgreSQL (`MYMONIT_TEST_DATABASE_URL`); otherwise SQLite.
pub fn on_postgres() -> bool {
    std::env::var("MYMONIT_TEST_BACKEND").is_ok_and(|backend| backend == "postgres")
}

/// The test PostgreSQL (a role that may create databases); `None` without one, a failure
/// under `CI`.
pub fn test_postgres() -> Option<String> {
    match std::env::var("MYMONIT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but MYMONIT_TEST_DATABASE_URL names no PostgreSQL")
        }
        _ => {
            eprintln!("skipped: set MYMONIT_TEST_DATABASE_URL to run the tests on PostgreSQL");
            None
        }
    }
}

/// A database on the test PostgreSQL, dropped when the app that made it is.
pub struct TestDatabase {
    server_url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> (Self, String) {
        static DATABASES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let server_url = test_postgres().expect("the tests on PostgreSQL need a test PostgreSQL");
        let name = format!(
            "mymonit_api_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        mymonit_store::PgStore::drop_database(&server_url, &name)
            .await
            .unwrap();
        let url = mymonit_store::PgStore::create_database(&server_url, &name)
            .await
            .expect("cannot create a database on the test PostgreSQL");
        (Self { server_url, name }, url)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server_url, name) = (self.server_url.clone(), self.name.clone());

        // On a thread of its own, not waited for: the test's runtime must go on (or end) so
        // that the server's connections close, which the drop waits for.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime
                .block_on(mymonit_store::PgStore::drop_database(&server_url, &name))
                .ok()
        });
    }
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (database, database_url) = if on_postgres() {
        let (database, url) = TestDatabase::create().await;
        (Some(database), Some(url))
    } else {
        (None, None)
    };
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        // Many servers run at once: metrics only where a test asks for them.
        metrics_listen: None,
        ..Settings::default()
    };
    settings.database.url = database_url;
    configure(&mut settings);
    let database_url = settings.database.url.clone();
    let server = Server::build(settings).await.expect("server builds");
    let state = server.state().clone();
    let listener = server.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(listener, async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        state,
        data_dir: dir.path().to_path_buf(),
        database_url,
        _dir: dir,
        _database: database,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

impl TestApp {
    /// Stops the server as a signal would, and waits until it has: its background tasks end
    /// where they are (a fetch in flight is dropped before its commit, its lease left held).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::read(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// Sends raw bytes with the given content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path)).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        Reply::read(request.send().await.expect("request sent")).await
    }

    /// Creates an account with [`PASSWORD`] straight in the store.
    pub async fn add_user(&self, user_id: &str, username: &str, role: Role) -> User {
        let user = User {
            user_id: user_id.into(),
            name: format!("Person {user_id}").into(),
            username: username.into(),
            email: format!("{username}@home.cern").into(),
            role,
        };
        accounts::create(
            self.state.meta.as_ref(),
            &user,
            Some(Redacted::new(PASSWORD.into())),
        )
        .await
        .unwrap();
        user
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        let body = serde_json::json!({"username": username, "password": password});
        self.call(Method::POST, "/api/v1/auth/login", None, Some(&body))
            .await
    }

    pub async fn token(&self, username: &str) -> String {
        let reply = self.login(username, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["access_token"].as_str().unwrap().to_string()
    }

    /// Appends `count` hertz points to an experiment, one a second from `start_s`.
    pub async fn add_measures(
        &self,
        experiment_id: i64,
        type_name: &str,
        start_s: i64,
        count: i64,
    ) {
        let measure_type = self
            .state
            .meta
            .measure_type_by_name(type_name)
            .await
            .unwrap()
            .unwrap();
        let batch: Vec<NewMeasure> = (0..count)
            .map(|i| NewMeasure {
                experiment_id,
                measure_type_id: measure_type.measure_type_id,
                timestamp_ns: (start_s + i) * 1_000_000_000,
                value: i as f64,
                tags: BTreeMap::new(),
            })
            .collect();
        self.state.measures.append(&batch).await.unwrap();
    }
}

/// The standard cast: an admin, a scientist on `vibrations`, a scientist on `black_holes`
/// (not on `vibrations`), an auditor, and a spare experiment with a spare scientist.
pub struct World {
    pub app: TestApp,
    pub admin: String,
    pub scientist: String,
    pub other_scientist: String,
    pub auditor: String,
    pub vibrations: i64,
    pub black_holes: i64,
    pub spare: i64,
}

pub async fn world() -> World {
    world_with(|_| {}).await
}

pub async fn world_with(configure: impl FnOnce(&mut Settings)) -> World {
    let app = spawn_app_with(configure).await;
    app.add_user("A001", "aalcorn", Role::Admin).await;
    app.add_user("S001", "phigg", Role::Scientist).await;
    app.add_user("S002", "kbouman", Role::Scientist).await;
    app.add_user("S003", "spare", Role::Scientist).await;
    app.add_user("U001", "alovelace", Role::Auditor).await;
    let meta = app.state.meta.clone();
    let vibrations = meta
        .create_experiment("device-vibrations")
        .await
        .unwrap()
        .experiment_id;
    let black_holes = meta
        .create_experiment("black-holes")
        .await
        .unwrap()
        .experiment_id;
    let spare = meta.create_experiment("spare").await.unwrap().experiment_id;
    meta.associate(vibrations, "S001").await.unwrap();
    meta.associate(black_holes, "S002").await.unwrap();
    meta.associate(spare, "S003").await.unwrap();
    app.add_measures(vibrations, "hertz", 1_653_040_000, 10)
        .await;
    let admin = app.token("aalcorn").await;
    let scientist = app.token("phigg").await;
    let other_scientist = app.token("kbouman").await;
    let auditor = app.token("alovelace").await;
    World {
        app,
        admin,
        scientist,
        other_scientist,
        auditor,
        vibrations,
        black_holes,
        spare,
    }
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether an outside program a test needs is `found`: outside CI a missing one skips the
/// test with a message; with CI set it fails it (scripts/test installs them all).
pub fn program_available(name: &str, found: bool) -> bool {
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {name} is not installed: scripts/test installs it"
        );
        eprintln!("skipped: no {name} (run scripts/test, which installs it)");
    }
    found
}

/// Percent-encodes a query parameter's value.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
