//! Statistics, chart series, boxplots, latest values, the live stream and retention, checked
//! against plain reference computations over the same points.

use std::collections::{BTreeMap, BTreeSet};

use mymonit_model::measure::NewMeasure;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, world, world_with};

const NS: i64 = 1_000_000_000;
/// 2026-01-05T00:00:00Z, a Monday.
const MONDAY: i64 = 1_767_571_200;

fn rfc3339(seconds: i64) -> String {
    mymonit_model::time::format_rfc3339(seconds * NS)
}

/// Deterministic readings with three decimals.
fn reading(i: i64) -> f64 {
    let noise = (i.wrapping_mul(2_654_435_761) % 10_007) as f64 / 1000.0;
    ((230.0 + noise) * 1000.0).round() / 1000.0
}

async fn type_id(app: &TestApp, name: &str) -> i64 {
    app.state
        .meta
        .measure_type_by_name(name)
        .await
        .unwrap()
        .unwrap()
        .measure_type_id
}

fn point(experiment_id: i64, type_id: i64, seconds: i64, value: f64, host: &str) -> NewMeasure {
    NewMeasure {
        experiment_id,
        measure_type_id: type_id,
        timestamp_ns: seconds * NS,
        value,
        tags: BTreeMap::from([("host".to_string(), host.to_string())]),
    }
}

fn reference_percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let k = rank.floor() as usize;
    let fraction = rank - k as f64;
    if fraction > 0.0 {
        sorted[k] + (sorted[k + 1] - sorted[k]) * fraction
    } else {
        sorted[k]
    }
}

/// The expected bucket for points (in arrival order) of one slice.
fn reference_bucket(points: &[&NewMeasure]) -> Value {
    let mut by_time: Vec<&NewMeasure> = points.to_vec();
    by_time.sort_by_key(|m| m.timestamp_ns); // stable: ties keep arrival order
    let values: Vec<f64> = points.iter().map(|m| m.value).collect();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    let mean = sum / n;
    let stddev = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let hosts: BTreeSet<&String> = points.iter().map(|m| &m.tags["host"]).collect();
    json!({
        "count": values.len(),
        "sum": sum, "mean": mean, "stddev": stddev,
        "min": sorted[0], "max": sorted[sorted.len() - 1],
        "first": by_time[0].value, "last": by_time[by_time.len() - 1].value,
        "p25": reference_percentile(&sorted, 25.0), "p50": reference_percentile(&sorted, 50.0),
        "p90": reference_percentile(&sorted, 90.0), "p99": reference_percentile(&sorted, 99.0),
        "count_distinct:tag:host": hosts.len(),
    })
}

fn assert_bucket_matches(got: &Value, expected: &Value) {
    for (name, want) in expected.as_object().unwrap() {
        let have = &got[name];
        match name.as_str() {
            // Sums depend on the order of additions: equal to the last few bits.
            "sum" | "mean" | "stddev" => {
                let (a, b) = (have.as_f64().unwrap(), want.as_f64().unwrap());
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    "{name}: {a} vs {b}"
                );
            }
            _ => assert_eq!(have, want, "{name} of bucket {}", got["start"]),
        }
    }
}

