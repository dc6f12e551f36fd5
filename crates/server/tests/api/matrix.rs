//! The authorization matrix: every route × every role × the expected status, as DESIGN.md's
//! role table says. Bodies are unique per role, so the order of calls does not matter.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{World, world};

/// Who calls.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Anonymous,
    Admin,
    /// S001, associated with device-vibrations.
    Scientist,
    /// S002, associated with black-holes only.
    OtherScientist,
    Auditor,
}

const CALLERS: [Caller; 5] = [
    Caller::Anonymous,
    Caller::Admin,
    Caller::Scientist,
    Caller::OtherScientist,
    Caller::Auditor,
];

struct Row {
    method: Method,
    path: String,
    body: Option<fn(&str) -> Value>,
    /// Expected status per caller, in [`CALLERS`] order.
    expected: [u16; 5],
}

fn row(
    method: Method,
    path: impl Into<String>,
    body: Option<fn(&str) -> Value>,
    expected: [u16; 5],
) -> Row {
    Row {
        method,
        path: path.into(),
        body,
        expected,
    }
}

fn token(world: &World, caller: Caller) -> Option<&str> {
    match caller {
        Caller::Anonymous => None,
        Caller::Admin => Some(&world.admin),
        Caller::Scientist => Some(&world.scientist),
        Caller::OtherScientist => Some(&world.other_scientist),
        Caller::Auditor => Some(&world.auditor),
    }
}

