//! Accounts, experiments, measure types and associations through `/api/v1`: conflicts,
//! unknown ids, who may change what, and GDPR erasure.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, world};

#[tokio::test]
async fn duplicates_conflict_and_unknown_ids_are_404() {
    let world = world().await;
    let app = &world.app;
    let admin = Some(world.admin.as_str());
    let user = |id: &str, username: &str, email: &str| json!({"user_id": id, "name": "Someone", "username": username, "email": email, "role": "SCIENTIST"});
    for (body, field) in [
        (user("S001", "fresh", "fresh@home.cern"), "user_id"),
        (user("S050", "phigg", "fresh@home.cern"), "username"),
        (user("S050", "fresh", "phigg@home.cern"), "email"),
    ] {
        let reply = app
            .call(Method::POST, "/api/v1/users", admin, Some(&body))
            .await;
        assert_eq!(reply.problem(409), format!("{field} is already taken"));
    }
    let created = app
        .call(Method::POST, "/api/v1/users", admin, Some(&json!({"user_id": "S050", "name": "Vera Rubin",
            "username": "vrubin", "email": "vrubin@home.cern", "role": "SCIENTIST", "password": "Galaxy-rotation-curves-1970"})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.headers["location"], "/api/v1/users/S050");
    assert_eq!(
        app.login("vrubin", "Galaxy-rotation-curves-1970")
            .await
            .status,
        StatusCode::OK
    );

    let experiment = app
        .call(
            Method::POST,
            "/api/v1/experiments",
            admin,
            Some(&json!({"name": "black-holes"})),
        )
        .await;
    assert_eq!(experiment.problem(409), "name is already taken");
    let renamed = app
        .call(
            Method::PATCH,
            &format!("/api/v1/experiments/{}", world.spare),
            admin,
            Some(&json!({"name": "device-vibrations"})),
        )
        .await;
    renamed.problem(409);

    app.get("/api/v1/users/NOPE", &world.admin)
        .await
        .problem(404);
    app.call(
        Method::PATCH,
        "/api/v1/users/NOPE",
        admin,
        Some(&json!({"name": "x"})),
    )
    .await
    .problem(404);
    app.call(Method::DELETE, "/api/v1/users/NOPE", admin, None)
        .await
        .problem(404);
    app.get("/api/v1/experiments/4242", &world.admin)
        .await
        .problem(404);
    let body = json!({"experiment_id": 4242, "user_id": "S001"});
    app.call(Method::POST, "/api/v1/associations", admin, Some(&body))
        .await
        .problem(404);
    let body = json!({"experiment_id": world.spare, "user_id": "NOPE"});
    app.call(Method::POST, "/api/v1/associations", admin, Some(&body))
        .await
        .problem(404);
    app.call(
        Method::DELETE,
        &format!("/api/v1/associations/{}/S002", world.spare),
        admin,
        None,
    )
    .await
    .problem(404);
}

#[tokio::test]
async fn only_scientists_can_be_associated() {
    let world = world().await;
    let app = &world.app;
    for user_id in ["A001", "U001"] {
        let body = json!({"experiment_id": world.spare, "user_id": user_id});
        let detail = app
            .call(
                Method::POST,
                "/api/v1/associations",
                Some(&world.admin),
                Some(&body),
            )
            .await
            .problem(422);
        assert!(detail.contains("only scientists"), "{detail}");
    }
    let body = json!({"experiment_id": world.vibrations, "user_id": "S001"});
    let again = app
        .call(
            Method::POST,
            "/api/v1/associations",
            Some(&world.admin),
            Some(&body),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "an existing association is not an error"
    );
    let list = app.get("/api/v1/associations", &world.admin).await.json();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(list[0]["experiment"]["name"], "device-vibrations");
    assert_eq!(list[0]["user"]["user_id"], "S001");
}

#[tokio::test]
async fn who_may_change_an_account() {
    let world = world().await;
    let app = &world.app;
    let patch = |token: &str, user_id: &str, body: serde_json::Value| {
        let token = token.to_string();
        let path = format!("/api/v1/users/{user_id}");
        async move {
            app.call(Method::PATCH, &path, Some(&token), Some(&body))
                .await
        }
    };
    let own = patch(
        &world.scientist,
        "S001",
        json!({"name": "Peter Higgs", "email": "phigg@home.cern"}),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(own.json()["name"], "Peter Higgs");
    // An email change, free or taken, gets the same answer: no account oracle.
    for email in ["peter.higgs@home.cern", "kbouman@home.cern"] {
        let detail = patch(&world.scientist, "S001", json!({ "email": email }))
            .await
            .problem(403);
        assert!(detail.contains("changed by an admin"), "{detail}");
    }
    assert!(
        patch(&world.scientist, "S001", json!({"role": "ADMIN"}))
            .await
            .problem(403)
            .contains("name and email")
    );
    assert!(
        patch(&world.scientist, "S001", json!({"username": "someone"}))
            .await
            .problem(403)
            .contains("name and email")
    );
    patch(&world.scientist, "S002", json!({"name": "x"}))
        .await
        .problem(403);
    patch(&world.auditor, "U001", json!({"name": "x"}))
        .await
        .problem(403);
    // Admins change anything of anyone but their own role.
    let promoted = patch(
        &world.admin,
        "S002",
        json!({"role": "AUDITOR", "username": "katie"}),
    )
    .await;
    assert_eq!(promoted.json()["role"], "AUDITOR");
    assert!(
        patch(&world.admin, "A001", json!({"role": "SCIENTIST"}))
            .await
            .problem(409)
            .contains("own role")
    );
    // The role change takes effect at once, on the token already issued.
    app.get("/api/v1/experiments", &world.other_scientist)
        .await
        .problem(403);
}

#[tokio::test]
async fn erasure_removes_personal_data_and_keeps_the_id() {
    let world = world().await;
    let app = &world.app;
    let admin = Some(world.admin.as_str());
    assert_eq!(
        app.call(Method::DELETE, "/api/v1/users/S001", admin, None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    app.get("/api/v1/users/S001", &world.admin)
        .await
        .problem(404);
    app.get("/api/v1/auth/me", &world.scientist)
        .await
        .problem(401);
    app.login("phigg", PASSWORD).await.problem(401);
    let users = app.get("/api/v1/users", &world.admin).await.json();
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["user_id"] != "S001")
    );
    let associations = app
        .get("/scientists-experiments/", &world.admin)
        .await
        .json();
    assert!(
        associations.get(world.vibrations.to_string()).is_none(),
        "{associations}"
    );
    // The id stays taken (the audit trail keeps meaning the same person) ...
    let reuse = json!({"user_id": "S001", "name": "New", "username": "new", "email": "new@home.cern", "role": "SCIENTIST"});
    app.call(Method::POST, "/api/v1/users", admin, Some(&reuse))
        .await
        .problem(409);
    // ... while the personal data is gone: the username and email can be used again.
    let again = json!({"user_id": "S099", "name": "Peter Higg", "username": "phigg", "email": "phigg@home.cern", "role": "SCIENTIST"});
    assert_eq!(
        app.call(Method::POST, "/api/v1/users", admin, Some(&again))
            .await
            .status,
        StatusCode::CREATED
    );
    let tombstone = app.state.meta.account_by_id("S001").await.unwrap();
    assert!(tombstone.is_none());
    // Admins cannot erase themselves.
    app.call(Method::DELETE, "/api/v1/users/A001", admin, None)
        .await
        .problem(409);
}

#[tokio::test]
async fn measure_types_are_listed_for_everyone_and_created_by_admins() {
    let world = world().await;
    let app = &world.app;
    let types = app
        .get("/api/v1/measure-types", &world.auditor)
        .await
        .json();
    let types = types.as_array().unwrap();
    assert_eq!(types.len(), 22);
    assert_eq!(
        types[0],
        json!({"measure_type_id": 1, "name": "hertz", "symbol": "Hz", "quantity": "frequency"})
    );
    assert_eq!(types[15]["symbol"], "°C");
    let body = json!({"name": "kelvin", "symbol": "K", "quantity": "thermodynamic temperature"});
    let created = app
        .call(
            Method::POST,
            "/api/v1/measure-types",
            Some(&world.admin),
            Some(&body),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json()["measure_type_id"], 23);
    app.call(
        Method::POST,
        "/api/v1/measure-types",
        Some(&world.admin),
        Some(&body),
    )
    .await
    .problem(409);
}

#[tokio::test]
async fn openapi_document_and_docs_page() {
    let world = world().await;
    let app = &world.app;
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/auth/login",
        "/api/v1/users",
        "/api/v1/experiments/{experiment_id}/measures",
        "/users/",
        "/scientists-experiments/{experiment_id}/{scientist_id}",
        "/measures/{experiment_id}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("https://"),
        "the docs page must not load anything from the internet"
    );
}

#[tokio::test]
async fn an_admin_reading_measures_through_an_account_they_made_is_flagged() {
    let world = world().await;
    let app = &world.app;
    // The admin makes a scientist with a password of their choosing, and an auditor...
    for (user_id, username, role) in [
        ("S066", "puppet", "SCIENTIST"),
        ("U066", "watcher", "AUDITOR"),
    ] {
        let created = app
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&world.admin),
                Some(
                    &json!({"user_id": user_id, "name": "Someone", "username": username,
                    "email": format!("{username}@home.cern"), "role": role,
                    "password": "Admin-chosen-passphrase-77"}),
                ),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }
    // ... associates the scientist with an experiment, and could now read its measures.
    let associated = app
        .call(
            Method::POST,
            &format!("/scientists-experiments/{}/S066", world.vibrations),
            Some(&world.admin),
            None,
        )
        .await;
    assert!(associated.status.is_success(), "{}", associated.text);
    // Each step is flagged in the trail...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let kinds = loop {
        let page = app
            .get(
                "/api/v1/audit?action=separation_of_duties&limit=100",
                &world.auditor,
            )
            .await
            .json();
        let kinds: Vec<(String, String)> = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["actor_id"], "A001", "{r}");
                (
                    r["detail"]["kind"].as_str().unwrap().to_string(),
                    r["detail"]["about"]["user_id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        if kinds.len() >= 5 || std::time::Instant::now() > deadline {
            break kinds;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let expected = [
        ("password_set_by_admin", "S066"),
        ("password_set_by_admin", "U066"),
        ("role_granted", "U066"),
        ("associated_own_provisioned_account", "S066"),
    ];
    for (kind, user_id) in expected {
        assert!(
            kinds.contains(&(kind.to_string(), user_id.to_string())),
            "{kind} {user_id} missing from {kinds:?}"
        );
    }
    // ... and counted where an alert rule watches.
    let metrics = app.state.metrics.encode();
    assert!(
        metrics.contains(
            "mymonit_separation_of_duties_events_total{kind=\"associated_own_provisioned_account\"} 1"
        ),
        "{metrics}"
    );
}