#[tokio::test]
async fn hourly_statistics_equal_a_reference_before_and_after_compaction() {
    let world = world().await;
    let app = &world.app;
    let exp = world.black_holes;
    let volt = type_id(app, "volt").await;
    // Two hosts, one point a minute for a day, then late points and same-second ties.
    let mut arrivals: Vec<NewMeasure> = (0..2 * 1440)
        .map(|i| {
            point(
                exp,
                volt,
                MONDAY + (i / 2) * 60,
                reading(i),
                ["lab1", "lab2"][(i % 2) as usize],
            )
        })
        .collect();
    app.state.measures.append(&arrivals).await.unwrap();
    app.state.measures.compact(1 << 20).await.unwrap();
    let late: Vec<NewMeasure> = (0..300)
        .map(|i| {
            point(
                exp,
                volt,
                MONDAY + (i * 997) % 86_400,
                reading(10_000 + i),
                "lab3",
            )
        })
        .chain((0..50).map(|i| point(exp, volt, MONDAY + i * 60, reading(20_000 + i), "lab1")))
        .collect();
    app.state.measures.append(&late).await.unwrap();
    arrivals.extend(late);

    let statistics =
        "count,sum,mean,stddev,min,max,first,last,p25,p50,p90,p99,count_distinct:tag:host";
    let path = format!(
        "/api/v1/experiments/{exp}/stats?measure=volt&statistics={statistics}&timeslice=hour&from={}&to={}",
        rfc3339(MONDAY),
        rfc3339(MONDAY + 86_400)
    );
    for phase in ["with recent points", "after compaction"] {
        let reply = app.get(&path, &world.other_scientist).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let body = reply.json();
        assert_eq!(body["measure"], "volt");
        assert_eq!(body["from"], "2026-01-05T00:00:00Z");
        let buckets = body["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 24, "{phase}");
        for (hour, bucket) in buckets.iter().enumerate() {
            let start = MONDAY + hour as i64 * 3600;
            assert_eq!(bucket["start"], rfc3339(start));
            let inside: Vec<&NewMeasure> = arrivals
                .iter()
                .filter(|m| (start * NS..(start + 3600) * NS).contains(&m.timestamp_ns))
                .collect();
            assert_bucket_matches(bucket, &reference_bucket(&inside));
        }
        app.state.measures.compact(1 << 20).await.unwrap();
    }

    // One bucket over the whole range when there is no timeslice; `from` defaults to the
    // first point.
    let whole = app
        .get(
            &format!("/api/v1/experiments/{exp}/stats?measure=volt&statistics=count,p50"),
            &world.other_scientist,
        )
        .await
        .json();
    assert_eq!(whole["buckets"].as_array().unwrap().len(), 1);
    assert_eq!(whole["buckets"][0]["count"], arrivals.len());
    assert_eq!(whole["from"], "2026-01-05T00:00:00Z");

    // Grouped by tag: one bucket per host, each equal to its own reference.
    let grouped = app
        .get(&format!("{path}&group_by=tag:host"), &world.other_scientist)
        .await
        .json();
    let first_hour: Vec<&Value> = grouped["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["start"] == rfc3339(MONDAY))
        .collect();
    let groups: Vec<&str> = first_hour
        .iter()
        .map(|b| b["group"].as_str().unwrap())
        .collect();
    assert_eq!(groups, vec!["lab1", "lab2", "lab3"]);
    for bucket in first_hour {
        let host = bucket["group"].as_str().unwrap();
        let inside: Vec<&NewMeasure> = arrivals
            .iter()
            .filter(|m| m.tags["host"] == host && m.timestamp_ns < (MONDAY + 3600) * NS)
            .collect();
        assert_bucket_matches(bucket, &reference_bucket(&inside));
    }
}

/// Every measure type in one request (`group_by=measure`), on a range long enough that
/// the server decodes its chunks on several threads and merges their buckets; the chart of
/// the same range (downsampled on several threads too) keeps each column's extremes.
#[tokio::test]
async fn statistics_of_every_type_in_one_request_equal_a_reference() {
    let world = world().await;
    let app = &world.app;
    let exp = world.black_holes;
    let (volt, watt) = (type_id(app, "volt").await, type_id(app, "watt").await);
    // 50,000 watt points (one a second: about 49 chunks) and 5,000 volt points, two hosts;
    // then a few not yet compacted.
    let mut arrivals: Vec<NewMeasure> = (0..50_000)
        .map(|i| {
            point(
                exp,
                watt,
                MONDAY + i,
                reading(i),
                ["lab1", "lab2"][(i % 2) as usize],
            )
        })
        .chain((0..5_000).map(|i| point(exp, volt, MONDAY + i * 10, reading(7 * i), "lab1")))
        .collect();
    app.state.measures.append(&arrivals).await.unwrap();
    app.state.measures.compact(1 << 20).await.unwrap();
    let recent: Vec<NewMeasure> = (0..100)
        .map(|i| point(exp, watt, MONDAY + i * 300 + 1, reading(90_000 + i), "lab3"))
        .collect();
    app.state.measures.append(&recent).await.unwrap();
    arrivals.extend(recent);

    let statistics = "count,sum,mean,stddev,min,max,first,last,p25,p50,p90,p99";
    let (from, to) = (MONDAY, MONDAY + 50_000);
    let reply = app
        .get(
            &format!(
                "/api/v1/experiments/{exp}/stats?group_by=measure&statistics={statistics}&timeslice=hour&from={}&to={}",
                rfc3339(from),
                rfc3339(to)
            ),
            &world.other_scientist,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["measure"], "*");
    let buckets = body["buckets"].as_array().unwrap();
    // 14 hours (the last one partial) of watt; volt's points end after 13.9 hours.
    assert_eq!(buckets.len(), 2 * 14, "{}", reply.text);
    for bucket in buckets {
        let measure = bucket["group"].as_str().unwrap();
        let type_id = if measure == "watt" { watt } else { volt };
        let start = (MONDAY..to)
            .step_by(3600)
            .find(|s| bucket["start"] == rfc3339(*s))
            .unwrap();
        let inside: Vec<&NewMeasure> = arrivals
            .iter()
            .filter(|m| {
                m.measure_type_id == type_id
                    && (start * NS..((start + 3600).min(to)) * NS).contains(&m.timestamp_ns)
            })
            .collect();
        let mut expected = reference_bucket(&inside);
        expected
            .as_object_mut()
            .unwrap()
            .remove("count_distinct:tag:host");
        assert_bucket_matches(bucket, &expected);
    }
    // The same figures as asking for one type.
    let one = app
        .get(
            &format!(
                "/api/v1/experiments/{exp}/stats?measure=watt&statistics={statistics}&timeslice=hour&from={}&to={}",
                rfc3339(from),
                rfc3339(to)
            ),
            &world.other_scientist,
        )
        .await
        .json();
    let watt_buckets: Vec<&Value> = buckets.iter().filter(|b| b["group"] == "watt").collect();
    for (grouped, alone) in watt_buckets.iter().zip(one["buckets"].as_array().unwrap()) {
        assert_eq!(grouped["p99"], alone["p99"]);
        assert_eq!(grouped["count"], alone["count"]);
    }
    // A wrong grouping is named.
    let wrong = app
        .get(
            &format!("/api/v1/experiments/{exp}/stats?group_by=type"),
            &world.other_scientist,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.text.contains("neither tag:KEY nor measure"),
        "{}",
        wrong.text
    );

    // The chart of the whole range equals M4 over the points in order on one thread.
    let chart = app
        .get(
            &format!(
                "/api/v1/experiments/{exp}/series?measure=watt&points=400&from={}&to={}",
                rfc3339(from),
                rfc3339(to)
            ),
            &world.other_scientist,
        )
        .await
        .json();
    let series = chart["series"].as_array().unwrap();
    assert_eq!(series.len(), 3, "lab1, lab2 and lab3");
    for one in series {
        let host = one["tags"]["host"].as_str().unwrap();
        let mut m4 = mymonit_tsdb::downsample::M4::new(from * NS, to * NS, 400);
        for (seq, m) in arrivals.iter().enumerate() {
            if m.measure_type_id == watt && m.tags["host"] == host {
                m4.add(mymonit_tsdb::Point {
                    ts: m.timestamp_ns,
                    seq: seq as i64,
                    value: m.value,
                });
            }
        }
        let expected = m4.finish();
        let times: Vec<i64> = expected.iter().map(|p| p.ts / 1_000_000).collect();
        let values: Vec<f64> = expected.iter().map(|p| p.value).collect();
        assert_eq!(one["timestamps_ms"], json!(times), "{host}");
        assert_eq!(one["values"], json!(values), "{host}");
    }
}

#[tokio::test]
async fn calendar_days_follow_the_time_zone_across_daylight_saving() {
    let world = world().await;
    let app = &world.app;
    let exp = world.black_holes;
    let watt = type_id(app, "watt").await;
    // One point a minute, 2026-03-28T00:00Z to 2026-03-30T00:00Z; Paris springs forward on
    // the 29th, so its day is 23 hours long.
    let start = 1_774_656_000;
    let points: Vec<NewMeasure> = (0..2 * 1440)
        .map(|i| point(exp, watt, start + i * 60, 1.0, "lab1"))
        .collect();
    app.state.measures.append(&points).await.unwrap();
    app.state.measures.compact(1 << 20).await.unwrap();
    let body = app
        .get(
            &format!(
                "/api/v1/experiments/{exp}/stats?measure=watt&statistics=count&timeslice=day&tz=Europe/Paris&from={}&to={}",
                rfc3339(start),
                rfc3339(start + 2 * 86_400)
            ),
            &world.other_scientist,
        )
        .await
        .json();
    let days: Vec<(String, u64)> = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap().to_owned(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        days,
        vec![
            ("2026-03-27T23:00:00Z".to_owned(), 23 * 60),
            ("2026-03-28T23:00:00Z".to_owned(), 23 * 60),
            ("2026-03-29T22:00:00Z".to_owned(), 2 * 60),
        ]
    );
}

#[tokio::test]
async fn dynamic_slices_start_at_from_and_fill_shows_empty_ones() {
    let world = world().await;
    let app = &world.app;
    let exp = world.black_holes;
    let watt = type_id(app, "watt").await;
    // Minutes 0..60 except 20..40.
    let points: Vec<NewMeasure> = (0..60)
        .filter(|m| !(20..40).contains(m))
        .map(|m| point(exp, watt, MONDAY + m * 60, m as f64, "lab1"))
        .collect();
    app.state.measures.append(&points).await.unwrap();
    let base = format!(
        "/api/v1/experiments/{exp}/stats?measure=watt&statistics=count,mean&timeslice=15m&timeslice_is_static=false&from={}&to={}",
        rfc3339(MONDAY + 7 * 60),
        rfc3339(MONDAY + 60 * 60)
    );
    let starts = |body: &Value| -> Vec<String> {
        body["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["start"].as_str().unwrap().to_owned())
            .collect()
    };
    let plain = app.get(&base, &world.other_scientist).await.json();
    // Slices start at 00:07, 00:22, 00:37, 00:52; the one at 00:22 holds nothing.
    assert_eq!(
        starts(&plain),
        vec![
            "2026-01-05T00:07:00Z",
            "2026-01-05T00:37:00Z",
            "2026-01-05T00:52:00Z"
        ]
    );
    assert_eq!(plain["buckets"][0]["count"], 13);
    assert_eq!(plain["buckets"][1]["count"], 12);
    let nulls = app
        .get(&format!("{base}&fill=null"), &world.other_scientist)
        .await
        .json();
    assert_eq!(
        nulls["buckets"][1],
        json!({"start": "2026-01-05T00:22:00Z", "count": 0, "mean": null})
    );
    let zeros = app
        .get(&format!("{base}&fill=zero"), &world.other_scientist)
        .await
        .json();
    assert_eq!(
        zeros["buckets"][1],
        json!({"start": "2026-01-05T00:22:00Z", "count": 0, "mean": 0.0})
    );
}

#[tokio::test]
async fn bad_statistics_requests_are_400_naming_the_problem() {
    let world = world_with(|settings| settings.api.max_buckets = 100).await;
    let app = &world.app;
    let vib = world.vibrations;
    let base = format!("/api/v1/experiments/{vib}/stats");
    for (query, needle) in [
        (
            "measure=hertz&statistics=median",
            "unknown statistic \\\"median\\\"",
        ),
        ("measure=hertz&statistics=p101", "p101"),
        ("measure=hertz&timeslice=fortnight", "unknown timeslice"),
        ("measure=hertz&timeslice=15m", "timeslice_is_static=false"),
        (
            "measure=hertz&timeslice=month&timeslice_is_static=false",
            "no fixed length",
        ),
        (
            "measure=hertz&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from must be before to",
        ),
        (
            "measure=hertz&timeslice=minute&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
            "more than 100 buckets",
        ),
        ("measure=hertz&tz=Mars/Olympus", "unknown time zone"),
        ("measure=hertz&group_by=host", "neither tag:KEY nor measure"),
        ("statistics=count", "measure: required"),
        ("measure=furlongs", "unknown measure type"),
        ("measure=hertz&fill=maybe", "fill"),
        ("measure=hertz&bucket=1", "bucket"),
    ] {
        let reply = app.get(&format!("{base}?{query}"), &world.scientist).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.text
        );
        assert!(reply.text.contains(needle), "{query}: {}", reply.text);
    }
    // Nobody else's experiment, and admins do not read measures.
    let other = app
        .get(&format!("{base}?measure=hertz"), &world.other_scientist)
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let admin = app
        .get(&format!("{base}?measure=hertz"), &world.admin)
        .await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn chart_series_boxplot_and_latest() {
    let world = world().await;
    let app = &world.app;
    let exp = world.black_holes;
    let volt = type_id(app, "volt").await;
    let watt = type_id(app, "watt").await;
    let mut points: Vec<NewMeasure> = (0..20_000)
        .map(|i| point(exp, volt, MONDAY + i, (i % 100) as f64, "lab1"))
        .collect();
    points[12_345].value = 1e6; // a spike the chart must show
    points.extend((0..101).map(|i| point(exp, watt, MONDAY + i, i as f64, "lab1")));
    app.state.measures.append(&points).await.unwrap();
    app.state.measures.compact(1 << 20).await.unwrap();
    app.state
        .measures
        .append(&[point(exp, volt, MONDAY + 30_000, -5.0, "lab1")])
        .await
        .unwrap();

    let chart = app
        .get(
            &format!(
                "/api/v1/experiments/{exp}/series?measure=volt&points=400&from={}&to={}",
                MONDAY,
                MONDAY + 30_001
            ),
            &world.other_scientist,
        )
        .await;
    assert_eq!(chart.status, StatusCode::OK, "{}", chart.text);
    let chart = chart.json();
    let series = &chart["series"][0];
    let values: Vec<f64> = series["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let times: Vec<i64> = series["timestamps_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(
        values.len() <= 400 && values.len() > 100,
        "{} points",
        values.len()
    );
    assert!(values.contains(&1e6), "the spike is drawn");
    assert!(values.contains(&-5.0), "the recent point is drawn");
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(times[0], MONDAY * 1000);
    assert_eq!(series["tags"]["host"], "lab1");
    let too_many = app
        .get(
            &format!("/api/v1/experiments/{exp}/series?measure=volt&points=10000000"),
            &world.other_scientist,
        )
        .await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);

    let boxes = app
        .get(
            &format!("/api/v1/experiments/{exp}/boxplot"),
            &world.other_scientist,
        )
        .await
        .json();
    let watt_box = boxes["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["measure"] == "watt")
        .unwrap()
        .clone();
    assert_eq!(
        watt_box,
        json!({"measure": "watt", "count": 101, "min": 0.0, "p25": 25.0, "p50": 50.0, "p75": 75.0, "max": 100.0})
    );

    let latest = app
        .get(
            &format!("/api/v1/experiments/{exp}/latest"),
            &world.other_scientist,
        )
        .await
        .json();
    let by_type: BTreeMap<String, (String, f64)> = latest["latest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["measure_type"].as_str().unwrap().to_owned(),
                (
                    l["timestamp"].as_str().unwrap().to_owned(),
                    l["value"].as_f64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(by_type["volt"], (rfc3339(MONDAY + 30_000), -5.0));
    assert_eq!(by_type["watt"], (rfc3339(MONDAY + 100), 100.0));
}

#[tokio::test]
async fn the_live_stream_pushes_committed_measures_of_its_experiment_only() {
    let world = world().await;
    let app = &world.app;
    let (exp, vib) = (world.black_holes, world.vibrations);
    let watt = type_id(app, "watt").await;
    for (token, status) in [(&world.admin, 403), (&world.scientist, 403)] {
        let reply = app
            .get(&format!("/api/v1/experiments/{exp}/stream"), token)
            .await;
        assert_eq!(reply.status.as_u16(), status);
    }
    let response = app
        .client
        .get(app.url(&format!("/api/v1/experiments/{exp}/stream")))
        .bearer_auth(&world.other_scientist)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut response = response;
    // The stream announces itself before any measure comes.
    let opened = tokio::time::timeout(std::time::Duration::from_secs(5), response.chunk())
        .await
        .expect("the stream opens at once")
        .unwrap()
        .unwrap();
    assert_eq!(std::str::from_utf8(&opened).unwrap(), ": connected\n\n");
    // Another experiment's point, then ours: only ours arrives.
    app.state
        .measures
        .append(&[point(vib, watt, MONDAY, 1.0, "x")])
        .await
        .unwrap();
    app.state
        .measures
        .append(&[point(exp, watt, MONDAY, 42.5, "lab1")])
        .await
        .unwrap();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("an event within 10 s");
        text.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
    }
    assert!(text.starts_with("event: measure\n"), "{text}");
    let data: Value =
        serde_json::from_str(text.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(
        data,
        json!({"measure_type": "watt", "timestamp": rfc3339(MONDAY), "experiment": "black-holes", "value": 42.5, "tags": {"host": "lab1"}})
    );
}

#[tokio::test]
async fn admins_set_retention_and_zero_days_is_refused() {
    let world = world().await;
    let app = &world.app;
    let path = format!("/api/v1/experiments/{}/retention", world.vibrations);
    assert_eq!(
        app.get(&path, &world.admin).await.json(),
        json!({"days": null})
    );
    let set = app
        .call(
            Method::PUT,
            &path,
            Some(&world.admin),
            Some(&json!({"days": 30})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(
        app.get(&path, &world.admin).await.json(),
        json!({"days": 30})
    );
    let zero = app
        .call(
            Method::PUT,
            &path,
            Some(&world.admin),
            Some(&json!({"days": 0})),
        )
        .await;
    assert_eq!(
        zero.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        zero.text
    );
    let missing = app
        .call(
            Method::PUT,
            "/api/v1/experiments/999/retention",
            Some(&world.admin),
            Some(&json!({"days": 1})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn empty_ranges_and_a_single_point() {
    let world = world().await;
    let app = &world.app;
    let exp = world.black_holes;
    let base = format!(
        "/api/v1/experiments/{exp}/stats?measure=volt&statistics=count,mean,stddev,p50,first,last"
    );
    // No point at all: nothing to start from.
    let nothing = app.get(&base, &world.other_scientist).await.json();
    assert_eq!(nothing["from"], Value::Null);
    assert_eq!(nothing["buckets"], json!([]));
    // A range without points: no bucket, unless asked to fill.
    let range = format!(
        "{base}&from={}&to={}",
        rfc3339(MONDAY),
        rfc3339(MONDAY + 7200)
    );
    assert_eq!(
        app.get(&range, &world.other_scientist).await.json()["buckets"],
        json!([])
    );
    let filled = app
        .get(
            &format!("{range}&timeslice=hour&fill=null"),
            &world.other_scientist,
        )
        .await
        .json();
    assert_eq!(filled["buckets"].as_array().unwrap().len(), 2);
    assert_eq!(filled["buckets"][0]["count"], 0);
    // One point: its value everywhere, and no deviation.
    let volt = type_id(app, "volt").await;
    app.state
        .measures
        .append(&[point(exp, volt, MONDAY + 60, 231.5, "lab1")])
        .await
        .unwrap();
    let one = app.get(&range, &world.other_scientist).await.json();
    assert_eq!(
        one["buckets"],
        json!([{"start": rfc3339(MONDAY), "count": 1, "mean": 231.5, "stddev": null, "p50": 231.5, "first": 231.5, "last": 231.5}])
    );
}

/// Reads a live stream until an `end` event arrives (or `within` passes); returns its data.
async fn end_of_stream(response: &mut reqwest::Response, within: std::time::Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    let mut text = String::new();
    loop {
        if let Some(start) = text.find("event: end\n") {
            let rest = &text[start..];
            if let Some(line) = rest.lines().nth(1)
                && rest.contains("\n\n")
            {
                return serde_json::from_str(line.strip_prefix("data: ").unwrap()).unwrap();
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no end event within {within:?}: {text}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the stream closed without an end event: {text}"));
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn a_live_stream_ends_when_its_reader_signs_out_or_loses_the_experiment() {
    let world = world().await;
    let app = &world.app;
    let path = format!("/api/v1/experiments/{}/stream", world.vibrations);
    let open = |token: String| {
        let request = app.client.get(app.url(&path)).bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response
        }
    };
    // Signed out: the stream opened with that token ends, saying why.
    let token = app.token("phigg").await;
    let mut stream = open(token.clone()).await;
    let logout = app
        .call(Method::POST, "/api/v1/auth/logout", Some(&token), None)
        .await;
    assert!(logout.status.is_success(), "{}", logout.text);
    let end = end_of_stream(&mut stream, std::time::Duration::from_secs(10)).await;
    assert!(end["reason"].as_str().unwrap().contains("revoked"), "{end}");

    // Dissociated by an admin: the stream ends too.
    let token = app.token("phigg").await;
    let mut stream = open(token).await;
    app.state
        .meta
        .dissociate(world.vibrations, "S001")
        .await
        .unwrap();
    let end = end_of_stream(&mut stream, std::time::Duration::from_secs(10)).await;
    assert!(
        end["reason"].as_str().unwrap().contains("not associated"),
        "{end}"
    );
}

#[tokio::test]
async fn a_large_answer_arrives_whole_and_in_order() {
    let world = world().await;
    let app = &world.app;
    let exp = world.black_holes;
    let watt = type_id(app, "watt").await;
    app.state
        .measures
        .append(&[
            point(exp, watt, MONDAY, 1.0, "a"),
            point(exp, watt, MONDAY + 86_399, 2.0, "b"),
        ])
        .await
        .unwrap();
    // 1,440 minute buckets for each of two groups: written in slices of 1,000.
    let answer = app
        .get(
            &format!(
                "/api/v1/experiments/{exp}/stats?measure=watt&statistics=count,sum&timeslice=minute&group_by=tag:host&fill=zero&from={}&to={}",
                rfc3339(MONDAY),
                rfc3339(MONDAY + 86_400)
            ),
            &world.other_scientist,
        )
        .await
        .json();
    let buckets = answer["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 2 * 1440);
    assert_eq!(answer["measure"], "watt");
    let starts: Vec<&str> = buckets
        .iter()
        .map(|b| b["start"].as_str().unwrap())
        .collect();
    assert!(starts.windows(2).all(|pair| pair[0] <= pair[1]));
    assert_eq!(buckets[0]["group"], "a");
    assert_eq!(buckets[1]["group"], "b");
    let total: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 2);
}
