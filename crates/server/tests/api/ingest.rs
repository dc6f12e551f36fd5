//! HTTP ingest with ingest tokens: every format, partial rejections, scope, revocation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Reply, World, world, world_with};

/// Creates a token for experiments as the admin; returns (token_id, secret).
pub async fn create_token(world: &World, experiments: &[&str]) -> (String, String) {
    let body = json!({"experiments": experiments, "description": "sensor rack 1"});
    let reply = world
        .app
        .call(
            Method::POST,
            "/api/v1/ingest-tokens",
            Some(&world.admin),
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let created = reply.json();
    let secret = created["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mmi_"), "{secret}");
    (created["token_id"].as_str().unwrap().to_string(), secret)
}

pub async fn push(
    world: &World,
    secret: &str,
    query: &str,
    content_type: &str,
    body: &str,
) -> Reply {
    world
        .app
        .raw(
            Method::POST,
            &format!("/api/v1/ingest{query}"),
            Some(secret),
            Some(content_type),
            body.as_bytes().to_vec(),
        )
        .await
}

/// The values of an experiment's measures, as its scientist reads them.
async fn values(world: &World, measure: &str) -> Vec<f64> {
    let page = world
        .app
        .get(
            &format!(
                "/api/v1/experiments/{}/measures?measure={measure}&limit=1000",
                world.vibrations
            ),
            &world.scientist,
        )
        .await
        .json();
    page["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_original_message_over_http() {
    let world = world().await;
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let body = r#"{"experiment": "device-vibrations", "measure": "volt", "value": 2.2, "timestamp": 1653040000}"#;
    let reply = push(&world, &secret, "", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.json(),
        json!({"accepted": 1, "rejected": [], "rejected_count": 0})
    );
    let page = world
        .app
        .get(
            &format!(
                "/api/v1/experiments/{}/measures?measure=volt",
                world.vibrations
            ),
            &world.scientist,
        )
        .await
        .json();
    assert_eq!(
        page["measures"][0],
        json!({"measure_type": "volt", "timestamp": "2022-05-20T09:46:40Z", "experiment": "device-vibrations", "value": 2.2})
    );
}

#[tokio::test]
async fn partial_rejections_keep_the_good_records() {
    let world = world().await;
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let body = [
        r#"{"experiment":"device-vibrations","measure":"volt","value":1,"timestamp":1}"#,
        r#"{"experiment":"device-vibrations","measure":"volt","value":"x","timestamp":2}"#,
        r#"{"experiment":"device-vibrations","measure":"furlongs","value":3,"timestamp":3}"#,
        r#"not json at all"#,
        r#"{"experiment":"no-such-experiment","measure":"volt","value":5,"timestamp":5}"#,
        r#"{"experiment":"device-vibrations","measure":"volt","value":6,"timestamp":6,"tags":{"host":"lab1"}}"#,
    ]
    .join("\n");
    let reply = push(&world, &secret, "", "application/x-ndjson", &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let outcome = reply.json();
    assert_eq!(outcome["accepted"], 2);
    assert_eq!(outcome["rejected_count"], 4);
    let rejected: Vec<(u64, String)> = outcome["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rejected[0],
        (1, "line 2: value: must be a number, not \"x\"".to_string())
    );
    assert_eq!(
        rejected[1],
        (2, "unknown measure type \"furlongs\"".to_string())
    );
    assert!(
        rejected[2].1.starts_with("line 4: malformed JSON"),
        "{rejected:?}"
    );
    assert_eq!(
        rejected[3],
        (4, "unknown experiment \"no-such-experiment\"".to_string())
    );
    assert_eq!(values(&world, "volt").await, vec![1.0, 6.0]);
    let counters = world.app.state.metrics.encode();
    for line in [
        "mymonit_measures_accepted_total{source=\"http\"} 2",
        "mymonit_measures_rejected_total{source=\"http\",reason=\"decode\"} 2",
        "mymonit_measures_rejected_total{source=\"http\",reason=\"unknown_measure_type\"} 1",
        "mymonit_measures_rejected_total{source=\"http\",reason=\"unknown_experiment\"} 1",
    ] {
        assert!(counters.contains(line), "{line} missing from:\n{counters}");
    }
}

#[tokio::test]
async fn every_format_by_content_type() {
    let world = world().await;
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let cases: [(&str, &str, String); 5] = [
        ("", "text/csv", "experiment,measure,timestamp,value,host\ndevice-vibrations,pascal,100,1.5,lab1\n".into()),
        ("", "application/xml", r#"<measures><measure experiment="device-vibrations" measure="pascal" timestamp="101" value="2.5"/></measures>"#.into()),
        ("?precision=s", "text/plain", "device-vibrations,host=lab1 pascal=3.5,volt=9 102\n".into()),
        ("", "text/plain", "device-vibrations pascal=4.5 103000000000\n".into()),
        ("?format=txt&experiment=device-vibrations&measure=pascal", "text/plain", "104 5.5\n".into()),
    ];
    for (query, content_type, body) in &cases {
        let reply = push(&world, &secret, query, content_type, body).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{content_type}{query}: {}",
            reply.text
        );
        assert_eq!(
            reply.json()["rejected_count"],
            0,
            "{content_type}{query}: {}",
            reply.text
        );
    }
    assert_eq!(
        values(&world, "pascal").await,
        vec![1.5, 2.5, 3.5, 4.5, 5.5]
    );
    assert_eq!(values(&world, "volt").await, vec![9.0]);
    let csv_semicolon = push(
        &world,
        &secret,
        "?delimiter=;",
        "text/csv",
        "experiment;measure;timestamp;value\ndevice-vibrations;pascal;105;6.5\n",
    )
    .await;
    assert_eq!(
        csv_semicolon.json()["accepted"],
        1,
        "{}",
        csv_semicolon.text
    );

    push(&world, &secret, "", "image/png", "x")
        .await
        .problem(415);
    push(&world, &secret, "?format=yaml", "text/plain", "x")
        .await
        .problem(400);
    push(&world, &secret, "?precision=fortnight", "text/plain", "x")
        .await
        .problem(400);
    push(&world, &secret, "?format=txt", "text/plain", "1\n")
        .await
        .problem(400);
}

#[tokio::test]
async fn tokens_are_scoped_revocable_and_secret() {
    let world = world_with(|settings| settings.max_ingest_bytes = 1000).await;
    let (token_id, secret) = create_token(&world, &["device-vibrations"]).await;
    let foreign = r#"[{"experiment":"device-vibrations","measure":"volt","value":1,"timestamp":1},
                      {"experiment":"black-holes","measure":"volt","value":2,"timestamp":2}]"#;
    let detail = push(&world, &secret, "", "application/json", foreign)
        .await
        .problem(403);
    assert!(detail.contains("black-holes"), "{detail}");
    assert!(
        values(&world, "volt").await.is_empty(),
        "nothing of a refused request is stored"
    );

    push(&world, &secret, "", "application/json", &"x".repeat(2000))
        .await
        .problem(413);
    push(&world, "mmi_not-a-token", "", "application/json", "{}")
        .await
        .problem(401);
    push(&world, &world.admin, "", "application/json", "{}")
        .await
        .problem(401);
    let anonymous = world
        .app
        .raw(
            Method::POST,
            "/api/v1/ingest",
            None,
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await;
    anonymous.problem(401);

    let listed = world.app.get("/api/v1/ingest-tokens", &world.admin).await;
    assert!(!listed.text.contains(&secret), "the secret is never listed");
    let listed: Value = listed.json();
    assert_eq!(listed[0]["token_id"], token_id);
    assert_eq!(listed[0]["experiment_ids"], json!([world.vibrations]));
    assert_eq!(listed[0]["created_by"], "A001");
    assert_eq!(listed[0]["revoked"], false);

    let revoked = world
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/ingest-tokens/{token_id}"),
            Some(&world.admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    push(&world, &secret, "", "application/json", "{}")
        .await
        .problem(401);
    world
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/ingest-tokens/{token_id}"),
            Some(&world.admin),
            None,
        )
        .await
        .problem(404);

    let body = json!({"experiments": ["no-such-experiment"]});
    world
        .app
        .call(
            Method::POST,
            "/api/v1/ingest-tokens",
            Some(&world.admin),
            Some(&body),
        )
        .await
        .problem(404);
    let body = json!({"experiments": []});
    world
        .app
        .call(
            Method::POST,
            "/api/v1/ingest-tokens",
            Some(&world.admin),
            Some(&body),
        )
        .await
        .problem(422);
}

#[tokio::test]
async fn a_retried_request_with_an_idempotency_key_is_stored_once() {
    let world = world().await;
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let body = r#"[{"experiment":"device-vibrations","measure":"volt","value":1,"timestamp":1},
                   {"experiment":"device-vibrations","measure":"volt","value":2,"timestamp":2}]"#;
    let send = || {
        world
            .app
            .client
            .post(world.app.url("/api/v1/ingest"))
            .bearer_auth(&secret)
            .header("content-type", "application/json")
            .header("idempotency-key", "batch-0001")
            .body(body)
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(
        first,
        json!({"accepted": 2, "rejected": [], "rejected_count": 0})
    );
    let again: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(
        again,
        json!({"accepted": 2, "rejected": [], "rejected_count": 0, "duplicate": true})
    );
    assert_eq!(values(&world, "volt").await, vec![1.0, 2.0]);
}

#[tokio::test]
async fn timestamps_outside_the_accepted_range_are_refused_and_slices_stay_whole() {
    let world = world().await;
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    // The attack: a point in 1677, at the edge of what 64-bit nanoseconds hold, beside a
    // good one.
    let reply = push(
        &world,
        &secret,
        "",
        "text/plain",
        "device-vibrations hertz=0 -9223372036854775807\n\
         device-vibrations hertz=1 1653040000000000000\n\
         device-vibrations hertz=2 7258118400000000000\n",
    )
    .await;
    let outcome = reply.json();
    assert_eq!(outcome["accepted"], 1, "{outcome}");
    assert_eq!(outcome["rejected_count"], 2, "{outcome}");
    let reason = outcome["rejected"][0]["error"].as_str().unwrap();
    assert!(
        reason.contains("timestamp") && reason.contains("1800-01-01T00:00:00Z"),
        "{reason}"
    );
    // Monthly slices over the whole experiment cover its points (11 from the fixture, 1 here).
    let stats = world
        .app
        .get(
            &format!(
                "/api/v1/experiments/{}/stats?measure=hertz&statistics=count&timeslice=month&from=0",
                world.vibrations
            ),
            &world.scientist,
        )
        .await
        .json();
    let counted: u64 = stats["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| bucket["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 11, "{stats}");
}

#[tokio::test]
async fn points_beyond_an_experiments_series_limit_are_refused_and_the_others_stored() {
    let world = crate::helpers::world_with(|s| s.ingest.max_series_per_experiment = 5).await;
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    // The fixture's hertz series is one; ten hosts would make ten more.
    let body: String = (0..10)
        .map(|host| {
            format!(
                "{{\"experiment\":\"device-vibrations\",\"measure\":\"volt\",\"value\":{host},\"timestamp\":1653040000,\"tags\":{{\"host\":\"h{host}\"}}}}\n"
            )
        })
        .collect();
    let outcome = push(&world, &secret, "", "application/x-ndjson", &body)
        .await
        .json();
    assert_eq!(outcome["accepted"], 4, "{outcome}");
    assert_eq!(outcome["rejected_count"], 6, "{outcome}");
    let reason = outcome["rejected"][0]["error"].as_str().unwrap();
    assert!(
        reason.contains("ingest.max_series_per_experiment"),
        "{reason}"
    );
    // Points of the series that exist still go in.
    let again = push(
        &world,
        &secret,
        "",
        "application/json",
        "{\"experiment\":\"device-vibrations\",\"measure\":\"volt\",\"value\":9,\"timestamp\":1653040001,\"tags\":{\"host\":\"h0\"}}",
    )
    .await
    .json();
    assert_eq!(again["accepted"], 1, "{again}");
}
