//! Reading measures: ranges, filters, pagination, streamed exports.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::world;

const START: i64 = 1_700_000_000;

#[tokio::test]
async fn ranges_filters_and_cursor_pages() {
    let world = world().await;
    let app = &world.app;
    let exp = world.black_holes;
    app.add_measures(exp, "tesla", START, 250).await;
    app.add_measures(exp, "watt", START, 50).await;
    let base = format!("/api/v1/experiments/{exp}/measures");

    // Walking the cursor visits every tesla point once, in time order.
    let mut seen = Vec::new();
    let mut path = format!("{base}?measure=tesla&limit=100");
    loop {
        let page = app.get(&path, &world.other_scientist).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let page = page.json();
        for measure in page["measures"].as_array().unwrap() {
            assert_eq!(measure["measure_type"], "tesla");
            seen.push(measure["value"].as_f64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{base}?measure=tesla&limit=100&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..250).map(f64::from).collect::<Vec<_>>());

    // `from` is inclusive and `to` exclusive; RFC 3339 and epoch seconds both work.
    let window = app
        .get(
            &format!(
                "{base}?measure=watt&from={}&to=2023-11-14T22:13:50Z",
                START + 10
            ),
            &world.other_scientist,
        )
        .await
        .json();
    let values: Vec<f64> = window["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, (10..30).map(f64::from).collect::<Vec<_>>());
    assert_eq!(window["measures"][0]["timestamp"], "2023-11-14T22:13:30Z");
    assert!(window["next_cursor"].is_null());

    for (query, needle) in [
        ("from=yesterday", "from"),
        ("to=2023-13-45", "to"),
        (&format!("from={START}&to={START}") as &str, "before"),
        ("measure=furlongs", "furlongs"),
        ("limit=0", "limit"),
        ("limit=1000000", "limit"),
        ("cursor=garbage!", "cursor"),
        ("format=xlsx", "format"),
        ("colour=blue", "colour"),
    ] {
        let reply = app
            .get(&format!("{base}?{query}"), &world.other_scientist)
            .await;
        let detail = reply.problem(400);
        assert!(detail.contains(needle), "{query}: {detail}");
    }
}

#[tokio::test]
async fn exports_stream_the_whole_range() {
    let world = world().await;
    let app = &world.app;
    let exp = world.black_holes;
    // More than one page of the streaming reader, to cross page boundaries.
    app.add_measures(exp, "tesla", START, 12_345).await;
    let base = format!("/api/v1/experiments/{exp}/measures");

    let csv = app
        .get(&format!("{base}?format=csv"), &world.other_scientist)
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "timestamp,experiment,measure_type,value,tags");
    assert_eq!(lines.len(), 12_346);
    assert_eq!(lines[1], "2023-11-14T22:13:20Z,black-holes,tesla,0,");
    let values: HashSet<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(3).unwrap())
        .collect();
    assert_eq!(values.len(), 12_345, "no duplicates across pages");

    let ndjson = app
        .get(
            &format!("{base}?format=ndjson&from={}", START + 12_000),
            &world.other_scientist,
        )
        .await;
    assert_eq!(ndjson.headers["content-type"], "application/x-ndjson");
    let rows: Vec<Value> = ndjson
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 345);
    assert_eq!(rows[0]["value"], 12_000.0);
    assert_eq!(rows[344]["value"], 12_344.0);

    let limited = app
        .get(
            &format!("{base}?format=csv&limit=7000"),
            &world.other_scientist,
        )
        .await;
    assert_eq!(limited.text.lines().count(), 7001);
}
