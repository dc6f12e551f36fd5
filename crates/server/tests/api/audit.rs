//! The audit trail: what a session leaves in it, who may read it, and its verification.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{World, world},
    ingest::{create_token, push},
};

/// Waits until the trail holds a record matching `wanted` (records are written by a
/// background writer, a moment after the call).
async fn wait_for(world: &World, query: &str, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = world
            .app
            .get(&format!("/api/v1/audit?limit=10000{query}"), &world.auditor)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let records = page.json()["records"].as_array().unwrap().clone();
        if records.iter().any(&wanted) {
            return records;
        }
        assert!(Instant::now() < deadline, "no such record in {records:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_session_is_recorded_by_id_with_personal_data_hidden() {
    let world = world().await;
    let app = &world.app;
    // An admin creates a user; a scientist tries the same; someone signs in wrongly; a source
    // pushes measures with an ingest token.
    let secret_password = "Plover-Xylem-7-Quartz";
    let created = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&world.admin),
            Some(
                &json!({"user_id": "S077", "name": "Grace Hopper", "username": "ghopper",
                "email": "grace@navy.example", "role": "SCIENTIST", "password": secret_password}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let denied = app
        .call(
            Method::POST,
            "/api/v1/experiments",
            Some(&world.scientist),
            Some(&json!({"name": "mine"})),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let failed = app.login("ghopper", "not-the-password").await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let forged = app.get("/api/v1/auth/me", "not.a.token").await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let (_, secret) = create_token(&world, &["device-vibrations"]).await;
    let body =
        r#"{"experiment":"device-vibrations","measure":"volt","value":1,"timestamp":1653040000}"#;
    let pushed = push(&world, &secret, "", "application/x-ndjson", body).await;
    assert_eq!(pushed.status, StatusCode::OK);

    let records = wait_for(&world, "", |r| {
        r["actor_id"]
            .as_str()
            .is_some_and(|a| a.starts_with("ingest-token:"))
    })
    .await;
    let find = |action: &str, actor: Option<&str>| -> Value {
        records
            .iter()
            .find(|r| r["action"] == action && r["actor_id"].as_str() == actor)
            .unwrap_or_else(|| panic!("no {action} by {actor:?} in {records:#?}"))
            .clone()
    };
    let creation = find("POST /api/v1/users", Some("A001"));
    assert_eq!(creation["actor_role"], "ADMIN");
    assert_eq!(creation["status"], 201);
    assert_eq!(creation["outcome"], "success");
    assert_eq!(
        creation["detail"],
        json!({"changed": {"user_id": "S077", "name": "***", "username": "***", "email": "***", "role": "SCIENTIST", "password": "***"}})
    );
    assert!(
        creation["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(creation["client"], "127.0.0.1");
    let refused = find("POST /api/v1/experiments", Some("S001"));
    assert_eq!(refused["outcome"], "denied");
    let login = find("auth.login", Some("S077"));
    assert_eq!(login["outcome"], "failure");
    let rejected = find("GET /api/v1/auth/me", None);
    assert_eq!(
        (rejected["status"].as_u64(), rejected["outcome"].as_str()),
        (Some(401), Some("failure"))
    );
    let ingest = records
        .iter()
        .find(|r| r["action"] == "POST /api/v1/ingest")
        .unwrap();
    assert_eq!(ingest["actor_role"], "INGEST");
    assert!(records.iter().any(|r| r["action"] == "server.start"));

    // No name, username, email or password anywhere in the trail.
    let export = app.get("/api/v1/audit?format=ndjson", &world.auditor).await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(
        export.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-ndjson")
    );
    assert!(export.text.lines().count() >= records.len());
    for secret in [
        secret_password,
        "Grace Hopper",
        "ghopper",
        "grace@navy.example",
        "phigg",
        "aalcorn",
        "not-the-password",
    ] {
        assert!(
            !export.text.contains(secret),
            "{secret:?} is in the audit trail"
        );
    }
}

#[tokio::test]
async fn only_auditors_read_the_trail_and_others_trying_is_recorded() {
    let world = world().await;
    let app = &world.app;
    for token in [&world.admin, &world.scientist] {
        assert_eq!(
            app.get("/api/v1/audit", token).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.get("/api/v1/audit/verify", token).await.status,
            StatusCode::FORBIDDEN
        );
    }
    let records = wait_for(&world, "&outcome=denied&action=GET%20/api/v1/audit", |r| {
        r["actor_id"] == "S001"
    })
    .await;
    assert!(
        records
            .iter()
            .all(|r| r["outcome"] == "denied" && r["action"] == "GET /api/v1/audit")
    );
    assert!(records.iter().any(|r| r["actor_id"] == "A001"));

    // Filters and the cursor.
    let mine = app
        .get("/api/v1/audit?actor=A001", &world.auditor)
        .await
        .json();
    assert!(
        mine["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["actor_id"] == "A001")
    );
    let first = app
        .get("/api/v1/audit?limit=1", &world.auditor)
        .await
        .json();
    assert_eq!(first["records"][0]["seq"], 1);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/api/v1/audit?limit=1&cursor={cursor}"),
            &world.auditor,
        )
        .await
        .json();
    assert_eq!(second["records"][0]["seq"], 2);
    assert_eq!(
        second["records"][0]["prev_hash"],
        first["records"][0]["hash"]
    );
    // Newest first: the latest record leads, and the cursor walks back.
    let all: Vec<i64> = app
        .get("/api/v1/audit?limit=10000", &world.auditor)
        .await
        .json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    let latest = app
        .get("/api/v1/audit?order=desc&limit=2", &world.auditor)
        .await
        .json();
    let seqs = |page: &Value| -> Vec<i64> {
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_i64().unwrap())
            .collect()
    };
    let newest = seqs(&latest);
    assert_eq!(newest.len(), 2);
    assert!(newest[0] >= *all.last().unwrap(), "{newest:?} vs {all:?}");
    assert_eq!(newest[1], newest[0] - 1);
    let older = app
        .get(
            &format!(
                "/api/v1/audit?order=desc&limit=2&cursor={}",
                latest["next_cursor"].as_str().unwrap()
            ),
            &world.auditor,
        )
        .await
        .json();
    assert_eq!(seqs(&older), [newest[1] - 1, newest[1] - 2]);
    for bad in [
        "order=sideways",
        "outcome=maybe",
        "from=yesterday",
        "cursor=abc",
        "limit=0",
        "format=xml",
        "colour=red",
    ] {
        let reply = app
            .get(&format!("/api/v1/audit?{bad}"), &world.auditor)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text
        );
    }

    let verified = app.get("/api/v1/audit/verify", &world.auditor).await.json();
    assert_eq!(verified["intact"], true, "{verified}");
    assert!(verified["records"].as_i64().unwrap() >= 4);
    assert!(verified["first_bad"].is_null());
}

#[tokio::test]
async fn the_trail_cannot_be_flooded_and_cookie_calls_are_recorded_like_bearer_ones() {
    let world = world().await;
    let app = &world.app;
    // 200 calls with a bad token and a 90,000-byte request id.
    let huge_id = "r".repeat(90_000);
    for _ in 0..200 {
        let response = app
            .client
            .get(app.url("/api/v1/experiments"))
            .bearer_auth("not-a-token")
            .header("x-request-id", &huge_id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        // The answer carries the server's own id, not the client's.
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "{id}");
    }
    // A short, plain client id is kept beside ours.
    let reply = app
        .client
        .get(app.url("/api/v1/experiments"))
        .bearer_auth(&world.scientist)
        .header("x-request-id", "client-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let records = wait_for(&world, "&outcome=failure", |r| r["status"] == 401).await;
        let refused: Vec<Value> = records.into_iter().filter(|r| r["status"] == 401).collect();
        if refused.len() >= 200 || Instant::now() > deadline {
            break refused;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.len(), 200);
    for record in &refused {
        let size = record.to_string().len();
        assert!(size < 1_000, "a record of {size} bytes: {record}");
    }
    wait_for(&world, "", |r| {
        r["detail"]["client_request_id"] == "client-trace-42"
            && r["request_id"].as_str().is_some_and(|id| id.len() == 36)
    })
    .await;

    // The web UI's cookie: a change is recorded with its detail, and a change refused for a
    // missing CSRF header is recorded too.
    let login = app
        .client
        .post(app.url("/api/v1/auth/session"))
        .json(&json!({"username": "aalcorn", "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = login.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let rename = |with_csrf: bool, name: &str| {
        let mut request = app
            .client
            .patch(app.url(&format!("/api/v1/experiments/{}", world.spare)))
            .header("cookie", &cookie)
            .json(&json!({ "name": name }));
        if with_csrf {
            request = request.header("x-csrf-token", &csrf);
        }
        request.send()
    };
    assert_eq!(
        rename(false, "no-csrf").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        rename(true, "renamed-by-cookie").await.unwrap().status(),
        StatusCode::OK
    );
    let records = wait_for(&world, "", |r| {
        r["detail"]["changed"]["name"] == "renamed-by-cookie" && r["actor_id"] == "A001"
    })
    .await;
    assert!(
        records
            .iter()
            .any(|r| r["status"] == 403
                && r["action"] == "PATCH /api/v1/experiments/{experiment_id}"),
        "the refused cookie call is missing: {records:#?}"
    );

    // Keys the route does not know never reach the trail, whatever they hold.
    let sneaky = app
        .call(
            Method::PATCH,
            "/api/v1/users/S001",
            Some(&world.admin),
            Some(&json!({"Password": "hunter2-in-clear", "role": "SCIENTIST"})),
        )
        .await;
    assert_eq!(
        sneaky.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        sneaky.text
    );
    let compat = app
        .call(
            Method::PUT,
            "/users/S001",
            Some(&world.admin),
            Some(&json!({"name": "Peter Higg", "secret_note": "in clear too"})),
        )
        .await;
    assert!(compat.status.is_success(), "{}", compat.text);
    let records = wait_for(&world, "", |r| r["action"] == "PUT /users/{user_id}").await;
    let trail = serde_json::to_string(&records).unwrap();
    assert!(!trail.contains("hunter2-in-clear"), "{trail}");
    assert!(!trail.contains("in clear too"), "{trail}");
}
