//! The InfluxDB-compatible API: writes in InfluxDB's mapping with an ingest token in each of
//! the forms clients send it, partial writes, gzip, the type-creation switch, `CREATE
//! DATABASE`, personal access tokens and the metadata statements Grafana's editor sends.

use std::io::Write;

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{Reply, World, urlencode, world},
    ingest::create_token,
};

/// A request with an optional `Authorization` value and body.
async fn send(
    world: &World,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let mut request = world
        .app
        .client
        .request(method, world.app.url(path))
        .body(body);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::read(request.send().await.unwrap()).await
}

/// The points of a measure type in `device-vibrations` with their tags, as the scientist reads them.
async fn points(world: &World, measure: &str) -> Vec<(f64, Value)> {
    let page = world
        .app
        .get(
            &format!(
                "/api/v1/experiments/{}/measures?measure={measure}&limit=1000",
                world.vibrations
            ),
            &world.scientist,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page.json()["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["value"].as_f64().unwrap(), m["tags"].clone()))
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn ping_and_health_answer_as_influxdb_does() {
    let world = world().await;
    for method in [Method::GET, Method::HEAD] {
        let reply = send(&world, method, "/ping", None, &[], Vec::new()).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert!(reply.headers.get("x-influxdb-version").is_some());
    }
    let reply = send(&world, Method::GET, "/health", None, &[], Vec::new()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "pass");
}

#[tokio::test]
async fn writes_map_fields_to_tags_in_every_credential_form() {
    let world = world().await;
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let basic = format!("Basic {}", STANDARD.encode(format!("telegraf:{secret}")));
    let token = format!("Token {secret}");
    let bearer = format!("Bearer {secret}");
    let forms: [(String, Option<&str>); 4] = [
        ("/write?db=device-vibrations".into(), Some(&token)),
        ("/write?db=device-vibrations".into(), Some(&bearer)),
        ("/write?db=device-vibrations".into(), Some(&basic)),
        (
            format!("/write?db=device-vibrations&u=telegraf&p={secret}"),
            None,
        ),
    ];
    for (index, (path, authorization)) in forms.iter().enumerate() {
        let line = format!(
            "hertz,host=h{index} value={index}.5 {}\n",
            1_700_000_000 + index as i64
        );
        let reply = send(
            &world,
            Method::POST,
            &format!("{path}&precision=s"),
            authorization.as_deref(),
            &[],
            line.into_bytes(),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::NO_CONTENT,
            "form {index}: {}",
            reply.text
        );
    }
    let written: Vec<(f64, Value)> = points(&world, "hertz")
        .await
        .into_iter()
        .filter(|(_, tags)| tags.get("host").is_some())
        .collect();
    assert_eq!(written.len(), 4, "{written:?}");
    // `value` carries no _field tag; other fields do.
    assert!(written.iter().all(|(_, tags)| tags.get("_field").is_none()));

    // Two fields of one line are two points of the measurement's type, told apart by _field;
    // equal lines are two readings each.
    let body = "volt,host=a usage_user=1,usage_system=2i 1700000100000000000\nvolt,host=a usage_user=1,usage_system=2i 1700000100000000000\n";
    let reply = send(
        &world,
        Method::POST,
        "/api/v2/write?org=lab&bucket=device-vibrations&precision=ns",
        Some(&token),
        &[],
        body.into(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let volts = points(&world, "volt").await;
    assert_eq!(volts.len(), 4, "{volts:?}");
    assert_eq!(
        volts
            .iter()
            .filter(|(value, tags)| *value == 2.0 && tags["_field"] == "usage_system")
            .count(),
        2
    );
}

#[tokio::test]
async fn partial_writes_store_the_good_lines_and_name_the_bad_ones() {
    let world = world().await;
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let token = format!("Token {secret}");
    let body = "hertz,host=p value=1 1700000000000000000\nhertz,host=p value=\"text\" 1700000001000000000\nnot a line\nhertz,host=p value=3 1700000002000000000\n";
    let reply = send(
        &world,
        Method::POST,
        "/write?db=device-vibrations",
        Some(&token),
        &[],
        body.into(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("partial write: "), "{error}");
    assert!(
        error.contains("line 2") && error.contains("string fields"),
        "{error}"
    );
    assert!(error.contains("line 3"), "{error}");
    assert!(error.ends_with("dropped=2"), "{error}");
    let stored: Vec<f64> = points(&world, "hertz")
        .await
        .into_iter()
        .filter(|(_, tags)| tags.get("host") == Some(&json!("p")))
        .map(|(value, _)| value)
        .collect();
    assert_eq!(stored, [1.0, 3.0]);

    // The v2 shape; gzip bodies are read; unknown types are refused until an admin allows
    // the experiment to create them.
    let body = gzip(
        b"cpu,host=a usage_user=5 1700000000000000000\nhertz,host=g value=7 1700000000000000000\n",
    );
    let v2 = |body: Vec<u8>| {
        send(
            &world,
            Method::POST,
            "/api/v2/write?org=x&bucket=device-vibrations",
            Some(&token),
            &[("content-encoding", "gzip")],
            body,
        )
    };
    let reply = v2(body.clone()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.json()["code"], "invalid");
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("unknown measure type \"cpu\""),
        "{message}"
    );
    let reply = world
        .app
        .call(
            Method::PUT,
            &format!("/api/v1/experiments/{}/ingest-settings", world.vibrations),
            Some(&world.admin),
            Some(&json!({"create_measure_types": true})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = v2(body).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert_eq!(points(&world, "cpu").await.len(), 1);

    let reply = v2(b"not gzip".to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_databases_and_credentials_are_refused_as_influxdb_refuses_them() {
    let world = world().await;
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let token = format!("Token {secret}");
    let line = || b"hertz value=1\n".to_vec();
    let cases = [
        (
            "/write",
            Some(token.as_str()),
            StatusCode::BAD_REQUEST,
            "database is required",
        ),
        (
            "/write?db=nowhere",
            Some(token.as_str()),
            StatusCode::NOT_FOUND,
            "database not found: \"nowhere\"",
        ),
        (
            "/write?db=black-holes",
            Some(token.as_str()),
            StatusCode::FORBIDDEN,
            "may not write",
        ),
        (
            "/write?db=device-vibrations",
            None,
            StatusCode::UNAUTHORIZED,
            "authorization failed",
        ),
        (
            "/write?db=device-vibrations",
            Some("Token mmi_nope"),
            StatusCode::UNAUTHORIZED,
            "unknown or revoked",
        ),
        (
            "/write?db=device-vibrations&precision=d",
            Some(token.as_str()),
            StatusCode::BAD_REQUEST,
            "invalid precision",
        ),
    ];
    for (path, authorization, status, text) in cases {
        let reply = send(&world, Method::POST, path, authorization, &[], line()).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text);
        let error = reply.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(text), "{path}: {error}");
    }
    let reply = send(
        &world,
        Method::POST,
        "/api/v2/write?bucket=device-vibrations",
        None,
        &[],
        line(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["code"], "unauthorized");

    // Over the body limit, compressed or not.
    let big = vec![b'#'; world.app.state.settings.max_ingest_bytes + 10];
    let reply = send(
        &world,
        Method::POST,
        "/write?db=device-vibrations",
        Some(&token),
        &[],
        big.clone(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let reply = send(
        &world,
        Method::POST,
        "/write?db=device-vibrations",
        Some(&token),
        &[("content-encoding", "gzip")],
        gzip(&big),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );

    // Telegraf's start-up statement, with its write credentials.
    let create = |name: &str| format!("q=CREATE+DATABASE+%22{name}%22");
    for (name, error) in [
        ("device-vibrations", None),
        ("black-holes", Some("not an experiment this token may use")),
    ] {
        let reply = send(
            &world,
            Method::POST,
            "/query",
            Some(&token),
            &[("content-type", "application/x-www-form-urlencoded")],
            create(name).into_bytes(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let result = &reply.json()["results"][0];
        match error {
            None => assert_eq!(result, &json!({"statement_id": 0})),
            Some(text) => assert!(result["error"].as_str().unwrap().contains(text), "{result}"),
        }
    }
}

#[tokio::test]
async fn personal_access_tokens_read_what_their_owner_may_read() {
    let world = world().await;
    // Made, shown once, listed without the secret.
    let reply = world
        .app
        .call(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(&world.scientist),
            Some(&json!({"name": "grafana-lab", "expires_in_days": 30})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let created = reply.json();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mmp_"));
    let listed = world
        .app
        .get("/api/v1/auth/tokens", &world.scientist)
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none());
    assert!(
        world
            .app
            .get("/api/v1/auth/tokens", &world.other_scientist)
            .await
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    for bad in [
        json!({"name": ""}),
        json!({"name": "x", "expires_in_days": 400}),
        json!({"name": "x", "scope": "write"}),
    ] {
        let reply = world
            .app
            .call(
                Method::POST,
                "/api/v1/auth/tokens",
                Some(&world.scientist),
                Some(&bad),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // A personal access token is no key to the rest of the API.
    let reply = world.app.get("/api/v1/experiments", &secret).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // Grafana's form: Basic with the username and the token.
    let basic = format!("Basic {}", STANDARD.encode(format!("phigg:{secret}")));
    let query = |q: &str, authorization: String| {
        let path = format!("/query?db=device-vibrations&epoch=ms&q={}", urlencode(q));
        let world = &world;
        async move {
            send(
                world,
                Method::GET,
                &path,
                Some(&authorization),
                &[],
                Vec::new(),
            )
            .await
        }
    };
    let reply = query("SHOW DATABASES", basic.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.json(),
        json!({"results": [{"statement_id": 0, "series": [{"name": "databases", "columns": ["name"], "values": [["device-vibrations"]]}]}]})
    );
    let reply = query("SHOW MEASUREMENTS; SHOW FIELD KEYS FROM \"hertz\"; SHOW TAG KEYS; SHOW RETENTION POLICIES ON \"device-vibrations\"", basic.clone()).await;
    let results = reply.json()["results"].clone();
    assert_eq!(
        results[0]["series"][0]["values"],
        json!([["hertz"]]),
        "{results}"
    );
    assert_eq!(
        results[1]["series"][0]["values"],
        json!([["value", "float"]]),
        "{results}"
    );
    assert_eq!(
        results[3]["series"][0]["values"][0][0], "autogen",
        "{results}"
    );
    // Someone else's username with this token, or another's experiment: refused.
    let reply = query(
        "SHOW DATABASES",
        format!("Basic {}", STANDARD.encode(format!("kbouman:{secret}"))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = query("SHOW MEASUREMENTS ON \"black-holes\"", basic.clone()).await;
    assert!(
        reply.json()["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("database not found")
    );
    // The admin's access token sees no database (admins do not read measures).
    let reply = query("SHOW DATABASES", format!("Bearer {}", world.admin)).await;
    assert_eq!(
        reply.json()["results"][0]["series"][0].get("values"),
        None,
        "{}",
        reply.text
    );
    // Syntax errors fail the request; statements MyMonit does not answer fail alone.
    let reply = query("SELEC 1", basic.clone()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("error parsing query: ")
    );
    let reply = query("SHOW SERIES; SHOW DATABASES", basic.clone()).await;
    assert!(
        reply.json()["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("SHOW SERIES is not supported")
    );
    assert!(reply.json()["results"][1]["series"].is_array());

    // Revoked: refused.
    let token_id = created["token_id"].as_str().unwrap();
    let reply = world
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/tokens/{token_id}"),
            Some(&world.other_scientist),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = world
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/tokens/{token_id}"),
            Some(&world.scientist),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = query("SHOW DATABASES", basic).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

/// InfluxDB's own Python libraries, from PyPI, write (1.x and 2.x) and read (1.x) through
/// MyMonit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdbs_python_clients_write_and_read() {
    let python = std::env::var("MYMONIT_TEST_PYTHON").ok();
    if !crate::helpers::program_available(
        "Python with the InfluxDB client libraries (MYMONIT_TEST_PYTHON)",
        python.is_some(),
    ) {
        return;
    }
    let world = world().await;
    let (_, ingest) = create_token(&world, &["device-vibrations"]).await;
    world
        .app
        .state
        .meta
        .set_creates_measure_types(world.vibrations, true)
        .await
        .unwrap();
    let reply = world
        .app
        .call(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(&world.scientist),
            Some(&json!({"name": "python"})),
        )
        .await;
    let personal = reply.json()["secret"].as_str().unwrap().to_owned();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/clients/influx_clients.py");
    let base = world.app.url("");
    let output = tokio::process::Command::new(python.unwrap_or_default())
        .arg(&script)
        .args([
            base.trim_end_matches('/'),
            "device-vibrations",
            &ingest,
            "phigg",
            &personal,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the client script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["version"], "1.8.10", "{seen}");
    assert_eq!(seen["databases"], json!(["device-vibrations"]), "{seen}");
    // Means of 1.5..=5.5 and 6.5..=10.5, five points each.
    assert_eq!(
        seen["mean"],
        json!([
            {"time": 1_700_000_000, "mean": 3.5, "count": 5},
            {"time": 1_700_000_005, "mean": 8.5, "count": 5}
        ]),
        "{seen}"
    );
    assert_eq!(
        seen["pump"],
        json!([{"time": 1_700_000_000, "running": 1, "rpm": 1200}]),
        "{seen}"
    );
    assert!(
        seen["string_field"]
            .as_str()
            .unwrap()
            .contains("string fields"),
        "{seen}"
    );
    assert!(
        seen["wrong_token"].as_str().unwrap().contains("401"),
        "{seen}"
    );
    assert_eq!(seen["ping2"], true, "{seen}");
    let py2: Vec<f64> = points(&world, "hertz")
        .await
        .into_iter()
        .filter(|(_, tags)| tags.get("host") == Some(&json!("py2")))
        .map(|(value, _)| value)
        .collect();
    assert_eq!(py2, [2.5, 3.5, 4.5, 5.5, 6.5, 9.75]);
}

/// MyMonit's own ingest route reads gzip bodies too, bounded once decompressed.
#[tokio::test]
async fn the_ingest_route_reads_gzip_bodies() {
    let world = world().await;
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let body = gzip(
        br#"{"experiment": "device-vibrations", "measure": "hertz", "value": 12.5, "timestamp": 1700000000, "tags": {"via": "gzip"}}"#,
    );
    let bearer = format!("Bearer {secret}");
    let headers = [
        ("content-encoding", "gzip"),
        ("content-type", "application/json"),
    ];
    let reply = send(
        &world,
        Method::POST,
        "/api/v1/ingest",
        Some(&bearer),
        &headers,
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["accepted"], 1);
    let stored: Vec<f64> = points(&world, "hertz")
        .await
        .into_iter()
        .filter(|(_, tags)| tags.get("via") == Some(&json!("gzip")))
        .map(|(value, _)| value)
        .collect();
    assert_eq!(stored, [12.5]);
    let reply = send(
        &world,
        Method::POST,
        "/api/v1/ingest",
        Some(&bearer),
        &[
            ("content-encoding", "br"),
            ("content-type", "application/json"),
        ],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.problem(400).contains("Content-Encoding \"br\""),
        "{}",
        reply.text
    );
}

/// A raw SELECT over more points than an answer may hold is refused before it is decoded,
/// naming the setting; with LIMIT it reads only what the page needs.
#[tokio::test]
async fn raw_selects_are_bounded_and_limit_reads_what_the_page_needs() {
    let world = crate::helpers::world_with(|settings| settings.api.max_stats_cells = 3_000).await;
    world
        .app
        .add_measures(world.vibrations, "volt", 1_700_000_000, 5_000)
        .await;
    // Compacted into chunks, as a long-lived series is.
    while world
        .app
        .state
        .measures
        .compact(100_000)
        .await
        .unwrap()
        .points
        > 0
    {}
    let reply = world
        .app
        .call(
            Method::POST,
            "/api/v1/auth/tokens",
            Some(&world.scientist),
            Some(&json!({"name": "bounded"})),
        )
        .await;
    let secret = reply.json()["secret"].as_str().unwrap().to_owned();
    let basic = format!("Basic {}", STANDARD.encode(format!("phigg:{secret}")));
    let query = |q: &str| {
        let path = format!("/query?db=device-vibrations&epoch=s&q={}", urlencode(q));
        let (world, basic) = (&world, basic.clone());
        async move { send(world, Method::GET, &path, Some(&basic), &[], Vec::new()).await }
    };
    let reply = query("SELECT \"value\" FROM \"volt\"").await;
    let error = reply.json()["results"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("api.max_stats_cells"), "{}", reply.text);
    let reply = query("SELECT \"value\" FROM \"volt\" LIMIT 3 OFFSET 1").await;
    let values = reply.json()["results"][0]["series"][0]["values"].clone();
    assert_eq!(values.as_array().map(Vec::len), Some(3), "{}", reply.text);
    assert_eq!(values[0][0], 1_700_000_001);
    let reply = query("SELECT \"value\" FROM \"volt\" ORDER BY time DESC LIMIT 2").await;
    let values = reply.json()["results"][0]["series"][0]["values"].clone();
    assert_eq!(values[0][0], 1_700_004_999, "{}", reply.text);
    assert_eq!(values[1][0], 1_700_004_998, "{}", reply.text);
}
