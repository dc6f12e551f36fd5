//! End-to-end tests of the `mymonit` binary: each test runs the compiled executable as a
//! subprocess on its own temporary data directory, and talks to `mymonit serve` over HTTP on a
//! free local port.
//!
//! Covered: the help texts, `user add/list/passwd/erase` (also beside a running server),
//! `serve --demo` (credentials file, seeded data, idempotence, SIGTERM shutdown), the token
//! signing key and JWKS, and `print-config` layering (environment, `REST_HOST`, TOML file).

#![allow(clippy::unwrap_used)]

use std::{
    fs,
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mymonit");

/// A password that passes the policy (long, random-looking, unrelated to any account).
const STRONG_PASSWORD: &str = "Vq7pLm2xZr9tWkJd";
/// Another one, for password changes.
const OTHER_STRONG_PASSWORD: &str = "Tn4wQs8yHb3uFeCg";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A `mymonit` command on `data_dir`, isolated from the caller's configuration environment.
fn mymonit(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.arg("--data-dir").arg(data_dir);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("MYMONIT_")
            || key_text.starts_with("RABBIT_")
            || key_text == "REST_HOST"
            || key_text == "RUST_LOG"
        {
            command.env_remove(&key);
        }
    }
    // Many servers run at once: no metrics listener on the default port.
    command.env("MYMONIT_METRICS_LISTEN", "off");
    // A test on PostgreSQL leaves its database's URL in the data directory: every command
    // on that directory (servers, `user add`, …) then uses it.
    if let Ok(url) = fs::read_to_string(data_dir.join(DATABASE_URL_FILE)) {
        command.arg("--database-url").arg(url.trim());
    }
    command
}

/// See [`mymonit`].
const DATABASE_URL_FILE: &str = "test-database-url";

/// Gives `data_dir` a fresh database on the test PostgreSQL; `false` without one (outside CI).
async fn use_postgres(data_dir: &Path) -> bool {
    let server_url = match std::env::var("MYMONIT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but MYMONIT_TEST_DATABASE_URL is not")
        }
        _ => {
            eprintln!("skipped: no PostgreSQL (run scripts/test)");
            return false;
        }
    };
    let name = format!(
        "mymonit_cli_{}_{}",
        std::process::id(),
        SERVER_RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let url = mymonit_store::PgStore::create_database(&server_url, &name)
        .await
        .expect("cannot create a database on the test PostgreSQL");
    fs::write(data_dir.join(DATABASE_URL_FILE), url).unwrap();
    true
}

/// Runs `command` to completion, feeding `stdin` to it.
fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start mymonit");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `command` to completion with an empty standard input.
/// Runs `mymonit ARGS --data-dir DATA` without input.
fn run_args(data_dir: &Path, args: &[&str]) -> Output {
    let mut command = mymonit(data_dir);
    command.args(args);
    run(command)
}

fn run(mut command: Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .expect("cannot start mymonit")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns stdout.
fn assert_ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "mymonit failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// Asserts failure and that stderr contains `needle`; returns stderr.
fn assert_fails_with(output: &Output, needle: &str) -> String {
    assert!(
        !output.status.success(),
        "mymonit should have failed; stdout: {}",
        stdout(output)
    );
    let err = stderr(output);
    assert!(
        err.contains(needle),
        "stderr should mention {needle:?}: {err}"
    );
    err
}

/// `text` with every run of white space turned into one space (help output wraps lines).
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Arguments of `user add` for a scientist.
fn add_args<'a>(
    user_id: &'a str,
    username: &'a str,
    email: &'a str,
    role: &'a str,
) -> Vec<&'a str> {
    vec![
        "user",
        "add",
        "--id",
        user_id,
        "--name",
        "Grace Hopper",
        "--username",
        username,
        "--email",
        email,
        "--role",
        role,
        "--password-stdin",
    ]
}

/// `user add` with the password on standard input.
fn add_user(data_dir: &Path, user_id: &str, username: &str, role: &str, password: &str) -> Output {
    let email = format!("{username}@home.cern");
    let mut command = mymonit(data_dir);
    command.args(add_args(user_id, username, &email, role));
    run_with_stdin(command, &format!("{password}\n"))
}

/// `user list --json`, parsed.
fn list_users(data_dir: &Path) -> Vec<Value> {
    let mut command = mymonit(data_dir);
    command.args(["user", "list", "--json"]);
    let out = assert_ok(&run(command));
    serde_json::from_str(&out).expect("user list --json prints a JSON list")
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

static SERVER_RUNS: AtomicUsize = AtomicUsize::new(0);

/// A running `mymonit serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    client: reqwest::Client,
}

