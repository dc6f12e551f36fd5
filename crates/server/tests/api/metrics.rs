//! `/metrics` on its own listener: every family exported, counters that move with traffic.

use reqwest::StatusCode;

use crate::{
    helpers::world_with,
    ingest::{create_token, push},
};

/// Every metric family MyMonit exports (as Prometheus names them in the text format).
const FAMILIES: [&str; 26] = [
    "mymonit_measures_accepted_total",
    "mymonit_measures_rejected_total",
    "mymonit_amqp_dead_lettered_total",
    "mymonit_amqp_deliveries_total",
    "mymonit_amqp_redeliveries_total",
    "mymonit_amqp_consumer_connected",
    "mymonit_ingest_batch_measures",
    "mymonit_ingest_commit_seconds",
    "mymonit_http_requests_total",
    "mymonit_http_request_duration_seconds",
    "mymonit_logins_total",
    "mymonit_compactions_total",
    "mymonit_compacted_points_total",
    "mymonit_compaction_duration_seconds",
    "mymonit_store_series",
    "mymonit_store_points",
    "mymonit_store_recent_points",
    "mymonit_store_chunks",
    "mymonit_store_bytes",
    "mymonit_users",
    "mymonit_experiments",
    "mymonit_associations",
    "mymonit_experiment_measures",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "mymonit_log_lines_dropped_total",
];

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"))
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_and_move_with_traffic() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let world = world_with(|s| s.metrics_listen = Some(format!("127.0.0.1:{port}"))).await;
    let app = &world.app;
    assert_eq!(
        app.get("/api/v1/experiments", &world.admin).await.status,
        StatusCode::OK
    );
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let body = "{\"experiment\":\"device-vibrations\",\"measure\":\"volt\",\"value\":1,\"timestamp\":1}\n{\"experiment\":\"device-vibrations\",\"measure\":\"furlongs\",\"value\":1,\"timestamp\":1}\n";
    let pushed = push(&world, &secret, "", "application/x-ndjson", body).await;
    assert_eq!(pushed.status, StatusCode::OK);

    let scrape = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(scrape.status(), StatusCode::OK);
    assert!(
        scrape.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = scrape.text().await.unwrap();
    for family in FAMILIES {
        assert!(
            text.contains(&format!("# TYPE {}", family.trim_end_matches("_total"))),
            "{family} missing:\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"));
    assert!(
        sample(
            &text,
            "mymonit_http_requests_total{method=\"GET\",route=\"/api/v1/experiments\",status=\"200\"}"
        ) >= 1.0
    );
    assert!(sample(&text, "mymonit_logins_total{outcome=\"success\"}") >= 4.0);
    assert_eq!(
        sample(&text, "mymonit_measures_accepted_total{source=\"http\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "mymonit_measures_rejected_total{source=\"http\",reason=\"unknown_measure_type\"}"
        ),
        1.0
    );
    assert_eq!(sample(&text, "mymonit_users{role=\"SCIENTIST\"}"), 3.0);
    assert_eq!(sample(&text, "mymonit_experiments "), 3.0);
    assert_eq!(sample(&text, "mymonit_associations "), 3.0);
    // device-vibrations holds the world's 10 measures and the one pushed.
    assert_eq!(
        sample(
            &text,
            "mymonit_experiment_measures{experiment=\"device-vibrations\"}"
        ),
        11.0
    );
    assert_eq!(sample(&text, "mymonit_amqp_consumer_connected "), 0.0);
    assert!(sample(&text, "process_resident_memory_bytes ") > 1e6);
    // The API listener does not serve them.
    assert_eq!(
        app.get("/metrics", &world.admin).await.status,
        StatusCode::NOT_FOUND
    );
}

/// Metric names (`mymonit_…`, `process_…`) that a deployment file mentions.
fn names_in(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    for prefix in ["mymonit_", "process_"] {
        let mut from = 0;
        while let Some(found) = text[from..].find(prefix) {
            let start = from + found;
            let end = start
                + bytes[start..]
                    .iter()
                    .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || **b == b'_')
                    .count();
            let preceded_by_word =
                start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
            if !preceded_by_word {
                names.push(text[start..end].to_string());
            }
            from = end;
        }
    }
    names
}

/// Every metric the Prometheus rules and the Grafana dashboards name is one MyMonit exports.
#[tokio::test]
async fn deployment_files_name_only_exported_metrics() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let world = world_with(|s| s.metrics_listen = Some(format!("127.0.0.1:{port}"))).await;
    // Families with labels appear once they have a sample: an accepted and a refused record.
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let body = "{\"experiment\":\"device-vibrations\",\"measure\":\"volt\",\"value\":1,\"timestamp\":1}\n{\"experiment\":\"nowhere\",\"measure\":\"volt\",\"value\":1,\"timestamp\":1}\n";
    push(&world, &secret, "", "application/x-ndjson", body).await;
    // ... and an account created with a password an admin chose.
    let created = world
        .app
        .call(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(&world.admin),
            Some(&serde_json::json!({"user_id": "S077", "name": "Lise Meitner", "username": "lmeitner",
                "email": "lmeitner@home.cern", "role": "SCIENTIST", "password": "Fission-1938-in-Berlin"})),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    // ... and a pull source (its own metrics page).
    let source = world
        .app
        .call(
            reqwest::Method::POST,
            "/api/v1/sources",
            Some(&world.admin),
            Some(
                &serde_json::json!({"experiment_id": world.vibrations, "kind": "prometheus",
                "url": format!("http://127.0.0.1:{port}/metrics"), "enabled": false}),
            ),
        )
        .await;
    assert_eq!(source.status.as_u16(), 201, "{}", source.text);
    world
        .app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/sources/{}", source.json()["source_id"]),
            Some(&world.admin),
            Some(&serde_json::json!({"enabled": true})),
        )
        .await;
    let exported = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
    let mut named = std::collections::BTreeSet::new();
    for file in [
        "prometheus/alerts.yml",
        "grafana/dashboards/mymonit-business.json",
        "grafana/dashboards/mymonit-infrastructure.json",
    ] {
        let text = std::fs::read_to_string(format!("{deploy}/{file}")).unwrap();
        if file.ends_with(".json") {
            let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(
                dashboard["title"]
                    .as_str()
                    .unwrap()
                    .starts_with("MyMonit – ")
            );
            assert!(!dashboard["panels"].as_array().unwrap().is_empty());
        }
        named.extend(names_in(&text));
    }
    assert!(named.len() >= 20, "only {named:?}");
    for name in &named {
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            exported.contains(&format!("# TYPE {family} ")),
            "{name} is named in deploy/ but not exported"
        );
    }
}
