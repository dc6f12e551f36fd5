//! Two MyMonit instances on one PostgreSQL database, as behind a load balancer: whatever one
//! does, the other sees. Needs the test PostgreSQL (`MYMONIT_TEST_DATABASE_URL`); skipped
//! without it, failing under `CI`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, Reply, TestApp, TestDatabase, World, spawn_app_with, test_postgres, world_with,
};

/// A world on a fresh PostgreSQL database, and a second instance on the same database with
/// the same signing key; `None` without a test PostgreSQL.
async fn two_instances() -> Option<(TestDatabase, World, TestApp)> {
    test_postgres()?;
    let (database, url) = TestDatabase::create().await;
    let first_url = url.clone();
    let world = world_with(|s| s.database.url = Some(first_url)).await;
    let key = world.app.data_dir.join("jwt-signing-key.ed25519.pk8");
    let second = spawn_app_with(|s| {
        s.database.url = Some(url);
        s.auth.signing_key_file = Some(key);
    })
    .await;
    Some((database, world, second))
}

async fn create_experiment(app: &TestApp, admin: &str, name: String) -> Reply {
    let body = json!({"name": name});
    app.call(
        Method::POST,
        "/api/v1/experiments",
        Some(admin),
        Some(&body),
    )
    .await
}

async fn push_ndjson(app: &TestApp, secret: &str, body: &str) -> Reply {
    app.raw(
        Method::POST,
        "/api/v1/ingest",
        Some(secret),
        Some("application/x-ndjson"),
        body.as_bytes().to_vec(),
    )
    .await
}

#[tokio::test]
async fn tokens_logouts_and_failed_sign_ins_hold_across_instances() {
    let Some((_database, world, b)) = two_instances().await else {
        return;
    };
    let a = &world.app;
    // A token issued by A is accepted by B.
    let listed = b.get("/api/v1/experiments", &world.scientist).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    // A sign-out on A is refused on B.
    let token = a.token("kbouman").await;
    assert_eq!(
        b.get("/api/v1/experiments", &token).await.status,
        StatusCode::OK
    );
    let out = a
        .call(Method::POST, "/api/v1/auth/logout", Some(&token), None)
        .await;
    assert!(out.status.is_success(), "{}", out.text);
    assert_eq!(
        b.get("/api/v1/experiments", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Failed sign-ins spread over both instances count against one limit (5).
    for attempt in 0..5 {
        let instance = if attempt % 2 == 0 { a } else { &b };
        let reply = instance.login("spare", "wrong password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    for instance in [a, &b] {
        let reply = instance.login("spare", PASSWORD).await;
        assert_eq!(
            reply.status,
            StatusCode::TOO_MANY_REQUESTS,
            "the sixth attempt passed: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn audit_records_of_both_instances_form_one_chain() {
    let Some((_database, world, b)) = two_instances().await else {
        return;
    };
    let a = &world.app;
    let mut requests = Vec::new();
    for i in 0..20 {
        requests.push(create_experiment(a, &world.admin, format!("from-a-{i}")));
        requests.push(create_experiment(&b, &world.admin, format!("from-b-{i}")));
    }
    for reply in futures::future::join_all(requests).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    // Audit records are written behind the responses: wait for all 40 creations.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = b
            .get(
                "/api/v1/audit?action=POST%20/api/v1/experiments&limit=100",
                &world.auditor,
            )
            .await
            .json();
        let count = page["records"].as_array().map_or(0, Vec::len);
        if count >= 40 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {count} of 40 creations audited: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for instance in [a, &b] {
        let verified = instance
            .get("/api/v1/audit/verify", &world.auditor)
            .await
            .json();
        assert_eq!(verified["intact"], true, "{verified}");
        assert!(verified["records"].as_i64().unwrap() >= 40, "{verified}");
    }
}

#[tokio::test]
async fn ingest_through_both_keeps_ties_and_streams_reach_the_other_instance() {
    let Some((_database, world, b)) = two_instances().await else {
        return;
    };
    let a = &world.app;
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
    // A live view on B.
    let mut stream = b
        .client
        .get(b.url(&format!("/api/v1/experiments/{}/stream", world.black_holes)))
        .bearer_auth(&world.other_scientist)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let opened = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk())
        .await
        .expect("the stream opens at once")
        .unwrap()
        .unwrap();
    assert_eq!(std::str::from_utf8(&opened).unwrap(), ": connected\n\n");
    // The same reading, same second, through both instances at once, many times: every one is
    // a reading of its own.
    let line =
        r#"{"experiment":"black-holes","measure":"watt","value":1.5,"timestamp":1653040000}"#;
    let body: String = std::iter::repeat_n(line, 50).collect::<Vec<_>>().join("\n");
    let mut pushes = Vec::new();
    for _ in 0..10 {
        pushes.push(push_ndjson(a, &secret, &body));
        pushes.push(push_ndjson(&b, &secret, &body));
    }
    for reply in futures::future::join_all(pushes).await {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.json()["accepted"], 50, "{}", reply.text);
    }
    // B's live view heard of what A stored (and of its own).
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while text.matches("event: measure").count() < 1000 {
        let Ok(chunk) = tokio::time::timeout_at(deadline, stream.chunk()).await else {
            break;
        };
        text.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
    }
    assert_eq!(
        text.matches("event: measure").count(),
        1000,
        "the live view on B missed measures"
    );
    // Every reading is stored, ties kept, whichever instance is asked.
    for instance in [a, &b] {
        let page: Value = instance
            .get(
                &format!(
                    "/api/v1/experiments/{}/measures?measure=watt&limit=5000",
                    world.black_holes
                ),
                &world.other_scientist,
            )
            .await
            .json();
        assert_eq!(page["measures"].as_array().unwrap().len(), 1000, "{page}");
    }
}
