//! The deployment files of `deploy/`, checked against MyMonit itself: the shipped nginx
//! configuration terminates TLS in front of two instances on one PostgreSQL (a real nginx,
//! from Debian's package), and every setting, environment variable, port and probe the files
//! name exists in MyMonit; their YAML parses.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use figment::Figment;
use mymonit_server::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TestApp, TestDatabase, World, free_port, program_available, spawn_app_with,
    test_postgres, world_with,
};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");

fn deploy_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(DEPLOY).join(name))
        .unwrap_or_else(|err| panic!("deploy/{name}: {err}"))
}

/// nginx, or `None` (the test is skipped) outside CI; in CI a missing one fails the test.
fn nginx() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file());
    program_available("nginx", found.is_some());
    found
}

/// The shipped `deploy/nginx/mymonit.conf` made to run here: our instances instead of the
/// Compose services, loopback ports instead of 80 and 443, the test's certificate. Every
/// substitution must apply, so that the file tested is the file shipped.
fn nginx_site(upstreams: &[SocketAddr], cert: &Path, key: &Path, http: u16, https: u16) -> String {
    let shipped = deploy_file("nginx/mymonit.conf");
    let mut site = String::new();
    let mut upstream_lines = 0;
    for line in shipped.lines() {
        if line.trim_start().starts_with("server mymonit-") {
            if upstream_lines == 0 {
                for upstream in upstreams {
                    site.push_str(&format!(
                        "    server {upstream} max_fails=3 fail_timeout=10s;\n"
                    ));
                }
            }
            upstream_lines += 1;
            continue;
        }
        site.push_str(line);
        site.push('\n');
    }
    assert_eq!(
        upstream_lines, 2,
        "the shipped upstream names two instances"
    );
    for (shipped, local) in [
        ("listen 80;", format!("listen 127.0.0.1:{http};")),
        (
            "listen 443 ssl http2;",
            format!("listen 127.0.0.1:{https} ssl http2;"),
        ),
        ("/etc/nginx/certs/server.pem", cert.display().to_string()),
        ("/run/secrets/server_tls_key", key.display().to_string()),
    ] {
        assert!(
            site.contains(shipped),
            "deploy/nginx/mymonit.conf lost {shipped:?}"
        );
        site = site.replace(shipped, &local);
    }
    site
}

/// A private nginx on loopback, stopped by PID when dropped.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Writes the main configuration around `site` (nginx's `http` context holds it, as in
    /// the official image), runs `nginx -t` on it, then starts nginx.
    fn start(binary: &Path, site: &str, https: u16) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        // Workers run as an unprivileged user when nginx starts as root: they write here.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        std::fs::write(path.join("site.conf"), site).unwrap();
        let d = path.display();
        std::fs::write(
            path.join("nginx.conf"),
            format!(
                "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
                 include {d}/site.conf;\n}}\n"
            ),
        )
        .unwrap();
        let args = |command: &mut Command| {
            command
                .arg("-p")
                .arg(path)
                .arg("-e")
                .arg(path.join("error.log"))
                .arg("-c")
                .arg(path.join("nginx.conf"));
        };
        let mut check = Command::new(binary);
        args(&mut check);
        let checked = check.arg("-t").output().unwrap();
        assert!(
            checked.status.success(),
            "nginx -t refuses deploy/nginx/mymonit.conf:\n{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        let mut run = Command::new(binary);
        args(&mut run);
        let child = run
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nginx = Nginx { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", https)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen; its log:\n{}",
                nginx.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: nginx's graceful stop, then reap it; SIGKILL if it lingers.
        let _ = Command::new("kill")
            .arg("-QUIT")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private authority and a certificate for 127.0.0.1 signed by it, written under `dir`:
/// (CA PEM, certificate path, key path).
fn certificate(dir: &Path) -> (String, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "MyMonit test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server-key.pem"));
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca_pem, cert_path, key_path)
}