#[tokio::test]
async fn every_route_every_role() {
    let world = world().await;
    let (vib, spare) = (world.vibrations, world.spare);
    // Targets an admin may erase, one per caller tag.
    for tag in [
        "Anonymous",
        "Admin",
        "Scientist",
        "OtherScientist",
        "Auditor",
    ] {
        world
            .app
            .add_user(
                &format!("E-{tag}"),
                &format!("erase-{tag}"),
                mymonit_model::Role::Scientist,
            )
            .await;
    }
    use Method as M;
    let rows = vec![
        row(M::GET, "/healthz", None, [200, 200, 200, 200, 200]),
        row(M::GET, "/readyz", None, [200, 200, 200, 200, 200]),
        row(
            M::GET,
            "/.well-known/jwks.json",
            None,
            [200, 200, 200, 200, 200],
        ),
        row(
            M::GET,
            "/api/v1/openapi.json",
            None,
            [200, 200, 200, 200, 200],
        ),
        row(M::GET, "/api/v1/auth/me", None, [401, 200, 200, 200, 200]),
        // Users.
        row(M::GET, "/api/v1/users", None, [401, 200, 200, 200, 403]),
        row(
            M::POST,
            "/api/v1/users",
            Some(|t| {
                json!({"user_id": format!("N-{t}"), "name": "New Person",
            "username": format!("new-{t}"), "email": format!("new-{t}@home.cern"), "role": "SCIENTIST"})
            }),
            [401, 201, 403, 403, 403],
        ),
        row(
            M::GET,
            "/api/v1/users/S001",
            None,
            [401, 200, 200, 403, 403],
        ),
        row(
            M::PATCH,
            "/api/v1/users/S001",
            Some(|_| json!({"name": "Peter Higg"})),
            [401, 200, 200, 403, 403],
        ),
        row(
            M::DELETE,
            "/api/v1/users/E-{tag}",
            None,
            [401, 204, 403, 403, 403],
        ),
        // Experiments.
        row(
            M::GET,
            "/api/v1/experiments",
            None,
            [401, 200, 200, 200, 403],
        ),
        row(
            M::POST,
            "/api/v1/experiments",
            Some(|t| json!({"name": format!("exp-{t}")})),
            [401, 201, 403, 403, 403],
        ),
        row(
            M::GET,
            format!("/api/v1/experiments/{vib}"),
            None,
            [401, 200, 200, 403, 403],
        ),
        row(
            M::PATCH,
            format!("/api/v1/experiments/{spare}"),
            Some(|t| json!({"name": format!("renamed-{t}")})),
            [401, 200, 403, 403, 403],
        ),
        row(
            M::GET,
            format!("/api/v1/experiments/{vib}/measures"),
            None,
            [401, 403, 200, 403, 403],
        ),
        row(
            M::GET,
            format!("/api/v1/experiments/{vib}/measures?format=csv"),
            None,
            [401, 403, 200, 403, 403],
        ),
        row(M::GET, "/api/v1/audit", None, [401, 403, 403, 403, 200]),
        row(
            M::GET,
            "/api/v1/audit/verify",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::GET,
            format!("/api/v1/experiments/{vib}/stats?measure=hertz"),
            None,
            [401, 403, 200, 403, 403],
        ),
        row(
            M::GET,
            format!("/api/v1/experiments/{vib}/boxplot"),
            None,
            [401, 403, 200, 403, 403],
        ),
        row(
            M::GET,
            format!("/api/v1/experiments/{vib}/series?measure=hertz"),
            None,
            [401, 403, 200, 403, 403],
        ),
        row(
            M::GET,
            format!("/api/v1/experiments/{vib}/latest"),
            None,
            [401, 403, 200, 403, 403],
        ),
        row(
            M::GET,
            format!("/api/v1/experiments/{vib}/retention"),
            None,
            [401, 200, 403, 403, 403],
        ),
        row(
            M::PUT,
            format!("/api/v1/experiments/{vib}/retention"),
            Some(|_| json!({"days": 400})),
            [401, 200, 403, 403, 403],
        ),
        // Measure types.
        row(
            M::GET,
            "/api/v1/measure-types",
            None,
            [401, 200, 200, 200, 200],
        ),
        row(
            M::POST,
            "/api/v1/measure-types",
            Some(|t| {
                json!({"name": format!("unit-{t}"), "symbol": "u",
            "quantity": "test"})
            }),
            [401, 201, 403, 403, 403],
        ),
        // Associations.
        row(
            M::GET,
            "/api/v1/associations",
            None,
            [401, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/api/v1/associations",
            Some(|_| json!({"experiment_id": 3, "user_id": "S002"})),
            [401, 201, 403, 403, 403],
        ),
        row(
            M::DELETE,
            format!("/api/v1/associations/{spare}/S003"),
            None,
            [401, 204, 403, 403, 403],
        ),
        // Ingest tokens.
        row(
            M::GET,
            "/api/v1/ingest-tokens",
            None,
            [401, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/api/v1/ingest-tokens",
            Some(|t| json!({"experiments": ["device-vibrations"], "description": t})),
            [401, 201, 403, 403, 403],
        ),
        row(
            M::DELETE,
            "/api/v1/ingest-tokens/no-such-token",
            None,
            [401, 404, 403, 403, 403],
        ),
        // Ingest itself takes ingest tokens, never user tokens.
        row(
            M::POST,
            "/api/v1/ingest",
            Some(
                |_| json!({"experiment": "device-vibrations", "measure": "volt", "value": 1, "timestamp": 1}),
            ),
            [401, 401, 401, 401, 401],
        ),
        // The original routes.
        row(M::GET, "/users/", None, [401, 200, 200, 200, 403]),
        row(
            M::POST,
            "/users/",
            Some(|t| {
                json!({"user_id": format!("C-{t}"), "name": "Compat Person",
            "username": format!("compat-{t}"), "email": format!("compat-{t}@home.cern"), "role": "SCIENTIST"})
            }),
            [401, 201, 403, 403, 403],
        ),
        row(
            M::PUT,
            "/users/S001",
            Some(|_| json!({"name": "Peter Higg", "email": "phigg@home.cern"})),
            [401, 200, 200, 403, 403],
        ),
        row(M::GET, "/experiments/", None, [401, 200, 200, 200, 403]),
        row(
            M::POST,
            "/experiments/",
            Some(|t| json!({"name": format!("compat-exp-{t}")})),
            [401, 201, 403, 403, 403],
        ),
        row(
            M::PUT,
            format!("/experiments/{spare}"),
            Some(|t| json!({"name": format!("compat-renamed-{t}")})),
            [401, 200, 403, 403, 403],
        ),
        row(
            M::GET,
            format!("/measures/{vib}"),
            None,
            [401, 403, 200, 403, 403],
        ),
        row(
            M::GET,
            "/scientists-experiments/",
            None,
            [401, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            format!("/scientists-experiments/{spare}/S001"),
            None,
            [401, 201, 403, 403, 403],
        ),
    ];
    assert_eq!(world.spare, 3, "the association row names experiment 3");

    let mut failures = Vec::new();
    for row in &rows {
        for (caller, expected) in CALLERS.iter().zip(row.expected) {
            let tag = format!("{caller:?}");
            let path = row.path.replace("{tag}", &tag);
            let body = row.body.map(|make| make(&tag));
            let reply = world
                .app
                .call(
                    row.method.clone(),
                    &path,
                    token(&world, *caller),
                    body.as_ref(),
                )
                .await;
            if reply.status.as_u16() != expected {
                failures.push(format!(
                    "{} {path} as {caller:?}: expected {expected}, got {} {}",
                    row.method, reply.status, reply.text
                ));
            }
            if expected >= 400 {
                reply.problem(expected);
            }
            if expected == 401 {
                assert!(
                    reply
                        .headers
                        .contains_key(reqwest::header::WWW_AUTHENTICATE)
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix mismatches:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn what_each_role_sees_in_lists() {
    let world = world().await;
    let app = &world.app;
    let names = |reply: crate::helpers::Reply| -> Vec<String> {
        reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    // An admin sees every experiment, associated or not (the original's bug is not kept).
    assert_eq!(
        names(app.get("/experiments/", &world.admin).await),
        ["device-vibrations", "black-holes", "spare"]
    );
    assert_eq!(
        names(app.get("/experiments/", &world.scientist).await),
        ["device-vibrations"]
    );
    assert_eq!(
        names(app.get("/api/v1/experiments", &world.other_scientist).await),
        ["black-holes"]
    );
    // A scientist lists only their own account.
    let users = app.get("/api/v1/users", &world.scientist).await.json();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["user_id"], "S001");
    let users = app.get("/users/", &world.admin).await.json();
    assert_eq!(users.as_array().unwrap().len(), 5);
    assert_eq!(
        users[0],
        json!({"user_id": "A001", "name": "Person A001", "username": "aalcorn",
               "email": "aalcorn@home.cern", "role": "ADMIN"})
    );
}
