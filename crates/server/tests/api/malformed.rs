//! Malformed bodies for every route that takes one: broken JSON is 400, wrong types and
//! missing fields 422, oversized bodies 413, a missing JSON content type 415; never a 500,
//! and always a problem document.

use reqwest::Method;

use crate::helpers::world_with;

#[tokio::test]
async fn every_body_route_refuses_bad_input_clearly() {
    let world = world_with(|settings| settings.max_body_bytes = 4096).await;
    let app = &world.app;
    let spare = world.spare;
    let routes: Vec<(Method, String, &str, Option<&str>)> = vec![
        // (method, path, token, a body with a wrong type, a body missing a required field)
        (
            Method::POST,
            "/api/v1/auth/login".into(),
            "",
            Some(r#"{"username": 5, "password": "x"}"#),
        ),
        (
            Method::POST,
            "/api/v1/auth/password".into(),
            &world.scientist,
            Some(r#"{"current_password": []}"#),
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            &world.admin,
            Some(r#"{"user_id": "X1"}"#),
        ),
        (
            Method::PATCH,
            "/api/v1/users/S001".into(),
            &world.admin,
            None,
        ),
        (
            Method::POST,
            "/api/v1/experiments".into(),
            &world.admin,
            Some("{}"),
        ),
        (
            Method::PATCH,
            format!("/api/v1/experiments/{spare}"),
            &world.admin,
            Some("{}"),
        ),
        (
            Method::POST,
            "/api/v1/measure-types".into(),
            &world.admin,
            Some(r#"{"name": "kelvin"}"#),
        ),
        (
            Method::POST,
            "/api/v1/associations".into(),
            &world.admin,
            Some(r#"{"experiment_id": 1}"#),
        ),
        (
            Method::POST,
            "/api/v1/ingest-tokens".into(),
            &world.admin,
            Some(r#"{"description": "x"}"#),
        ),
        (
            Method::POST,
            "/users/".into(),
            &world.admin,
            Some(r#"{"user_id": "X2", "name": "N"}"#),
        ),
        (Method::PUT, "/users/S001".into(), &world.admin, None),
        (
            Method::POST,
            "/experiments/".into(),
            &world.admin,
            Some("{}"),
        ),
        (
            Method::PUT,
            format!("/experiments/{spare}"),
            &world.admin,
            Some("{}"),
        ),
    ];
    for (method, path, token, missing_field) in routes {
        let token = (!token.is_empty()).then_some(token);
        let json = Some("application/json");
        let label = format!("{method} {path}");

        let syntax = app
            .raw(method.clone(), &path, token, json, b"{,".to_vec())
            .await;
        let detail = syntax.problem(400);
        assert!(detail.contains("malformed JSON"), "{label}: {detail}");

        let wrong_type = app.raw(method.clone(), &path, token, json, br#"{"name": 42, "username": 7, "experiment_id": "x", "user_id": 3, "email": [], "current_password": 1, "password": 2}"#.to_vec()).await;
        wrong_type.problem(422);

        let not_an_object = app
            .raw(method.clone(), &path, token, json, b"[1, 2, 3]".to_vec())
            .await;
        not_an_object.problem(422);

        if let Some(body) = missing_field {
            let missing = app
                .raw(method.clone(), &path, token, json, body.as_bytes().to_vec())
                .await;
            let detail = missing.problem(422);
            assert!(
                detail.contains("missing field") || detail.contains("invalid type"),
                "{label}: {detail}"
            );
        }

        let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(10_000));
        let too_large = app
            .raw(method.clone(), &path, token, json, huge.into_bytes())
            .await;
        too_large.problem(413);

        let no_type = app
            .raw(method.clone(), &path, token, None, b"{}".to_vec())
            .await;
        no_type.problem(415);
    }
}

#[tokio::test]
async fn invalid_values_name_the_field() {
    let world = world_with(|_| {}).await;
    let app = &world.app;
    let create = |body: serde_json::Value| {
        let token = world.admin.clone();
        async move {
            app.call(Method::POST, "/api/v1/users", Some(&token), Some(&body))
                .await
        }
    };
    let base = serde_json::json!({"user_id": "S010", "name": "Vera Rubin", "username": "vrubin",
        "email": "vrubin@home.cern", "role": "SCIENTIST"});
    for (field, value) in [
        ("email", "not-an-email"),
        ("user_id", "S 010"),
        ("name", ""),
        ("username", "v rubin"),
    ] {
        let mut body = base.clone();
        body[field] = value.into();
        let reply = create(body).await;
        reply.problem(422);
        assert_eq!(reply.json()["field"], field, "{}", reply.text);
    }
    let mut body = base.clone();
    body["role"] = "ROOT".into();
    assert!(create(body).await.problem(422).contains("ROOT"));
    let mut body = base.clone();
    body["password"] = "short".into();
    assert!(create(body).await.problem(422).contains("too short"));
    let mut body = base.clone();
    body["shoe_size"] = 44.into();
    assert!(create(body).await.problem(422).contains("shoe_size"));
    // Unknown routes and methods answer with problems too.
    app.get("/api/v1/nothing-here", &world.admin)
        .await
        .problem(404);
    app.call(
        Method::DELETE,
        "/api/v1/experiments",
        Some(&world.admin),
        None,
    )
    .await
    .problem(405);
    app.get("/api/v1/experiments/not-a-number", &world.admin)
        .await
        .problem(400);
    app.get("/api/v1/experiments/999", &world.admin)
        .await
        .problem(404);
}