impl Server {
    /// Starts `mymonit serve` on `data_dir` with `extra` arguments and waits until
    /// `/healthz` answers.
    async fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_with_env(data_dir, extra, &[]).await
    }

    /// Like [`Server::start`], with environment variables set for the process.
    async fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Self::launch(data_dir, extra, env, "http", client).await
    }

    /// Starts `mymonit serve` reached at `scheme`://127.0.0.1:PORT through `client`.
    async fn launch(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        scheme: &str,
        client: reqwest::Client,
    ) -> Server {
        let port = free_port();
        let run = SERVER_RUNS.fetch_add(1, Ordering::Relaxed);
        let stdout_path = data_dir.join(format!("serve-{run}.stdout"));
        let stderr_path = data_dir.join(format!("serve-{run}.stderr"));
        let mut command = mymonit(data_dir);
        command.envs(env.iter().copied());
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).unwrap())
            .stderr(fs::File::create(&stderr_path).unwrap());
        let child = command.spawn().expect("cannot start mymonit serve");
        let mut server = Server {
            child,
            base: format!("{scheme}://127.0.0.1:{port}"),
            stdout_path,
            stderr_path,
            client,
        };
        server.wait_until_healthy().await;
        server
    }

    async fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "mymonit serve exited early ({status}); stderr:\n{}",
                    self.stderr()
                );
            }
            let healthy = self
                .client
                .get(self.url("/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status() == StatusCode::OK);
            if healthy {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "mymonit serve did not come up within 30 s; stderr:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `/readyz` shows the AMQP consumer consuming (its queue declared and bound).
    async fn wait_consuming(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready: Value = self.get("/readyz", None).await.json().await.unwrap();
            if ready["amqp"]["state"] == "consuming" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the AMQP consumer did not start: {ready}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Signs in, asserting success and the token response's shape; returns the token.
    async fn token(&self, username: &str, password: &str) -> String {
        let response = self.login(username, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {username}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert!(body["expires_in"].as_u64().unwrap() > 0, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Sends SIGTERM and waits (up to 10 s) for the process to exit.
    fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "mymonit serve did not stop within 10 s of SIGTERM; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Server {
    /// Kills the process with SIGKILL (no chance to finish anything) and reaps it.
    fn kill_9(&mut self) {
        let killed = Command::new("kill")
            .arg("-9")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(killed.success(), "kill -9 failed");
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo credentials file of `data_dir`, parsed.
fn demo_credentials(data_dir: &Path) -> Vec<Value> {
    let bytes = fs::read(data_dir.join("demo-credentials.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn credential<'a>(credentials: &'a [Value], user_id: &str) -> &'a Value {
    credentials
        .iter()
        .find(|c| c["user_id"] == user_id)
        .unwrap_or_else(|| panic!("no demo credential for {user_id}"))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Signs in as phigg (from the credentials file) and returns the device-vibrations CSV
/// export's lines.
async fn device_vibrations_csv(server: &Server, data_dir: &Path) -> Vec<String> {
    let credentials = demo_credentials(data_dir);
    let phigg = credential(&credentials, "S001");
    let token = server
        .token("phigg", phigg["password"].as_str().unwrap())
        .await;
    let response = server.get("/api/v1/experiments", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let experiments: Vec<Value> = response.json().await.unwrap();
    let names: Vec<&str> = experiments
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["device-vibrations", "webapp-requests"],
        "phigg sees only his experiments"
    );
    let id = experiments[0]["experiment_id"].as_i64().unwrap();
    let response = server
        .get(
            &format!("/api/v1/experiments/{id}/measures?format=csv"),
            Some(&token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    body.lines().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Help
// ---------------------------------------------------------------------------------------------

#[test]
fn help_texts_describe_commands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let mut command = mymonit(dir.path());
        command.args(args);
        squash(&assert_ok(&run(command)))
    };

    let top = help(&["--help"]);
    for needle in ["serve", "user", "print-config"] {
        assert!(top.contains(needle), "mymonit --help lacks {needle}: {top}");
    }
    let serve = help(&["serve", "--help"]);
    for needle in ["--demo", "--listen"] {
        assert!(
            serve.contains(needle),
            "serve --help lacks {needle}: {serve}"
        );
    }
    let add = help(&["user", "add", "--help"]);
    for needle in ["--password-stdin", "at least 12 characters", "--role"] {
        assert!(
            add.contains(needle),
            "user add --help lacks {needle}: {add}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. user add / list
// ---------------------------------------------------------------------------------------------

#[test]
fn user_add_creates_accounts_and_enforces_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let out = assert_ok(&add_user(
        data,
        "S010",
        "ghopper",
        "SCIENTIST",
        STRONG_PASSWORD,
    ));
    assert!(out.contains("S010"), "{out}");

    let users = list_users(data);
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(
        users[0],
        json!({
            "user_id": "S010",
            "name": "Grace Hopper",
            "username": "ghopper",
            "email": "ghopper@home.cern",
            "role": "SCIENTIST",
        })
    );
    // The password never shows up in the listing.
    assert!(!users[0].to_string().contains(STRONG_PASSWORD));

    assert_fails_with(
        &add_user(data, "S011", "aturing", "SCIENTIST", "password1234"),
        "too easy to guess",
    );
    assert_fails_with(
        &add_user(data, "S012", "aturing", "SCIENTIST", "Xk9#q"),
        "too short",
    );
    // Same username, different email.
    let mut command = mymonit(data);
    command.args(add_args(
        "S013",
        "ghopper",
        "grace@navy.example",
        "SCIENTIST",
    ));
    assert_fails_with(
        &run_with_stdin(command, &format!("{OTHER_STRONG_PASSWORD}\n")),
        "username is already taken",
    );

    let mut command = mymonit(data);
    command.args(add_args("S014", "aturing", "not-an-email", "SCIENTIST"));
    assert_fails_with(
        &run_with_stdin(command, &format!("{OTHER_STRONG_PASSWORD}\n")),
        "email",
    );

    let mut command = mymonit(data);
    command.args(add_args("S015", "aturing", "aturing@home.cern", "ROOT"));
    assert_fails_with(
        &run_with_stdin(command, &format!("{OTHER_STRONG_PASSWORD}\n")),
        "ROOT",
    );

    // None of the refused accounts was created.
    let users = list_users(data);
    assert_eq!(users.len(), 1, "{users:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. user passwd beside a running server
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn user_passwd_changes_the_password_and_revokes_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert_ok(&add_user(
        data,
        "S020",
        "ghopper",
        "SCIENTIST",
        STRONG_PASSWORD,
    ));

    let server = Server::start(data, &[]).await;
    let token = server.token("ghopper", STRONG_PASSWORD).await;
    let me = server.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["user_id"], "S020");

    // No pause: a token issued in the same second as the change must be refused too.
    let mut command = mymonit(data);
    command.args(["user", "passwd", "S020", "--password-stdin"]);
    let out = assert_ok(&run_with_stdin(
        command,
        &format!("{OTHER_STRONG_PASSWORD}\n"),
    ));
    assert!(out.contains("S020"), "{out}");

    assert_eq!(
        server.login("ghopper", STRONG_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    server.token("ghopper", OTHER_STRONG_PASSWORD).await;
    assert_eq!(
        server.get("/api/v1/auth/me", Some(&token)).await.status(),
        StatusCode::UNAUTHORIZED,
        "a token issued before the password change must be refused"
    );
}

#[test]
fn user_passwd_requires_password_stdin_and_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert_ok(&add_user(
        data,
        "S021",
        "ghopper",
        "SCIENTIST",
        STRONG_PASSWORD,
    ));

    let mut command = mymonit(data);
    command.args(["user", "passwd", "S021"]);
    assert_fails_with(&run(command), "--password-stdin");

    let mut command = mymonit(data);
    command.args(["user", "passwd", "S021", "--password-stdin"]);
    assert_fails_with(
        &run_with_stdin(command, "password1234\n"),
        "too easy to guess",
    );

    let mut command = mymonit(data);
    command.args(["user", "passwd", "S999", "--password-stdin"]);
    assert_fails_with(
        &run_with_stdin(command, &format!("{OTHER_STRONG_PASSWORD}\n")),
        "S999",
    );
}

// ---------------------------------------------------------------------------------------------
// 4. user erase beside a running server
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn user_erase_removes_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert_ok(&add_user(
        data,
        "S030",
        "ghopper",
        "SCIENTIST",
        STRONG_PASSWORD,
    ));
    assert_ok(&add_user(
        data,
        "S031",
        "aturing",
        "SCIENTIST",
        OTHER_STRONG_PASSWORD,
    ));

    let server = Server::start(data, &[]).await;
    let token = server.token("ghopper", STRONG_PASSWORD).await;

    let mut command = mymonit(data);
    command.args(["user", "erase", "S030"]);
    let out = assert_ok(&run(command));
    assert!(out.contains("S030"), "{out}");

    assert_eq!(
        server.login("ghopper", STRONG_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.get("/api/v1/auth/me", Some(&token)).await.status(),
        StatusCode::UNAUTHORIZED,
        "an erased user's token must be refused"
    );
    // The other account is untouched.
    server.token("aturing", OTHER_STRONG_PASSWORD).await;

    let ids: Vec<_> = list_users(data)
        .iter()
        .map(|u| u["user_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["S031"]);

    // Erasing twice is an error.
    let mut command = mymonit(data);
    command.args(["user", "erase", "S030"]);
    assert_fails_with(&run(command), "S030");
}

// ---------------------------------------------------------------------------------------------
// 5. serve --demo
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn serve_demo_seeds_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let credentials_path = data.join("demo-credentials.json");

    // First run: seeds.
    let mut server = Server::start(data, &["--demo"]).await;
    let printed = server.stdout();
    assert!(printed.contains("Demo accounts"), "stdout: {printed}");

    let credentials = demo_credentials(data);
    assert_eq!(credentials.len(), 4, "{credentials:?}");
    for credential in &credentials {
        let keys: Vec<_> = credential.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 4, "{credential}");
        for key in ["user_id", "username", "password", "role"] {
            assert!(credential[key].is_string(), "{key} in {credential}");
        }
        // The table on stdout shows every account with its password.
        for key in ["user_id", "username", "password"] {
            let value = credential[key].as_str().unwrap();
            assert!(printed.contains(value), "stdout lacks {value}: {printed}");
        }
    }
    for (user_id, username, role) in [
        ("A001", "aalcorn", "ADMIN"),
        ("S001", "phigg", "SCIENTIST"),
        ("S002", "kbouman", "SCIENTIST"),
    ] {
        let c = credential(&credentials, user_id);
        assert_eq!(c["username"], username);
        assert_eq!(c["role"], role);
    }
    let auditors = credentials
        .iter()
        .filter(|c| c["role"] == "AUDITOR")
        .count();
    assert_eq!(auditors, 1);
    assert_eq!(mode(&credentials_path), 0o600);

    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            server.get(path, None).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }

    let csv = device_vibrations_csv(&server, data).await;
    assert_eq!(csv[0], "timestamp,experiment,measure_type,value,tags");
    assert!(csv.len() > 10_000, "only {} CSV lines", csv.len());
    assert!(
        csv[1..]
            .iter()
            .all(|line| line.contains("device-vibrations"))
    );

    let status = server.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    drop(server);

    // Second run: adds nothing, keeps the passwords.
    let credentials_before = fs::read(&credentials_path).unwrap();
    let server = Server::start(data, &["--demo"]).await;
    assert_eq!(fs::read(&credentials_path).unwrap(), credentials_before);
    assert!(
        !server.stdout().contains("Demo accounts"),
        "passwords printed again: {}",
        server.stdout()
    );
    assert_eq!(list_users(data).len(), 4);
    assert_eq!(device_vibrations_csv(&server, data).await.len(), csv.len());
}

// ---------------------------------------------------------------------------------------------
// 6. Signing key and JWKS
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn serve_creates_a_private_signing_key_and_publishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let server = Server::start(data, &[]).await;

    let key = data.join("jwt-signing-key.ed25519.pk8");
    assert!(key.is_file(), "{} is missing", key.display());
    assert_eq!(mode(&key), 0o600);

    let response = server.get("/.well-known/jwks.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().expect("a JWKS has keys");
    assert!(
        keys.iter().any(|k| k["kty"] == "OKP"),
        "no OKP key in {jwks}"
    );
}

/// `migrate-data` moves an embedded deployment into PostgreSQL: a server on the copy serves
/// the demo's scientist the same export, a token issued before the move still works (the
/// signing key is given to the new server), the trail verifies, and a second copy is refused.
#[tokio::test]
async fn migrate_data_moves_an_embedded_deployment_into_postgres() {
    let embedded = tempfile::tempdir().unwrap();
    let moved = tempfile::tempdir().unwrap();
    if !use_postgres(moved.path()).await {
        return;
    }
    let target = fs::read_to_string(moved.path().join(DATABASE_URL_FILE)).unwrap();
    let mut server = Server::start(embedded.path(), &["--demo"]).await;
    let csv = device_vibrations_csv(&server, embedded.path()).await;
    let credentials = demo_credentials(embedded.path());
    let password = credential(&credentials, "S001")["password"]
        .as_str()
        .unwrap();
    let token = server.token("phigg", password).await;
    assert!(server.terminate().success());
    drop(server);

    let missing = tempfile::tempdir().unwrap();
    assert_fails_with(
        &run_args(missing.path(), &["migrate-data", "--to", &target]),
        "no MyMonit database in",
    );
    assert_fails_with(
        &run_args(
            embedded.path(),
            &["migrate-data", "--to", "sqlite://elsewhere"],
        ),
        "--to must name a PostgreSQL database",
    );

    let output = run_args(embedded.path(), &["migrate-data", "--to", &target]);
    let printed = assert_ok(&output);
    assert!(printed.contains("4 users, 3 experiments"), "{printed}");
    assert!(
        printed.contains("every series' count and checksum equal"),
        "{printed}"
    );
    assert!(printed.contains("chain intact on the target"), "{printed}");
    assert!(printed.contains("auth.signing_key_file"), "{printed}");
    assert!(
        !printed.contains(":mymonit@") && !stderr(&output).contains(":mymonit@"),
        "the target's password was shown: {printed}"
    );

    fs::copy(
        embedded.path().join("demo-credentials.json"),
        moved.path().join("demo-credentials.json"),
    )
    .unwrap();
    let key = embedded.path().join("jwt-signing-key.ed25519.pk8");
    let mut server = Server::start_with_env(
        moved.path(),
        &[],
        &[("MYMONIT_AUTH__SIGNING_KEY_FILE", key.to_str().unwrap())],
    )
    .await;
    assert_eq!(device_vibrations_csv(&server, moved.path()).await, csv);
    let response = server.get("/api/v1/experiments", Some(&token)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a token from before the move"
    );
    assert!(server.terminate().success());
    drop(server);
    let verified = assert_ok(&run_args(moved.path(), &["audit", "verify"]));
    assert!(verified.starts_with("audit trail intact"), "{verified}");

    assert_fails_with(
        &run_args(embedded.path(), &["migrate-data", "--to", &target]),
        "already holds data",
    );
}

// ---------------------------------------------------------------------------------------------
// 7. print-config
// ---------------------------------------------------------------------------------------------

fn print_config(data_dir: &Path, env: &[(&str, &str)], config: Option<&Path>) -> Output {
    let mut command = mymonit(data_dir);
    command.envs(env.iter().copied());
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.arg("print-config");
    run(command)
}

/// The database comes from `MYMONIT_DATABASE_URL` or `--database-url`; its password never
/// shows, and a URL of no known backend is refused by name.
#[test]
fn the_database_url_is_taken_redacted_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let out = assert_ok(&print_config(
        data,
        &[(
            "MYMONIT_DATABASE_URL",
            "postgres://mymonit:s3cret@db.example.org/mymonit?sslmode=verify-full",
        )],
        None,
    ));
    assert!(
        out.contains(
            r#"url = "postgres://mymonit:***@db.example.org/mymonit?sslmode=verify-full""#
        ),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "{out}");
    let mut command = mymonit(data);
    command.args(["--database-url", "mysql://root:pw@db/x", "print-config"]);
    let refused = run(command);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("database.url") && stderr.contains("sqlite://DIR"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw@"), "{stderr}");
}

#[test]
fn print_config_layers_environment_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let out = assert_ok(&print_config(data, &[], None));
    assert!(out.contains(r#"listen = "127.0.0.1:8080""#), "{out}");

    let out = assert_ok(&print_config(
        data,
        &[("MYMONIT_LISTEN", "127.0.0.1:9999")],
        None,
    ));
    assert!(out.contains(r#"listen = "127.0.0.1:9999""#), "{out}");

    let out = assert_ok(&print_config(data, &[("REST_HOST", "0.0.0.0")], None));
    assert!(out.contains(r#"listen = "0.0.0.0:8080""#), "{out}");

    // Variables of the same prefix that are not settings do not break the configuration.
    let out = assert_ok(&print_config(
        data,
        &[
            ("MYMONIT_INGEST_TOKEN", "mmi_x"),
            ("MYMONIT_TEST_AMQP_URL", "amqp://x"),
        ],
        None,
    ));
    assert!(!out.contains("mmi_x"), "{out}");

    // The original RABBIT_* variables configure the consumer; the password is not shown.
    let out = assert_ok(&print_config(
        data,
        &[
            ("RABBIT_URL", "rabbit"),
            ("RABBIT_USER", "mm"),
            ("RABBIT_PASSWORD", "s3cret"),
            ("RABBIT_QUEUE", "q1"),
        ],
        None,
    ));
    assert!(
        out.contains(r#"url = "amqp://mm:***@rabbit:5672/%2f""#),
        "{out}"
    );
    assert!(out.contains(r#"queue = "q1""#), "{out}");

    let config = data.join("mymonit.toml");
    fs::write(&config, "max_body_bytes = 1234\n").unwrap();
    let out = assert_ok(&print_config(data, &[], Some(&config)));
    assert!(out.contains("max_body_bytes = 1234"), "{out}");
}

#[test]
fn print_config_refuses_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let config = data.join("unknown.toml");
    fs::write(&config, "max_body_bytes = 1234\nbogus_setting = true\n").unwrap();
    assert_fails_with(&print_config(data, &[], Some(&config)), "bogus_setting");

    let missing = data.join("missing.toml");
    let err = assert_fails_with(&print_config(data, &[], Some(&missing)), "does not exist");
    assert!(err.contains("missing.toml"), "{err}");
}

#[tokio::test]
async fn token_create_prints_a_working_secret_on_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert_ok(&add_user(data, "A001", "aalcorn", "ADMIN", STRONG_PASSWORD));
    let server = Server::start(data, &[]).await;
    let admin = server.token("aalcorn", STRONG_PASSWORD).await;
    let created = server
        .client
        .post(server.url("/api/v1/experiments"))
        .bearer_auth(&admin)
        .json(&json!({"name": "device-vibrations"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    let unknown = run_args(data, &["token", "create", "--experiment", "nope"]);
    assert_fails_with(&unknown, "experiment \"nope\" not found");

    let output = run_args(
        data,
        &[
            "token",
            "create",
            "--experiment",
            "device-vibrations",
            "--description",
            "lab 1",
        ],
    );
    let printed = assert_ok(&output);
    let secret = printed.lines().last().unwrap().trim().to_string();
    assert!(secret.starts_with("mmi_"), "{printed}");

    let push = |secret: String| {
        let client = server.client.clone();
        let url = server.url("/api/v1/ingest");
        async move {
            client
                .post(url)
                .bearer_auth(secret)
                .header("content-type", "application/json")
                .body(r#"{"experiment":"device-vibrations","measure":"hertz","value":2.2,"timestamp":1653040000}"#)
                .send()
                .await
                .unwrap()
        }
    };
    let pushed = push(secret.clone()).await;
    assert_eq!(pushed.status(), StatusCode::OK);
    assert_eq!(pushed.json::<Value>().await.unwrap()["accepted"], 1);

    let listed = assert_ok(&run_args(data, &["token", "list"]));
    assert!(!listed.contains(&secret), "token list never shows secrets");
    let token_id = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_ok(&run_args(data, &["token", "revoke", &token_id]));
    assert_eq!(push(secret).await.status(), StatusCode::UNAUTHORIZED);
}

/// The test broker's URL, or `None` (the test is skipped) outside CI; in CI a missing broker
/// fails the test.
fn test_broker() -> Option<String> {
    match std::env::var("MYMONIT_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but MYMONIT_TEST_AMQP_URL is not")
        }
        _ => {
            eprintln!("skipped: no RabbitMQ (run scripts/test)");
            None
        }
    }
}

/// Writes a configuration file pointing the consumer at the test broker, with exchange and
/// queues of its own (`name`), plus `extra` lines of the `[amqp]` table; returns its path.
fn amqp_config(data: &Path, url: &str, name: &str, extra: &str) -> String {
    let config = data.join("mymonit.toml");
    fs::write(
        &config,
        format!(
            "[amqp]\nurl = \"{url}\"\nexchange = \"{name}\"\nqueue = \"{name}.measures\"\n\
             dead_letter_queue = \"{name}.dead\"\n{extra}"
        ),
    )
    .unwrap();
    config.to_str().unwrap().to_string()
}

/// A server with an admin, the experiment device-vibrations and an ingest token for it.
struct IngestSetup {
    server: Server,
    admin: String,
    secret: String,
}

async fn ingest_setup(data: &Path, extra: &[&str]) -> IngestSetup {
    assert_ok(&add_user(data, "A001", "aalcorn", "ADMIN", STRONG_PASSWORD));
    assert_ok(&add_user(
        data,
        "S001",
        "phigg",
        "SCIENTIST",
        OTHER_STRONG_PASSWORD,
    ));
    let server = Server::start(data, extra).await;
    let admin = server.token("aalcorn", STRONG_PASSWORD).await;
    let created: Value = server
        .client
        .post(server.url("/api/v1/experiments"))
        .bearer_auth(&admin)
        .json(&json!({"name": "device-vibrations"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["experiment_id"].as_i64().unwrap();
    let associated = server
        .client
        .post(server.url(&format!("/scientists-experiments/{id}/S001")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(associated.status(), StatusCode::CREATED);
    let printed = assert_ok(&run_args(
        data,
        &["token", "create", "--experiment", "device-vibrations"],
    ));
    let secret = printed.lines().last().unwrap().trim().to_string();
    IngestSetup {
        server,
        admin,
        secret,
    }
}

impl IngestSetup {
    /// Values stored for a measure type, as the scientist reads them; waits up to 30 s for
    /// `expected` of them.
    async fn values(&self, measure: &str, expected: usize) -> Vec<f64> {
        let token = self.server.token("phigg", OTHER_STRONG_PASSWORD).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page: Value = self
                .server
                .get(
                    &format!("/api/v1/experiments/1/measures?measure={measure}&limit=10000"),
                    Some(&token),
                )
                .await
                .json()
                .await
                .unwrap();
            let values: Vec<f64> = page["measures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["value"].as_f64().unwrap())
                .collect();
            if values.len() >= expected || Instant::now() > deadline {
                return values;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The same four points in each input format.
fn inputs(dir: &Path) -> Vec<(&'static str, PathBuf, Vec<&'static str>)> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    };
    vec![
        (
            "txt",
            write("in.txt", "1653040000 1\n1653040001 2\n"),
            vec!["--experiment", "device-vibrations", "--measure", "hertz"],
        ),
        (
            "csv",
            write(
                "in.csv",
                "experiment,measure,timestamp,value\ndevice-vibrations,hertz,1653040002,3\n",
            ),
            vec![],
        ),
        (
            "xml",
            write(
                "in.xml",
                r#"<measures><measure experiment="device-vibrations" measure="hertz" timestamp="1653040003" value="4"/></measures>"#,
            ),
            vec![],
        ),
        (
            "json",
            write(
                "in.json",
                r#"[{"experiment":"device-vibrations","measure":"hertz","value":5,"timestamp":1653040004}]"#,
            ),
            vec![],
        ),
    ]
}

fn adapt(data: &Path, format: &str, file: &Path, extra: &[&str], to: &str) -> Output {
    let mut args = vec!["adapt", "--format", format];
    args.extend_from_slice(extra);
    let file = file.to_str().unwrap();
    args.extend_from_slice(&[file, "--to", to]);
    run_args(data, &args)
}

#[tokio::test]
async fn adapt_delivers_every_format_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let setup = ingest_setup(data, &[]).await;
    for (format, file, extra) in inputs(data) {
        let mut extra = extra;
        extra.extend_from_slice(&["--token", &setup.secret]);
        let output = adapt(data, format, &file, &extra, &setup.server.base);
        assert_ok(&output);
        assert!(
            stderr(&output).contains("0 rejected, 0 not delivered"),
            "{format}: {}",
            stderr(&output)
        );
    }
    assert_eq!(
        setup.values("hertz", 5).await,
        vec![1.0, 2.0, 3.0, 4.0, 5.0]
    );

    // A bad line is reported and the exit code says so; the good lines still arrive.
    let bad = data.join("bad.txt");
    fs::write(&bad, "1653040010 10\n1653040011 eleven\n1653040012 12\n").unwrap();
    let output = adapt(
        data,
        "txt",
        &bad,
        &[
            "--experiment",
            "device-vibrations",
            "--measure",
            "hertz",
            "--token",
            &setup.secret,
        ],
        &setup.server.base,
    );
    assert_fails_with(&output, "line 2: value: \"eleven\" is not a number");
    assert!(
        stderr(&output).contains("2 delivered, 1 rejected"),
        "{}",
        stderr(&output)
    );
    // Records the server refuses count too.
    let unknown = data.join("unknown.json");
    fs::write(
        &unknown,
        r#"{"experiment":"device-vibrations","measure":"furlongs","value":1,"timestamp":1}"#,
    )
    .unwrap();
    let output = adapt(
        data,
        "json",
        &unknown,
        &["--token", &setup.secret],
        &setup.server.base,
    );
    assert_fails_with(&output, "unknown measure type \"furlongs\"");
    // A wrong token is not retried forever, and says why.
    let output = adapt(
        data,
        "json",
        &unknown,
        &["--token", "mmi_wrong"],
        &setup.server.base,
    );
    assert_fails_with(&output, "401");
    let _ = &setup.admin;
}

#[tokio::test]
async fn adapt_follows_a_growing_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let setup = ingest_setup(data, &[]).await;
    let log = data.join("sensor.log");
    fs::write(&log, "1.5\n").unwrap();
    let mut command = mymonit(data);
    command
        .args([
            "adapt",
            "--format",
            "txt",
            "--experiment",
            "device-vibrations",
            "--measure",
            "hertz",
            "--follow",
        ])
        .arg(&log)
        .args(["--to", &setup.server.base, "--token", &setup.secret])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    assert_eq!(setup.values("hertz", 1).await, vec![1.5]);
    let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(file, "2.5").unwrap();
    writeln!(file, "3.5").unwrap();
    drop(file);
    assert_eq!(setup.values("hertz", 3).await, vec![1.5, 2.5, 3.5]);
    let interrupted = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("3 delivered"));
}

#[tokio::test]
async fn adapt_publishes_to_amqp() {
    let Some(url) = test_broker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let name = format!("adapt-{}", std::process::id());
    let config = amqp_config(data, &url, &name, "");
    let setup = ingest_setup(data, &["--config", &config]).await;
    setup.server.wait_consuming().await;
    for (format, file, extra) in inputs(data) {
        let mut extra = extra;
        extra.extend_from_slice(&["--exchange", &name, "--batch-size", "1"]);
        let output = adapt(data, format, &file, &extra, &url);
        assert_ok(&output);
    }
    assert_eq!(
        setup.values("hertz", 5).await,
        vec![1.0, 2.0, 3.0, 4.0, 5.0]
    );
}

#[tokio::test]
async fn kill_9_mid_stream_loses_and_doubles_nothing() {
    let Some(url) = test_broker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let name = format!("kill9-{}", std::process::id());
    let config = amqp_config(data, &url, &name, "batch_size = 50\n");
    let mut setup = ingest_setup(data, &["--config", &config]).await;
    // Messages published before the consumer binds its queue would be unroutable.
    setup.server.wait_consuming().await;

    // Publish 3000 messages (each with its id) while the server consumes them.
    const TOTAL: i64 = 3000;
    let messages = (0..TOTAL)
        .map(|i| {
            let body = json!({"experiment": "device-vibrations", "measure": "volt", "value": i, "timestamp": 1_653_080_000 + i});
            (body.to_string(), Some(format!("m{i}")))
        })
        .collect();
    let publisher = tokio::spawn(publish_all(url.clone(), name.clone(), messages));
    // Kill the server hard once part of the stream is stored.
    let partial = setup.values("volt", 500).await.len();
    assert!(partial >= 500, "only {partial} stored before the kill");
    setup.server.kill_9();
    publisher.await.unwrap();

    // Restarted on the same data directory, it stores the rest: each message exactly once.
    setup.server = Server::start(data, &["--config", &config]).await;
    let values = setup.values("volt", TOTAL as usize).await;
    assert_eq!(
        values.len(),
        TOTAL as usize,
        "stored {} of {TOTAL}",
        values.len()
    );
    let expected: Vec<f64> = (0..TOTAL).map(|i| i as f64).collect();
    assert_eq!(values, expected);
}

/// The most memory a process has held (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib / 1024)
        .expect("VmHWM in /proc/PID/status")
}

/// Sends `requests` sign-ins at once, the n-th from `source(n)` (a loopback address), and
/// counts the answers by status.
async fn sign_in_storm(
    server: &Server,
    requests: usize,
    source: impl Fn(usize) -> std::net::IpAddr,
    username: impl Fn(usize) -> String,
) -> std::collections::BTreeMap<u16, usize> {
    let mut storm = tokio::task::JoinSet::new();
    for n in 0..requests {
        let client = reqwest::Client::builder()
            .local_address(source(n))
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let url = server.url("/api/v1/auth/login");
        let body = json!({"username": username(n), "password": "not the password at all"});
        storm.spawn(async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut answers = std::collections::BTreeMap::new();
    while let Some(status) = storm.join_next().await {
        *answers.entry(status.unwrap()).or_insert(0) += 1;
    }
    answers
}

#[tokio::test]
async fn sign_in_floods_are_braked_and_cost_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert_ok(&add_user(data, "A001", "aalcorn", "ADMIN", STRONG_PASSWORD));
    let server = Server::start(data, &[]).await;
    let here = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    // Wrong current passwords are braked like sign-ins.
    let token = server.token("aalcorn", STRONG_PASSWORD).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = server
            .client
            .post(server.url("/api/v1/auth/password"))
            .bearer_auth(&token)
            .json(&json!({"current_password": "wrong guess here", "new_password": OTHER_STRONG_PASSWORD}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [403, 403, 403, 403, 403, 429, 429, 429]);

    // 150 simultaneous wrong passwords for one account from one address: the limit (5 per
    // account and address) holds even though they all arrive before any check ends.
    let answers = sign_in_storm(&server, 150, |_| here, |_| "aalcorn".into()).await;
    assert_eq!(answers.get(&401), Some(&5), "{answers:?}");
    assert_eq!(answers.values().sum::<usize>(), 150);
    assert!(
        answers
            .keys()
            .all(|status| [401, 429, 503].contains(status)),
        "{answers:?}"
    );

    // 200 addresses at once, each with a username of its own: the password checks queue
    // behind a few slots instead of all taking memory at once.
    let answers = sign_in_storm(
        &server,
        200,
        |n| std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, n as u8 + 1)),
        |n| format!("nobody-{n}"),
    )
    .await;
    assert_eq!(answers.values().sum::<usize>(), 200);
    assert!(
        answers.keys().all(|status| [401, 503].contains(status)),
        "{answers:?}"
    );
    assert!(answers.get(&401).copied().unwrap_or(0) >= 10, "{answers:?}");

    // A username longer than any account's is refused before any work.
    let long = server.login(&"x".repeat(10_000), "whatever").await;
    assert_eq!(long.status(), StatusCode::BAD_REQUEST);

    let peak = peak_rss_mib(server.child.id());
    eprintln!("sign-in floods: server peak RSS {peak} MiB; last storm {answers:?}");
    assert!(peak < 300, "peak RSS {peak} MiB");
}

#[tokio::test]
async fn points_with_too_many_or_too_long_tags_are_refused_and_cost_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let setup = ingest_setup(data, &[]).await;
    let push = |content_type: &'static str, body: Vec<u8>| {
        let request = setup
            .server
            .client
            .post(setup.server.url("/api/v1/ingest"))
            .bearer_auth(&setup.secret)
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // A 10 MB CSV with 20,000 tag columns, every cell filled.
    let columns = 20_000;
    let mut csv = String::from("experiment,measure,timestamp,value");
    for column in 0..columns {
        csv.push_str(&format!(",t{column}"));
    }
    csv.push('\n');
    let mut row = String::from("device-vibrations,volt,1653040000,1");
    for _ in 0..columns {
        row.push_str(",x");
    }
    row.push('\n');
    while csv.len() < 10_000_000 {
        csv.push_str(&row);
    }
    let (status, outcome) = push("text/csv", csv.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["accepted"], 0, "{outcome}");
    let reason = outcome["rejected"][0]["error"].as_str().unwrap();
    assert!(
        reason.contains("20000 tags in this row, at most 1000"),
        "{reason}"
    );

    // One point with 200,000 tags, and one with a 5 MB tag value.
    let many: serde_json::Map<String, Value> = (0..200_000)
        .map(|i| (format!("k{i}"), Value::from("v")))
        .collect();
    let body = json!({"experiment": "device-vibrations", "measure": "volt", "value": 1, "timestamp": 1_653_040_000, "tags": many});
    let (_, outcome) = push("application/json", body.to_string().into_bytes()).await;
    let reason = outcome["rejected"][0]["error"].as_str().unwrap();
    assert_eq!(
        reason,
        "tags: 200000 tags, at most 32 (ingest.max_tags_per_point)"
    );
    let body = json!({"experiment": "device-vibrations", "measure": "volt", "value": 1, "timestamp": 1_653_040_000, "tags": {"host": "x".repeat(5_000_000)}});
    let (_, outcome) = push("application/json", body.to_string().into_bytes()).await;
    let reason = outcome["rejected"][0]["error"].as_str().unwrap();
    assert!(reason.contains("(ingest.max_tag_value_bytes)"), "{reason}");
    // Points within the limits still go in.
    let body = json!({"experiment": "device-vibrations", "measure": "volt", "value": 2, "timestamp": 1_653_040_000, "tags": {"host": "lab1"}});
    let (_, outcome) = push("application/json", body.to_string().into_bytes()).await;
    assert_eq!(outcome["accepted"], 1, "{outcome}");

    let peak = peak_rss_mib(setup.server.child.id());
    eprintln!("tag attacks: server peak RSS {peak} MiB");
    assert!(peak < 300, "peak RSS {peak} MiB");
}

#[tokio::test]
async fn statistics_requests_are_bounded_in_size_and_in_turns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let setup = ingest_setup(data, &[]).await;
    let server = &setup.server;
    // 60 series (tag k) of 500 points each, over 60 days.
    const START: i64 = 1_653_040_000;
    const SPAN: i64 = 60 * 86_400;
    let mut body = String::new();
    for series in 0..60 {
        for point in 0..500 {
            let line = json!({"experiment": "device-vibrations", "measure": "volt",
                "value": point % 20, "timestamp": START + point * SPAN / 500, "tags": {"k": series.to_string()}});
            body.push_str(&line.to_string());
            body.push('\n');
        }
    }
    let pushed = server
        .client
        .post(server.url("/api/v1/ingest"))
        .bearer_auth(&setup.secret)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), StatusCode::OK);
    let token = server.token("phigg", OTHER_STRONG_PASSWORD).await;
    let stats = |query: String| {
        let request = server
            .client
            .get(server.url(&format!(
                "/api/v1/experiments/1/stats?measure=volt&from={START}&to={}&{query}",
                START + SPAN
            )))
            .bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };

    // The same statistic 4,000 times is computed once.
    let (status, text) = stats(format!("statistics={}", vec!["sum"; 4_000].join(","))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["buckets"][0]["sum"], 60.0 * 25.0 * 190.0);
    // 100 percentiles are more than a request may name.
    let percentiles: Vec<String> = (1..=100)
        .map(|p| format!("p{}", f64::from(p) - 0.5))
        .collect();
    let (status, text) = stats(format!("statistics={}", percentiles.join(","))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("api.max_statistics"), "{text}");
    // 86,400 minute buckets for each of 60 groups, empty ones listed: refused before any work.
    let (status, text) =
        stats("statistics=count&timeslice=minute&group_by=tag:k&fill=null".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("api.max_stats_cells"), "{text}");
    // The same by day is a fine question.
    let (status, text) =
        stats("statistics=count&timeslice=day&group_by=tag:k&fill=null".into()).await;
    assert_eq!(status, StatusCode::OK, "{text}");

    // 40 heavy requests at once from one user: they take turns (a few are refused), and the
    // server keeps answering everyone else meanwhile.
    let heavy = format!(
        "statistics={}&timeslice=day&group_by=tag:k",
        (1..=32)
            .map(|p| format!("p{p}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut storm = tokio::task::JoinSet::new();
    for _ in 0..40 {
        storm.spawn(stats(heavy.clone()));
    }
    let mut slowest_health = Duration::ZERO;
    while !storm.is_empty() {
        let started = Instant::now();
        let health = server.get("/healthz", None).await;
        assert_eq!(health.status(), StatusCode::OK);
        slowest_health = slowest_health.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Some(done) = storm.try_join_next() {
            let (status, text) = done.unwrap();
            assert!(
                [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS].contains(&status),
                "{status}: {text}"
            );
        }
    }
    let peak = peak_rss_mib(server.child.id());
    eprintln!(
        "statistics attacks: server peak RSS {peak} MiB, slowest /healthz {slowest_health:?}"
    );
    assert!(peak < 300, "peak RSS {peak} MiB");
    assert!(
        slowest_health < Duration::from_secs(1),
        "{slowest_health:?}"
    );
}

/// The original adapter's traffic from a stable sensor: no message id, every reading in one
/// second, values cycling over 997 numbers, so most bodies equal earlier ones.
fn repeating_reading(i: usize) -> String {
    json!({"experiment": "device-vibrations", "measure": "volt", "value": (i % 997) as f64, "timestamp": 1_653_090_000}).to_string()
}

/// How many times each value occurs (as text, to key a map).
fn value_counts(
    values: impl IntoIterator<Item = f64>,
) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for value in values {
        *counts.entry(value.to_string()).or_insert(0) += 1;
    }
    counts
}

/// Publishes messages (body, optional message id) on `exchange`, declared as MyMonit
/// declares it, persistent, awaiting the broker's confirms 200 at a time.
async fn publish_all(url: String, exchange: String, messages: Vec<(String, Option<String>)>) {
    use lapin::{
        BasicProperties, Connection, ConnectionProperties, ExchangeKind,
        options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions},
        types::FieldTable,
    };
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    channel
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
        .unwrap();
    let mut pending = Vec::new();
    for (body, message_id) in messages {
        let mut properties = BasicProperties::default().with_delivery_mode(2);
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        let confirm = channel
            .basic_publish(
                exchange.as_str().into(),
                "measures".into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                properties,
            )
            .await
            .unwrap();
        pending.push(confirm);
        if pending.len() == 200 {
            for confirm in pending.drain(..) {
                assert!(confirm.await.unwrap().is_ack());
            }
        }
    }
    for confirm in pending {
        assert!(confirm.await.unwrap().is_ack());
    }
}

/// Publishes `total` repeating readings, without message ids.
async fn publish_repeating(url: String, exchange: String, total: usize) {
    let messages = (0..total).map(|i| (repeating_reading(i), None)).collect();
    publish_all(url, exchange, messages).await;
}

/// How many `volt` measures device-vibrations holds, as `server` counts them.
async fn volt_count(server: &Server, token: &str) -> u64 {
    let stats: Value = server
        .get(
            "/api/v1/experiments/1/stats?measure=volt&statistics=count&from=0",
            Some(token),
        )
        .await
        .json()
        .await
        .unwrap();
    stats["buckets"][0]["count"].as_u64().unwrap_or(0)
}

/// Every stored `volt` value, read as NDJSON through `server`.
async fn volt_values(server: &Server, token: &str) -> Vec<f64> {
    let body = server
        .get(
            "/api/v1/experiments/1/measures?measure=volt&format=ndjson&from=0",
            Some(token),
        )
        .await
        .text()
        .await
        .unwrap();
    body.lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["value"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

/// Waits (up to 2 minutes) until `server` counts at least `at_least` volt measures.
async fn wait_for_volt_count(server: &Server, token: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let count = volt_count(server, token).await;
        if count >= at_least || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server's AMQP figures from its metrics listener: (redeliveries, duplicates skipped).
async fn redelivery_figures(metrics_port: u16) -> (u64, u64) {
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let figure = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}")) as u64
    };
    (
        figure("mymonit_amqp_redeliveries_total "),
        figure("mymonit_amqp_duplicates_skipped_total "),
    )
}

/// Waits until every published reading is stored and a few seconds more (a duplicate would
/// show), then checks each value's multiplicity against what was published.
async fn assert_each_reading_stored_once(server: &Server, token: &str, total: usize) {
    let reached = wait_for_volt_count(server, token, total as u64).await;
    assert_eq!(reached, total as u64, "stored {reached} of {total}");
    // Redeliveries wait for the sessions they may belong to: give them time to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let values = volt_values(server, token).await;
    assert_eq!(values.len(), total, "stored {} of {total}", values.len());
    assert_eq!(
        value_counts(values),
        value_counts((0..total).map(|i| (i % 997) as f64))
    );
}

#[tokio::test]
async fn kill_9_with_repeating_bodies_without_ids_loses_and_doubles_nothing() {
    let Some(url) = test_broker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let name = format!("kill9-repeat-{}", std::process::id());
    let config = amqp_config(data, &url, &name, "batch_size = 200\n");
    let mut setup = ingest_setup(data, &["--config", &config]).await;
    setup.server.wait_consuming().await;
    let token = setup.server.token("phigg", OTHER_STRONG_PASSWORD).await;

    const TOTAL: usize = 30_000;
    let publisher = tokio::spawn(publish_repeating(url.clone(), name.clone(), TOTAL));
    // Killed hard in the middle of the stream, with batches committed and not acknowledged.
    let partial = wait_for_volt_count(&setup.server, &token, 8_000).await;
    assert!(partial >= 8_000, "only {partial} stored before the kill");
    setup.server.kill_9();
    publisher.await.unwrap();

    let metrics_port = free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    setup.server = Server::start(data, &["--config", &config, "--metrics-listen", &metrics]).await;
    assert_each_reading_stored_once(&setup.server, &token, TOTAL).await;
    let (redelivered, skipped) = redelivery_figures(metrics_port).await;
    eprintln!(
        "kill -9, one consumer: published {TOTAL}, stored {TOTAL}, expected {TOTAL}; \
         {redelivered} redelivered after the restart, {skipped} of them skipped as stored before"
    );
    assert!(redelivered > 0, "the kill left no message unacknowledged");
}

#[tokio::test]
async fn three_consumers_killed_at_different_moments_lose_and_double_nothing() {
    three_consumers_killed(false).await;
}

/// The same on PostgreSQL: three instances on one database and one queue.
#[tokio::test]
async fn three_instances_on_postgres_killed_at_different_moments_lose_and_double_nothing() {
    three_consumers_killed(true).await;
}

async fn three_consumers_killed(on_postgres: bool) {
    let Some(url) = test_broker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    if on_postgres && !use_postgres(data).await {
        return;
    }
    let name = format!(
        "kill9-three-{}-{}",
        std::process::id(),
        if on_postgres { "pg" } else { "sqlite" }
    );
    let config = amqp_config(data, &url, &name, "batch_size = 200\n");
    let setup = ingest_setup(data, &["--config", &config]).await;
    let token = setup.server.token("phigg", OTHER_STRONG_PASSWORD).await;
    let mut servers = vec![setup.server];
    let mut metrics_ports = vec![None];
    let start = |metrics_port: u16| {
        let metrics = format!("127.0.0.1:{metrics_port}");
        let config = config.clone();
        async move { Server::start(data, &["--config", &config, "--metrics-listen", &metrics]).await }
    };
    for _ in 0..2 {
        let port = free_port();
        servers.push(start(port).await);
        metrics_ports.push(Some(port));
    }
    for server in &servers {
        server.wait_consuming().await;
    }

    const TOTAL: usize = 30_000;
    let publisher = tokio::spawn(publish_repeating(url.clone(), name.clone(), TOTAL));
    // Each consumer is killed at its own moment while the others keep consuming, and comes
    // back: its committed, unacknowledged messages reach the others as redeliveries.
    for (victim, moment) in [(0, 5_000), (1, 12_000), (2, 19_000)] {
        let witness = &servers[(victim + 1) % 3];
        let reached = wait_for_volt_count(witness, &token, moment).await;
        assert!(
            reached >= moment,
            "only {reached} stored before kill {victim}"
        );
        servers[victim].kill_9();
        let port = free_port();
        servers[victim] = start(port).await;
        metrics_ports[victim] = Some(port);
    }
    publisher.await.unwrap();
    assert_each_reading_stored_once(&servers[0], &token, TOTAL).await;
    let (mut redelivered, mut skipped) = (0, 0);
    for port in metrics_ports.into_iter().flatten() {
        let (r, s) = redelivery_figures(port).await;
        redelivered += r;
        skipped += s;
    }
    eprintln!(
        "kill -9, three consumers (on {}): published {TOTAL}, stored {TOTAL}, expected {TOTAL}; \
         {redelivered} redelivered to the last servers, {skipped} skipped as stored before",
        if on_postgres { "PostgreSQL" } else { "SQLite" }
    );
}

#[tokio::test]
async fn a_consumer_dying_between_commit_and_acknowledgement_doubles_nothing() {
    let Some(url) = test_broker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let name = format!("abort-{}", std::process::id());
    let config = amqp_config(data, &url, &name, "batch_size = 200\n");
    let mut setup = ingest_setup(data, &["--config", &config]).await;
    let token = setup.server.token("phigg", OTHER_STRONG_PASSWORD).await;
    // A second consumer, which dies right after committing its 10th batch, before the
    // broker hears of its acknowledgement: that batch comes back to the first consumer while
    // the first one is busy with the same bodies.
    let mut doomed = Server::start_with_env(
        data,
        &["--config", &config],
        &[("MYMONIT_TEST_ABORT_AFTER_COMMITS", "10")],
    )
    .await;
    setup.server.wait_consuming().await;
    doomed.wait_consuming().await;
    setup.server.kill_9();
    let metrics_port = free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    setup.server = Server::start(data, &["--config", &config, "--metrics-listen", &metrics]).await;
    setup.server.wait_consuming().await;

    const TOTAL: usize = 20_000;
    publish_repeating(url.clone(), name.clone(), TOTAL).await;
    let status = doomed.child.wait().unwrap();
    assert!(!status.success(), "the second consumer did not abort");
    assert_each_reading_stored_once(&setup.server, &token, TOTAL).await;
    let (redelivered, skipped) = redelivery_figures(metrics_port).await;
    eprintln!(
        "abort between commit and acknowledgement: published {TOTAL}, stored {TOTAL}, \
         expected {TOTAL}; {redelivered} redelivered, {skipped} skipped as stored before"
    );
    assert!(skipped > 0, "the aborted batch was not redelivered");
    assert!(
        skipped <= 200,
        "more skipped ({skipped}) than one batch holds"
    );
}

/// Compaction moves recent points into chunks one transaction per batch: killed with SIGKILL
/// in the middle of it, the server restarts and finishes with every point stored once.
#[tokio::test]
async fn kill_9_mid_compaction_loses_and_doubles_nothing() {
    use mymonit_store::{MeasureQuery, MeasureStore, SqliteStore, Store};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let paused = data.join("paused.toml");
    fs::write(
        &paused,
        "[storage]\ncompact_interval_ms = 3600000\ncompact_batch_points = 10000\n",
    )
    .unwrap();
    let running = data.join("running.toml");
    fs::write(&running, "[storage]\ncompact_batch_points = 10000\n").unwrap();
    let mut setup = ingest_setup(data, &["--config", paused.to_str().unwrap()]).await;

    // Two series, pushed while the compactor sleeps, so they wait in the recent table.
    const TOTAL: usize = 200_000;
    let lines: Vec<String> = (0..TOTAL)
        .map(|i| {
            let measure = if i % 2 == 0 { "volt" } else { "watt" };
            format!("device-vibrations {measure}={i} {}", 1_653_080_000 + i / 2)
        })
        .collect();
    for batch in lines.chunks(20_000) {
        let reply = setup
            .server
            .client
            .post(setup.server.url("/api/v1/ingest?precision=s"))
            .bearer_auth(&setup.secret)
            .header("content-type", "text/plain")
            .body(batch.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
    }
    let store = SqliteStore::open(data).await.unwrap();
    assert_eq!(store.pending_compaction().await.unwrap(), TOTAL as u64);
    assert!(setup.server.terminate().success());

    // With the compactor running: killed once some batches, not all, are committed.
    setup.server = Server::start(data, &["--config", running.to_str().unwrap()]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = store.pending_compaction().await.unwrap();
        if pending < TOTAL as u64 {
            assert!(pending > 0, "compaction ended before the kill");
            break;
        }
        assert!(Instant::now() < deadline, "compaction did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let killed = Command::new("kill")
        .arg("-9")
        .arg(setup.server.child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = setup.server.child.wait();
    let pending_at_kill = store.pending_compaction().await.unwrap();

    // Restarted, it compacts the rest; every point is there once, in order.
    setup.server = Server::start(data, &["--config", running.to_str().unwrap()]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while store.pending_compaction().await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "compaction did not finish after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = store
        .query(&MeasureQuery {
            experiment_id: 1,
            limit: TOTAL as u32 + 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        TOTAL,
        "{pending_at_kill} points were pending at the kill"
    );
    for (i, measure) in stored.iter().enumerate() {
        assert_eq!(measure.value, i as f64);
        assert_eq!(
            measure.timestamp_ns,
            (1_653_080_000 + i as i64 / 2) * 1_000_000_000
        );
    }
}

/// Runs one statement on a database file the test tampers with.
async fn exec(pool: &sqlx::SqlitePool, sql: &'static str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// `mymonit audit verify` on a trail altered in the database file, as an intruder with the
/// file could: the append-only triggers dropped, then one record edited, one removed, two
/// swapped. Each time it fails and names the first bad record; restored, it passes again.
#[tokio::test]
async fn audit_verify_names_the_first_altered_removed_or_reordered_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert_ok(&add_user(data, "A001", "aalcorn", "ADMIN", STRONG_PASSWORD));
    let mut server = Server::start(data, &[]).await;
    let admin = server.token("aalcorn", STRONG_PASSWORD).await;
    for name in ["one", "two", "three"] {
        let created = server
            .client
            .post(server.url("/api/v1/experiments"))
            .bearer_auth(&admin)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    assert!(server.terminate().success());
    let intact = assert_ok(&run_args(data, &["audit", "verify"]));
    // server.start, auth.login, three creations, server.stop
    assert!(intact.contains("intact: 6 records"), "{intact}");

    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("mymonit.db").display()))
            .await
            .unwrap();
    let refused = sqlx::query("update audit_log set action = 'x' where seq = 1")
        .execute(&pool)
        .await;
    assert!(refused.is_err(), "the trail accepted an update");
    for trigger in ["audit_log_no_update", "audit_log_no_delete"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("drop trigger {trigger}")))
            .execute(&pool)
            .await
            .unwrap();
    }
    let broken = |expected: &str| {
        let output = run_args(data, &["audit", "verify"]);
        assert!(
            !output.status.success(),
            "verify passed on a tampered trail"
        );
        let message = stderr(&output);
        assert!(
            message.contains(expected),
            "expected {expected:?} in: {message}"
        );
    };

    // Altered.
    exec(
        &pool,
        "update audit_log set outcome = 'failure' where seq = 3",
    )
    .await;
    broken("record 3: its content does not match its hash");
    exec(
        &pool,
        "update audit_log set outcome = 'success' where seq = 3",
    )
    .await;
    assert_ok(&run_args(data, &["audit", "verify"]));

    // Removed.
    exec(
        &pool,
        "create table saved as select * from audit_log where seq = 2",
    )
    .await;
    exec(&pool, "delete from audit_log where seq = 2").await;
    broken("record 2: missing");
    exec(&pool, "insert into audit_log select * from saved").await;
    assert_ok(&run_args(data, &["audit", "verify"]));

    // Reordered: records 4 and 5 swap places.
    exec(&pool, "update audit_log set seq = -4 where seq = 4").await;
    exec(&pool, "update audit_log set seq = 4 where seq = 5").await;
    exec(&pool, "update audit_log set seq = 5 where seq = -4").await;
    broken("record 4");
    pool.close().await;
}

/// A whole session through the real binary, with JSON logs at debug level: no password,
/// token, email or person's name reaches the logs.
#[tokio::test]
async fn logs_carry_no_password_token_email_or_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert_ok(&add_user(data, "A001", "aalcorn", "ADMIN", STRONG_PASSWORD));
    let config = data.join("debug.toml");
    fs::write(&config, "log_filter = \"debug\"\n").unwrap();
    let mut server = Server::start(data, &["--config", config.to_str().unwrap()]).await;
    let admin = server.token("aalcorn", STRONG_PASSWORD).await;
    let post = |path: &str, token: &str, body: Value| {
        server
            .client
            .post(server.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let name = "Katherine Johnson";
    let email = "katherine@nasa.example";
    let created = post(
        "/api/v1/users",
        &admin,
        json!({"user_id": "S050", "name": name, "username": "kjohnson", "email": email,
            "role": "SCIENTIST", "password": OTHER_STRONG_PASSWORD}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let experiment: Value = post("/api/v1/experiments", &admin, json!({"name": "orbits"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let associated = post(
        "/api/v1/associations",
        &admin,
        json!({"experiment_id": experiment["experiment_id"], "user_id": "S050"}),
    )
    .await
    .unwrap();
    assert_eq!(associated.status(), StatusCode::CREATED);
    let wrong = server.login("kjohnson", "Wrong-Password-123").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let scientist = server.token("kjohnson", OTHER_STRONG_PASSWORD).await;
    let new_password = "Gx7-Orbital-Mechanics-1962";
    let changed = post(
        "/api/v1/auth/password",
        &scientist,
        json!({"current_password": OTHER_STRONG_PASSWORD, "new_password": new_password}),
    )
    .await
    .unwrap();
    assert!(
        changed.status().is_success(),
        "{}",
        changed.text().await.unwrap()
    );
    let ingest: Value = post(
        "/api/v1/ingest-tokens",
        &admin,
        json!({"experiments": ["orbits"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let secret = ingest["token"].as_str().unwrap().to_string();
    let pushed = server
        .client
        .post(server.url("/api/v1/ingest"))
        .bearer_auth(&secret)
        .header("content-type", "application/x-ndjson")
        .body("{\"experiment\":\"orbits\",\"measure\":\"volt\",\"value\":1,\"timestamp\":1}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), StatusCode::OK);
    let forged = server
        .get("/api/v1/auth/me", Some("eyJhbGciOiJub25lIn0.e30."))
        .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert!(server.terminate().success());

    let logs = format!("{}{}", server.stdout(), server.stderr());
    assert!(
        logs.contains("signed in"),
        "the logs were not captured:\n{logs}"
    );
    for secret in [
        STRONG_PASSWORD,
        OTHER_STRONG_PASSWORD,
        new_password,
        "Wrong-Password-123",
        name,
        email,
        "aalcorn@home.cern",
        &admin,
        &scientist,
        &secret,
    ] {
        assert!(!logs.contains(secret), "{secret:?} is in the logs");
    }
}

/// The example configuration names every key correctly (unknown keys are refused).
#[test]
fn the_example_configuration_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/mymonit.example.toml"
    );
    let mut command = mymonit(dir.path());
    command
        .env_remove("MYMONIT_METRICS_LISTEN")
        .args(["--config", example, "print-config"]);
    let printed = assert_ok(&run(command));
    assert!(
        printed.contains("metrics_listen = \"127.0.0.1:9464\""),
        "{printed}"
    );
    assert!(printed.contains("compact_interval_ms = 1000"), "{printed}");
}

/// `--log-ship`: with no sink listening the server starts and answers at its usual pace;
/// once a sink listens, the queued lines and the new ones reach it as JSON.
#[tokio::test]
async fn logs_are_shipped_over_tcp_and_an_absent_sink_slows_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let port = free_port();
    let target = format!("tcp://127.0.0.1:{port}");
    let mut server = Server::start(data, &["--log-ship", &target]).await;
    let started = Instant::now();
    for _ in 0..50 {
        let reply = server.get("/healthz", None).await;
        assert_eq!(reply.status(), StatusCode::OK);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "50 requests took {:?} with no log sink",
        started.elapsed()
    );
    // The sink comes up; the shipper reconnects (backoff of at most 10 s).
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let reader = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut lines = Vec::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stream)) {
            let Ok(line) = line else { break };
            let done = line.contains("\"route\":\"/healthz\"");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() && Instant::now() < deadline {
        let _ = server.get("/healthz", None).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lines = reader.join().unwrap();
    assert!(server.terminate().success());
    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(
        parsed.iter().any(|l| l["message"] == "MyMonit listening"),
        "the line logged before the sink was up is missing: {lines:?}"
    );
    assert!(parsed.iter().any(|l| l["span"]["route"] == "/healthz"));
}

/// A log sink that is not a tcp:// URL is refused at start, by name.
#[test]
fn a_bad_log_ship_target_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_args(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-ship",
            "udp://127.0.0.1:1",
        ],
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("log_ship"), "{}", stderr(&output));
}

// ---------------------------------------------------------------------------------------------
// The web UI in a real browser
// ---------------------------------------------------------------------------------------------

/// Why the web UI's end-to-end test cannot run here, if it cannot: it needs Node with the UI's
/// packages installed (`web/node_modules`, from `npm ci`) and Chromium.
fn browser_missing(web: &Path) -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|output| output.status.success()) {
        return Some("node is not installed".into());
    }
    if !web.join("node_modules/playwright-core").is_dir() {
        return Some("web/node_modules is missing (run npm ci in web/)".into());
    }
    let chromium = std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("no Chromium at {}", chromium.to_string_lossy()));
    }
    None
}

/// The demo as a user meets it: `serve --demo`, then each role signs in to the web UI in
/// headless Chromium and does its job (`web/e2e/run.mjs`: the scientist sees a chart of the
/// demo data, the admin creates an experiment and associates a scientist who then sees it,
/// the auditor filters the trail). Screenshots land in `target/e2e/`.
#[tokio::test]
async fn the_web_ui_works_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let web = root.join("web");
    if let Some(reason) = browser_missing(&web) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the web UI's end-to-end test, but {reason}"
        );
        eprintln!("skipped: {reason} (run scripts/test)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let server = Server::start(data, &["--demo"]).await;
    let home = server.get("/", None).await.text().await.unwrap();
    assert!(
        home.contains("<script"),
        "this binary was built without the web UI (build web/dist first, as scripts/test does): {home}"
    );
    let out = root.join("target/e2e");
    fs::create_dir_all(&out).unwrap();
    const SHOTS: [&str; 6] = [
        "scientist-dashboard.png",
        "scientist-endpoints.png",
        "scientist-alerts.png",
        "admin-experiment.png",
        "admin-sources.png",
        "auditor-trail.png",
    ];
    for shot in SHOTS {
        let _ = fs::remove_file(out.join(shot));
    }
    let mut child = Command::new("node")
        .arg(web.join("e2e/run.mjs"))
        .arg("--url")
        .arg(&server.base)
        .arg("--credentials")
        .arg(data.join("demo-credentials.json"))
        .arg("--out")
        .arg(&out)
        .current_dir(&web)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start node");
    // Read both pipes while the browser runs, so neither fills up and blocks it.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read_stdout = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    let read_stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let printed = format!(
        "stdout:\n{}\nstderr:\n{}\nserver stderr (tail):\n{}",
        read_stdout.join().unwrap(),
        read_stderr.join().unwrap(),
        {
            let log = server.stderr();
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        }
    );
    let status = status.unwrap_or_else(|| panic!("the browser test ran over 300 s\n{printed}"));
    assert!(
        status.success(),
        "the browser test failed ({status})\n{printed}"
    );
    eprintln!("{printed}");
    for shot in SHOTS {
        let size = fs::metadata(out.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "screenshot {shot} missing or empty");
    }
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

/// A private certificate authority, as an operator's would be.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa {
            issuer: rcgen::Issuer::new(params, key),
            pem,
        }
    }

    /// A leaf for 127.0.0.1 and localhost: (certificate PEM, key PEM, certificate DER).
    fn leaf(&self, name: &str, usage: rcgen::ExtendedKeyUsagePurpose) -> (String, String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    /// A client that trusts this authority only; a fresh one opens fresh connections.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap()])
            .tls_info(true)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }
}

/// The certificate a response came over.
fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a TLS response carries the server's certificate")
        .to_vec()
}

#[tokio::test]
async fn serve_speaks_https_and_takes_a_new_certificate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert_ok(&add_user(data, "ada", "ada", "scientist", STRONG_PASSWORD));
    let ca = TestCa::new("MyMonit test CA");
    let (cert_pem, key_pem, first_der) =
        ca.leaf("first", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let (cert, key) = (data.join("server.crt"), data.join("server.key"));
    fs::write(&cert, &cert_pem).unwrap();
    fs::write(&key, &key_pem).unwrap();
    let server = Server::launch(
        data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
        "https",
        ca.client(),
    )
    .await;
    assert!(server.stderr().contains("listening on https://127.0.0.1:"));

    // A client trusting the authority signs in and reads, over the first certificate.
    let token = server.token("ada", STRONG_PASSWORD).await;
    let listed = server.get("/api/v1/experiments", Some(&token)).await;
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(peer_certificate(&listed), first_der);
    assert_eq!(
        listed.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let session = server
        .client
        .post(server.url("/api/v1/auth/session"))
        .json(&json!({"username": "ada", "password": STRONG_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::OK);
    let cookie = session.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // A client that does not trust the authority is refused, naming the certificate.
    let untrusted = reqwest::Client::new()
        .get(server.url("/healthz"))
        .send()
        .await
        .expect_err("an unknown authority is not trusted");
    let chain = format!("{:?}", anyhow_chain(&untrusted));
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    // Plain HTTP on the HTTPS port gets no answer as HTTP.
    let plain = reqwest::Client::new()
        .get(server.url("/healthz").replacen("https", "http", 1))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.is_err() || plain.unwrap().status() != StatusCode::OK,
        "plain HTTP must not be served on the TLS listener"
    );

    // A renewed certificate, files replaced and SIGHUP sent: new connections get it, the
    // connection already open keeps working.
    let (cert_pem, key_pem, second_der) =
        ca.leaf("second", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    fs::write(&cert, &cert_pem).unwrap();
    fs::write(&key, &key_pem).unwrap();
    let hup = Command::new("kill")
        .arg("-HUP")
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = ca
            .client()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        if peer_certificate(&fresh) == second_der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served 10 s after SIGHUP; stderr:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = server.get("/api/v1/experiments", Some(&token)).await;
    assert_eq!(again.status(), StatusCode::OK);

    // Broken files on the next SIGHUP: the certificate in use stays, the log says why.
    fs::write(&key, "not a key").unwrap();
    let hup = Command::new("kill")
        .arg("-HUP")
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stdout().contains("previous certificate stays") {
        assert!(Instant::now() < deadline, "stdout:\n{}", server.stdout());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let still = ca
        .client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(peer_certificate(&still), second_der);
}

/// `err` and its causes, as text.
fn anyhow_chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    std::iter::successors(Some(err), |cause| cause.source())
        .map(ToString::to_string)
        .collect()
}

#[tokio::test]
async fn the_metrics_listener_can_require_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let ca = TestCa::new("MyMonit test CA");
    let (cert_pem, key_pem, _) = ca.leaf("server", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let (cert, key, ca_file) = (
        data.join("server.crt"),
        data.join("server.key"),
        data.join("ca.crt"),
    );
    fs::write(&cert, &cert_pem).unwrap();
    fs::write(&key, &key_pem).unwrap();
    fs::write(&ca_file, &ca.pem).unwrap();
    let metrics_port = free_port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let server = Server::launch(
        data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--metrics-listen",
            &metrics_listen,
        ],
        &[(
            "MYMONIT_TLS__METRICS_CLIENT_CA_FILE",
            ca_file.to_str().unwrap(),
        )],
        "https",
        ca.client(),
    )
    .await;
    let metrics_url = format!("https://127.0.0.1:{metrics_port}/metrics");
    // The API asks for no client certificate.
    assert_eq!(server.get("/healthz", None).await.status(), StatusCode::OK);
    // Without a client certificate the handshake fails.
    let refused = ca.client().get(&metrics_url).send().await;
    assert!(
        refused.is_err(),
        "metrics served without a client certificate"
    );
    // A certificate of another authority is refused too.
    let stranger = TestCa::new("Someone else's CA");
    let (other_pem, other_key, _) =
        stranger.leaf("prometheus", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let with_identity = |pem: String, key: String| {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap()])
            .identity(reqwest::Identity::from_pem(format!("{pem}{key}").as_bytes()).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let refused = with_identity(other_pem, other_key)
        .get(&metrics_url)
        .send()
        .await;
    assert!(
        refused.is_err(),
        "metrics served to a stranger's certificate"
    );
    // Prometheus' certificate, signed by the configured authority, reads the metrics.
    let (client_pem, client_key, _) =
        ca.leaf("prometheus", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let scraped = with_identity(client_pem, client_key)
        .get(&metrics_url)
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("mymonit_"), "{text}");
}

#[test]
fn serve_refuses_unusable_tls_files_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (cert, key) = (data.join("server.crt"), data.join("server.key"));
    fs::write(&cert, "not a certificate").unwrap();
    fs::write(&key, "not a key").unwrap();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let serve = |extra: &[&str]| {
        let mut command = mymonit(data);
        command
            .args(["serve", "--listen", &listen, "--metrics-listen", "off"])
            .args(extra)
            .stdin(Stdio::null());
        run(command)
    };
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let output = serve(&["--tls-cert", cert, "--tls-key", key]);
    let message = assert_fails_with(&output, "tls.cert_file");
    assert!(message.contains("no PEM certificate"), "{message}");
    let output = serve(&["--tls-cert", cert]);
    assert_fails_with(&output, "--tls-key");
    let missing = data.join("absent.crt");
    let output = serve(&["--tls-cert", missing.to_str().unwrap(), "--tls-key", key]);
    assert_fails_with(&output, "absent.crt");
}

/// The test broker's TLS listener and the CA file that signed its certificate, or `None`
/// (the test is skipped) outside CI; in CI a missing one fails the test.
fn test_tls_broker() -> Option<(String, String)> {
    match (
        std::env::var("MYMONIT_TEST_AMQPS_URL"),
        std::env::var("MYMONIT_TEST_AMQPS_CA"),
    ) {
        (Ok(url), Ok(ca)) if !url.is_empty() && !ca.is_empty() => Some((url, ca)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but MYMONIT_TEST_AMQPS_URL or MYMONIT_TEST_AMQPS_CA is not")
        }
        _ => {
            eprintln!("skipped: no RabbitMQ TLS listener (run scripts/test)");
            None
        }
    }
}

/// Runs `command` until it exits, failing the test if that takes over `limit`.
fn run_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the command did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn amqps_carries_measures_and_a_wrong_authority_is_refused() {
    let Some((url, ca)) = test_tls_broker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let name = format!("amqps-{}", std::process::id());
    let config = amqp_config(data, &url, &name, &format!("tls_ca_file = \"{ca}\"\n"));
    let setup = ingest_setup(data, &["--config", &config]).await;
    setup.server.wait_consuming().await;
    // The adapter publishes over TLS, trusting the broker's authority; the consumer reads
    // over TLS: every point arrives.
    for (format, file, extra) in inputs(data) {
        let mut extra = extra;
        extra.extend_from_slice(&["--exchange", &name, "--tls-ca", &ca]);
        assert_ok(&adapt(data, format, &file, &extra, &url));
    }
    assert_eq!(
        setup.values("hertz", 5).await,
        vec![1.0, 2.0, 3.0, 4.0, 5.0]
    );

    // Another authority: the adapter says the handshake failed and why, without retrying.
    let stranger = data.join("stranger-ca.crt");
    fs::write(&stranger, TestCa::new("Someone else's CA").pem).unwrap();
    let stranger = stranger.to_str().unwrap();
    let (format, file, mut extra) = inputs(data).swap_remove(0);
    extra.extend_from_slice(&["--exchange", &name, "--tls-ca", stranger]);
    let started = Instant::now();
    let output = adapt(data, format, &file, &extra, &url);
    let message = assert_fails_with(&output, "TLS handshake failed");
    assert!(message.contains("--tls-ca"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a refused certificate is not worth retrying"
    );

    // The server, told to trust the other authority, stops at start naming the problem.
    let wrong = data.join("wrong.toml");
    fs::write(
        &wrong,
        format!(
            "[amqp]\nurl = \"{url}\"\nexchange = \"{name}\"\nqueue = \"{name}.measures\"\n\
             dead_letter_queue = \"{name}.dead\"\ntls_ca_file = \"{stranger}\"\n"
        ),
    )
    .unwrap();
    let mut serve = mymonit(data);
    serve.args([
        "serve",
        "--config",
        wrong.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--metrics-listen",
        "off",
    ]);
    let output = run_within(serve, Duration::from_secs(60));
    let message = assert_fails_with(&output, "amqp.tls_ca_file");
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}

#[tokio::test]
async fn postgres_is_reached_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    if !use_postgres(data).await {
        return;
    }
    let ca = match std::env::var("MYMONIT_TEST_DATABASE_CA") {
        Ok(ca) if !ca.is_empty() => ca,
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but MYMONIT_TEST_DATABASE_CA is not")
        }
        _ => return,
    };
    let url_file = data.join(DATABASE_URL_FILE);
    let plain = fs::read_to_string(&url_file).unwrap().trim().to_string();
    let verified = format!("{plain}?sslmode=verify-full&sslrootcert={ca}");
    fs::write(&url_file, &verified).unwrap();
    assert_ok(&add_user(data, "ada", "ada", "scientist", STRONG_PASSWORD));
    assert_eq!(list_users(data).len(), 1);
    // The session really is encrypted.
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&verified)
        .await
        .unwrap();
    let encrypted: bool =
        sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert!(encrypted);
    // Another authority: refused, naming the certificate.
    let stranger = data.join("stranger-ca.crt");
    fs::write(&stranger, TestCa::new("Someone else's CA").pem).unwrap();
    fs::write(
        &url_file,
        format!(
            "{plain}?sslmode=verify-full&sslrootcert={}",
            stranger.display()
        ),
    )
    .unwrap();
    let output = run_args(data, &["user", "list"]);
    let message = assert_fails_with(&output, "cannot open the database");
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    assert!(!message.contains(":mymonit@"), "password shown: {message}");
}

#[tokio::test]
async fn amqps_with_a_client_certificate_needs_no_password() {
    let Some((url, ca)) = test_tls_broker() else {
        return;
    };
    let (cert, key) = match (
        std::env::var("MYMONIT_TEST_AMQPS_CLIENT_CERT"),
        std::env::var("MYMONIT_TEST_AMQPS_CLIENT_KEY"),
    ) {
        (Ok(cert), Ok(key)) if !cert.is_empty() && !key.is_empty() => (cert, key),
        _ => panic!("the test broker has a TLS listener but no client certificate"),
    };
    // No user or password in the URL: the certificate's common name signs in (EXTERNAL).
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let url = format!("{scheme}://{host}?auth_mechanism=external");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let name = format!("external-{}", std::process::id());
    let config = amqp_config(
        data,
        &url,
        &name,
        &format!("tls_ca_file = \"{ca}\"\ntls_cert_file = \"{cert}\"\ntls_key_file = \"{key}\"\n"),
    );
    let setup = ingest_setup(data, &["--config", &config]).await;
    setup.server.wait_consuming().await;
    for (format, file, extra) in inputs(data) {
        let mut extra = extra;
        extra.extend_from_slice(&[
            "--exchange",
            &name,
            "--tls-ca",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ]);
        assert_ok(&adapt(data, format, &file, &extra, &url));
    }
    assert_eq!(
        setup.values("hertz", 5).await,
        vec![1.0, 2.0, 3.0, 4.0, 5.0]
    );
    // Without the certificate, EXTERNAL has nothing to sign in with: refused, not retried
    // for ever.
    let (format, file, mut extra) = inputs(data).swap_remove(0);
    extra.extend_from_slice(&["--exchange", &name, "--tls-ca", &ca, "--attempts", "2"]);
    let output = adapt(data, format, &file, &extra, &url);
    assert_fails_with(&output, "not delivered");
}