/// Two instances on a fresh PostgreSQL database with one signing key, both trusting the
/// proxy on loopback; `None` without a test PostgreSQL.
async fn two_instances_behind_a_proxy() -> Option<(TestDatabase, World, TestApp)> {
    test_postgres()?;
    let (database, url) = TestDatabase::create().await;
    let first_url = url.clone();
    let world = world_with(|s| {
        s.database.url = Some(first_url);
        s.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let key = world.app.data_dir.join("jwt-signing-key.ed25519.pk8");
    let second = spawn_app_with(|s| {
        s.database.url = Some(url);
        s.auth.signing_key_file = Some(key);
        s.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    Some((database, world, second))
}

#[tokio::test]
async fn nginx_terminates_tls_in_front_of_two_instances() {
    let Some(binary) = nginx() else { return };
    let Some((_database, world, b)) = two_instances_behind_a_proxy().await else {
        return;
    };
    let a = &world.app;
    let certificates = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(certificates.path());
    let (http, https) = (free_port(), free_port());
    let site = nginx_site(&[a.addr, b.addr], &cert, &key, http, https);
    let nginx = Nginx::start(&binary, &site, https);
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{https}");

    // Plain HTTP is sent to HTTPS.
    let redirected = client
        .get(format!("http://127.0.0.1:{http}/api/v1/experiments"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirected.status(), StatusCode::MOVED_PERMANENTLY);

    // Sign in and read through nginx, over TLS.
    let signed_in = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "kbouman", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK, "{}", nginx.log());
    let body: Value = signed_in.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    let listed = client
        .get(format!("{base}/api/v1/experiments"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert!(listed.headers().contains_key("strict-transport-security"));
    let listed = listed.text().await.unwrap();
    assert!(listed.contains("black-holes"), "{listed}");
    // The session cookie is Secure: nginx says the client came over HTTPS.
    let session = client
        .post(format!("{base}/api/v1/auth/session"))
        .json(&json!({"username": "kbouman", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::OK);
    let cookie = session.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // A live stream through nginx hears measures stored through either instance, whichever
    // of them holds the stream.
    let created = a
        .call(
            Method::POST,
            "/api/v1/ingest-tokens",
            Some(&world.admin),
            Some(&json!({"experiments": ["black-holes"], "description": "rack"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let secret = created.json()["token"].as_str().unwrap().to_string();
    let mut stream = client
        .get(format!(
            "{base}/api/v1/experiments/{}/stream",
            world.black_holes
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let opened = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .expect("the stream opens at once, unbuffered")
        .unwrap()
        .unwrap();
    assert_eq!(std::str::from_utf8(&opened).unwrap(), ": connected\n\n");
    for (instance, value) in [(a, 1), (&b, 2)] {
        let line = format!(
            r#"{{"experiment":"black-holes","measure":"watt","value":{value},"timestamp":1653040000}}"#
        );
        let pushed = instance
            .raw(
                Method::POST,
                "/api/v1/ingest",
                Some(&secret),
                Some("application/x-ndjson"),
                line.into_bytes(),
            )
            .await;
        assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.text);
    }
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while text.matches("event: measure").count() < 2 {
        let Ok(chunk) = tokio::time::timeout_at(deadline, stream.chunk()).await else {
            break;
        };
        text.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
    }
    assert_eq!(
        text.matches("event: measure").count(),
        2,
        "the stream through nginx missed a measure: {text}"
    );
    drop(stream);

    // One instance gone: every request still succeeds, through the other.
    drop(b);
    for _ in 0..20 {
        let read = client
            .get(format!("{base}/api/v1/experiments"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), StatusCode::OK, "{}", nginx.log());
    }
}

/// `MYMONIT_*` variables that are not settings (see `Settings::load`).
const NOT_SETTINGS: [&str; 3] = [
    "MYMONIT_CONFIG",
    "MYMONIT_INGEST_TOKEN",
    "MYMONIT_DATABASE_URL",
];

/// Every `MYMONIT_*` name in `text`.
fn variables_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = text[at..].find("MYMONIT_") {
        let start = at + found;
        let mut end = start + "MYMONIT_".len();
        while end < bytes.len()
            && (bytes[end].is_ascii_uppercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        let name = text[start..end].trim_end_matches('_');
        // `MYMONIT_*` in prose names the family, not a variable.
        if name.len() > "MYMONIT_".len() {
            names.insert(name.to_string());
        }
        at = end;
    }
    names
}

/// The settings key a `MYMONIT_*` variable sets (`MYMONIT_AUTH__SIGNING_KEY_FILE`:
/// `auth.signing_key_file`).
fn setting_of(variable: &str) -> String {
    variable["MYMONIT_".len()..]
        .to_lowercase()
        .replace("__", ".")
}

/// Every key of the settings, as dotted paths, from their TOML form with every optional
/// value filled in.
fn setting_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, value: &toml::Value, keys: &mut BTreeSet<String>) {
        if let toml::Value::Table(table) = value {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                keys.insert(path.clone());
                walk(&path, value, keys);
            }
        }
    }
    let mut settings = Settings::default();
    // Optional settings are absent from TOML while unset: set them for the listing.
    settings.database.url = Some("postgres://x".into());
    settings.amqp.url = Some("amqp://x".into());
    settings.amqp.tls_ca_file = Some("x".into());
    settings.amqp.tls_cert_file = Some("x".into());
    settings.amqp.tls_key_file = Some("x".into());
    settings.auth.signing_key_file = Some("x".into());
    settings.tls.cert_file = Some("x".into());
    settings.tls.key_file = Some("x".into());
    settings.tls.metrics_client_ca_file = Some("x".into());
    settings.log_ship = Some("tcp://x:1".into());
    let value = toml::Value::try_from(&settings).unwrap();
    let mut keys = BTreeSet::new();
    walk("", &value, &mut keys);
    keys
}

/// The files that describe a deployment.
const DEPLOYMENT_FILES: [&str; 14] = [
    "Dockerfile",
    "docker-compose.yml",
    ".env.example",
    "README.md",
    "mymonit.example.toml",
    "kubernetes/configmap.yaml",
    "kubernetes/deployment.yaml",
    "kubernetes/hpa.yaml",
    "kubernetes/ingress.yaml",
    "kubernetes/migrate-data-job.yaml",
    "kubernetes/pdb.yaml",
    "kubernetes/secret.example.yaml",
    "kubernetes/service.yaml",
    "nginx/mymonit.conf",
];

#[test]
fn the_deployment_files_name_only_what_mymonit_has() {
    let keys = setting_keys();
    assert!(keys.contains("auth.signing_key_file") && keys.contains("tls.cert_file"));
    // Every MYMONIT_* variable is a setting (or one of the few documented others).
    let mut variables = BTreeSet::new();
    for file in DEPLOYMENT_FILES {
        for variable in variables_in(&deploy_file(file)) {
            variables.insert((variable, file));
        }
    }
    assert!(variables.len() >= 8, "{variables:?}");
    for (variable, file) in &variables {
        if NOT_SETTINGS.contains(&variable.as_str()) {
            continue;
        }
        assert!(
            keys.contains(&setting_of(variable)),
            "deploy/{file} names {variable}, which sets no setting ({})",
            setting_of(variable)
        );
    }
    // The configuration embedded in the ConfigMap is accepted as it stands.
    let configmaps: Vec<Value> =
        serde_yaml_ng::Deserializer::from_str(&deploy_file("kubernetes/configmap.yaml"))
            .map(|document| serde::Deserialize::deserialize(document).unwrap())
            .collect();
    let embedded = configmaps
        .iter()
        .find_map(|map| map["data"]["mymonit.toml"].as_str())
        .expect("configmap.yaml holds mymonit.toml");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mymonit.toml");
    std::fs::write(&config, embedded).unwrap();
    Settings::load(Some(&config), Figment::new())
        .unwrap_or_else(|err| panic!("configmap.yaml's mymonit.toml: {err}"));

    // Ports: the image's listen addresses are the ones nginx, Compose and Kubernetes use.
    let dockerfile = deploy_file("Dockerfile");
    let port_of = |variable: &str| -> String {
        let line = dockerfile
            .lines()
            .find(|line| line.contains(&format!("{variable}=")))
            .unwrap_or_else(|| panic!("the Dockerfile sets {variable}"));
        let value = line.split(&format!("{variable}=")).nth(1).unwrap();
        let address = value.split_whitespace().next().unwrap();
        address.rsplit(':').next().unwrap().to_string()
    };
    let (api_port, metrics_port) = (port_of("MYMONIT_LISTEN"), port_of("MYMONIT_METRICS_LISTEN"));
    assert!(
        deploy_file("nginx/mymonit.conf").contains(&format!("server mymonit-1:{api_port} ")),
        "nginx's upstream is not on port {api_port}"
    );
    let deployment = deploy_file("kubernetes/deployment.yaml");
    let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&deployment)
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .collect();
    let container = documents
        .iter()
        .find_map(|document| document["spec"]["template"]["spec"]["containers"].get(0))
        .expect("deployment.yaml has a container");
    let ports: BTreeSet<String> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|port| port["containerPort"].to_string())
        .collect();
    assert_eq!(
        ports,
        BTreeSet::from([api_port.clone(), metrics_port.clone()]),
        "deployment.yaml's container ports"
    );
    // Probes: the paths MyMonit answers.
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(dockerfile.contains("/healthz"), "the image's HEALTHCHECK");
    let compose = deploy_file("docker-compose.yml");
    assert!(compose.contains("/readyz") || compose.contains("/healthz"));

    // Every YAML file parses.
    for file in DEPLOYMENT_FILES
        .iter()
        .filter(|f| f.ends_with(".yml") || f.ends_with(".yaml"))
    {
        for document in serde_yaml_ng::Deserializer::from_str(&deploy_file(file)) {
            let parsed: Result<Value, _> = serde::Deserialize::deserialize(document);
            assert!(parsed.is_ok(), "deploy/{file}: {parsed:?}");
        }
    }
}

#[tokio::test]
async fn the_probes_the_deployment_files_use_answer() {
    let app = spawn_app_with(|_| {}).await;
    for path in ["/healthz", "/readyz"] {
        let reply = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{path}");
    }
}
