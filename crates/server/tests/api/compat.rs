//! The original routes keep their JSON shapes.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::world;

#[tokio::test]
async fn original_shapes_and_statuses() {
    let world = world().await;
    let app = &world.app;
    let admin = Some(world.admin.as_str());

    let created = app
        .call(
            Method::POST,
            "/experiments/",
            admin,
            Some(&json!({"name": "dark-matter"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let experiment = created.json();
    assert_eq!(
        experiment,
        json!({"experiment_id": 4, "name": "dark-matter"})
    );
    let renamed = app
        .call(
            Method::PUT,
            "/experiments/4",
            admin,
            Some(&json!({"name": "dark-energy"})),
        )
        .await;
    assert_eq!(
        renamed.json(),
        json!({"experiment_id": 4, "name": "dark-energy"})
    );
    app.call(
        Method::PUT,
        "/experiments/999",
        admin,
        Some(&json!({"name": "x"})),
    )
    .await
    .problem(404);
    app.call(
        Method::POST,
        "/experiments/",
        admin,
        Some(&json!({"name": "dark-energy"})),
    )
    .await
    .problem(409);

    let user = json!({"user_id": "S004", "name": "Vera Rubin", "username": "vrubin", "email": "vrubin@home.cern", "role": "SCIENTIST"});
    let created = app.call(Method::POST, "/users/", admin, Some(&user)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json(), user);
    app.call(Method::POST, "/users/", admin, Some(&user))
        .await
        .problem(409);
    // PUT takes name, email and username; id and role in the body are ignored as before.
    let update = json!({"user_id": "HACK", "name": "Vera C. Rubin", "email": "vera@home.cern", "username": "vrubin", "role": "ADMIN"});
    let updated = app
        .call(Method::PUT, "/users/S004", admin, Some(&update))
        .await
        .json();
    assert_eq!(
        updated,
        json!({"user_id": "S004", "name": "Vera C. Rubin", "username": "vrubin", "email": "vera@home.cern", "role": "SCIENTIST"})
    );
    app.call(
        Method::PUT,
        "/users/NOPE",
        admin,
        Some(&json!({"name": "x"})),
    )
    .await
    .problem(404);

    let associated = app
        .call(Method::POST, "/scientists-experiments/4/S004", admin, None)
        .await;
    assert_eq!(associated.status, StatusCode::CREATED);
    app.call(Method::POST, "/scientists-experiments/4/A001", admin, None)
        .await
        .problem(422);
    app.call(Method::POST, "/scientists-experiments/4/NOPE", admin, None)
        .await
        .problem(404);
    app.call(
        Method::POST,
        "/scientists-experiments/999/S004",
        admin,
        None,
    )
    .await
    .problem(404);
    let associations = app
        .get("/scientists-experiments/", &world.admin)
        .await
        .json();
    assert_eq!(associations["4"], json!({"users": [updated]}));
    assert_eq!(
        associations[world.vibrations.to_string()]["users"][0]["user_id"],
        "S001"
    );
    assert_eq!(associations.as_object().unwrap().len(), 4);

    let measures = app
        .get(&format!("/measures/{}", world.vibrations), &world.scientist)
        .await;
    assert_eq!(measures.headers["content-type"], "application/json");
    let measures = measures.json();
    let measures = measures.as_array().unwrap();
    assert_eq!(measures.len(), 10);
    assert_eq!(
        measures[0],
        json!({"measure_type": "hertz", "timestamp": "Fri, 20 May 2022 09:46:40 GMT", "experiment": "device-vibrations", "value": 0.0})
    );
    assert_eq!(measures[9]["value"], 9.0);
    // An experiment without measures is an empty array, not an error.
    let vera = app.state.meta.get_user("S004").await.unwrap().unwrap();
    mymonit_server::accounts::set_password(
        app.state.meta.as_ref(),
        &vera,
        crate::helpers::PASSWORD.to_string().into(),
    )
    .await
    .unwrap();
    let empty = app
        .get("/measures/4", &app.token("vrubin").await)
        .await
        .json();
    assert_eq!(empty, json!([]));
    app.get("/measures/not-a-number", &world.scientist)
        .await
        .problem(404);
}
