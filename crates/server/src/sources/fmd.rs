//! Flask-MonitoringDashboard 1.12–2.0's export: `get_json_details` (plain JSON: the
//! dashboard's version and its first request) and `get_json_data/FROM/TO` (every request
//! recorded with `FROM < time <= TO`, unix seconds, as a JWT signed HS256 with the dashboard's
//! `security_token`, whose claim `data` is a JSON string).
//!
//! The history is walked in windows from the first request. Each fetch also reads again the
//! last [`OVERLAP_SECS`] before its cursor, because a dashboard records a request under the
//! time it started, after it ended: a slow request appears behind the cursor. Rows read in
//! that band carry a key (their content and their rank among equal rows), so each is stored
//! once; two equal requests are two rows with two keys.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use mymonit_formats::{Position, Record, RecordError};
use mymonit_model::source::Source;
use serde::Deserialize;

use super::{Fetched, Fetcher, SourceError};

/// The measure type of the requests' execution times (milliseconds).
pub const MEASURE_TYPE: &str = "execution_time";

/// How far back each fetch reads again, in seconds: a request that took longer than this
/// and was recorded after the fetch that passed its start is not stored.
pub const OVERLAP_SECS: i64 = 600;

/// Smallest window a fetch shrinks to when an answer is too large.
const MIN_WINDOW_SECS: i64 = 60;

/// `get_json_details`.
#[derive(Debug, Deserialize)]
struct Details {
    #[serde(rename = "dashboard-version")]
    dashboard_version: String,
    /// Unix seconds of the first request; -1 when there is none.
    #[serde(rename = "first-request")]
    first_request: f64,
}

/// One recorded request of `get_json_data`.
#[derive(Debug, Deserialize)]
struct Call {
    endpoint: String,
    /// Milliseconds.
    execution_time: f64,
    #[serde(default)]
    group_by: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    /// Naive UTC: `2026-12-02 15:05:38.091206`, the fraction missing when it is zero.
    time: String,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Signed {
    data: String,
}

/// The dashboard's root, without a trailing slash.
fn root(url: &str) -> &str {
    url.trim_end_matches('/')
}

fn not_found_hint(url: &str) -> impl Fn(u16) -> String + '_ {
    move |status| match status {
        404 => format!(
            ": there is no Flask-MonitoringDashboard export at {url} (give the dashboard's \
             root, such as http://host:5000/dashboard; versions after 2.0 have no export)"
        ),
        _ => String::new(),
    }
}

async fn details(fetcher: &Fetcher, url: &str) -> Result<Details, SourceError> {
    let address = format!("{}/get_json_details", root(url));
    let answer = fetcher.get(&address, &[], not_found_hint(url)).await?;
    serde_json::from_slice(&answer.body).map_err(|_| {
        SourceError::WrongKind(format!(
            "{url} is not a Flask-MonitoringDashboard: {address} did not answer its details \
             (dashboard-version, first-request) but {:?}",
            excerpt(&answer.body)
        ))
    })
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned()
}

/// Reads `FROM < time <= TO` and checks its signature with `secret`.
async fn calls(
    fetcher: &Fetcher,
    url: &str,
    secret: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Call>, SourceError> {
    let address = format!("{}/get_json_data/{from}/{to}", root(url));
    let answer = fetcher.get(&address, &[], not_found_hint(url)).await?;
    let text = String::from_utf8_lossy(&answer.body);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    // The dashboard signs with no expiry, audience or issuer.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let signed = jsonwebtoken::decode::<Signed>(
        text.trim(),
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|err| match err.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => SourceError::Secret(format!(
            "the dashboard at {url} signs its export with another token: the secret must be \
             its security_token"
        )),
        _ => SourceError::WrongKind(format!(
            "{address} did not answer a signed Flask-MonitoringDashboard export ({err}): {:?}",
            excerpt(&answer.body)
        )),
    })?;
    serde_json::from_str(&signed.claims.data).map_err(|err| {
        SourceError::WrongKind(format!(
            "{address}: the export's rows are not Flask-MonitoringDashboard's: {err}"
        ))
    })
}

/// Checks that `url` is a dashboard with an export and that `secret` is its token.
pub async fn check(fetcher: &Fetcher, url: &str, secret: Option<&str>) -> Result<(), SourceError> {
    let secret = secret.filter(|s| !s.is_empty()).ok_or_else(|| {
        SourceError::Secret(
            "a Flask-MonitoringDashboard source needs the dashboard's security_token as its \
             secret"
                .into(),
        )
    })?;
    let found = details(fetcher, url).await?;
    tracing::debug!(version = %found.dashboard_version, "Flask-MonitoringDashboard found");
    // An empty window answers quickly and is signed all the same.
    let now = super::now_ms() / 1_000;
    calls(fetcher, url, secret, now, now).await?;
    Ok(())
}

/// Reads the next window of a dashboard's history (and the overlap behind it).
pub async fn fetch(
    fetcher: &Fetcher,
    source: &Source,
    secret: Option<&str>,
    experiment: &str,
) -> Result<Fetched, SourceError> {
    let secret = secret.ok_or_else(|| {
        SourceError::Secret("the source has no secret: set the dashboard's security_token".into())
    })?;
    let now = super::now_ms() / 1_000;
    let (cursor, history_from, first_load) = match source.cursor {
        Some(cursor) => (cursor, source.history_from, false),
        None => {
            let found = details(fetcher, &source.url).await?;
            if !found.first_request.is_finite() || found.first_request > (now + 86_400) as f64 {
                return Err(SourceError::WrongKind(format!(
                    "the dashboard says its first request was at {}, which is not a time",
                    found.first_request
                )));
            }
            let first = found.first_request.floor() as i64;
            if first < 0 {
                // Nothing recorded yet: start from now.
                (now - 1, None, true)
            } else {
                (first - 1, Some(first), true)
            }
        }
    };
    let mut window = fetcher.settings().history_window_secs.max(MIN_WINDOW_SECS);
    let (to, rows) = loop {
        let to = (cursor + window).min(now).max(cursor);
        let from = if first_load {
            cursor
        } else {
            cursor - OVERLAP_SECS
        };
        match calls(fetcher, &source.url, secret, from, to).await {
            // A busy dashboard's window can outgrow the answer limit: take a smaller one.
            Err(SourceError::TooLarge { .. }) if to - cursor > MIN_WINDOW_SECS => {
                window = ((to - cursor) / 2).max(MIN_WINDOW_SECS);
            }
            Err(err) => return Err(err),
            Ok(rows) => break (to, rows),
        }
    };
    let reread_until_ns = if first_load {
        i64::MIN
    } else {
        cursor * 1_000_000_000
    };
    let reread_from_ns = (to - OVERLAP_SECS) * 1_000_000_000;
    let mut ranks: HashMap<String, u32> = HashMap::new();
    let records = rows
        .into_iter()
        .enumerate()
        .map(|(index, call)| {
            let record = to_record(&call, experiment, index)?;
            let read_again =
                record.timestamp_ns <= reread_until_ns || record.timestamp_ns > reread_from_ns;
            let key = read_again.then(|| {
                let digest = row_digest(&call);
                let rank = ranks.entry(digest.clone()).or_default();
                *rank += 1;
                format!("fmd:{}:{digest}:{rank}", source.source_id)
            });
            Ok((key, Ok(record)))
        })
        .map(|item: Result<_, RecordError>| item.unwrap_or_else(|err| (None, Err(err))))
        .collect();
    Ok(Fetched {
        records,
        cursor: Some(to),
        history_from,
        backlog_secs: (now - to).max(0),
    })
}

/// A recorded request as a point of [`MEASURE_TYPE`] with tags `endpoint`, `ip`, `version`
/// and `group_by` (none when the dashboard says `None`).
fn to_record(call: &Call, experiment: &str, index: usize) -> Result<Record, RecordError> {
    let position = Position::Index(index);
    let timestamp_ns = parse_time(&call.time).ok_or_else(|| {
        RecordError::field(
            position,
            "time",
            format!(
                "{:?} is not a time such as 2026-12-02 15:05:38.091206",
                call.time
            ),
        )
    })?;
    if !call.execution_time.is_finite() {
        return Err(RecordError::field(
            position,
            "execution_time",
            "must be a finite number",
        ));
    }
    let mut tags = BTreeMap::new();
    let mut tag = |key: &str, value: Option<&str>| {
        if let Some(value) = value.filter(|v| !v.is_empty() && *v != "None") {
            tags.insert(key.to_owned(), value.to_owned());
        }
    };
    tag("endpoint", Some(&call.endpoint));
    tag("ip", call.ip.as_deref());
    tag("version", call.version.as_deref());
    tag("group_by", call.group_by.as_deref());
    Ok(Record {
        experiment: experiment.into(),
        measure: MEASURE_TYPE.into(),
        timestamp_ns,
        value: call.execution_time,
        tags,
    })
}

/// A naive UTC time as the dashboard writes it, with or without its fraction, as
/// nanoseconds since the epoch.
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()?;
    naive.and_utc().timestamp_nanos_opt()
}

/// The identity of a row's content (every field the export has: it has no row id).
fn row_digest(call: &Call) -> String {
    let fields = [
        call.endpoint.as_str(),
        &call.execution_time.to_bits().to_string(),
        call.group_by.as_deref().unwrap_or("\u{0}"),
        call.ip.as_deref().unwrap_or("\u{0}"),
        call.time.as_str(),
        call.version.as_deref().unwrap_or("\u{0}"),
    ];
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for field in fields {
        context.update(&(field.len() as u64).to_le_bytes());
        context.update(field.as_bytes());
    }
    hex::encode(&context.finish().as_ref()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(time: &str, group_by: &str) -> Call {
        Call {
            endpoint: "hello".into(),
            execution_time: 2.737,
            group_by: Some(group_by.into()),
            ip: Some("127.0.0.1".into()),
            time: time.into(),
            version: Some("1.0".into()),
        }
    }

    #[test]
    fn times_are_utc_with_or_without_microseconds() {
        assert_eq!(
            parse_time("2026-12-02 15:05:38.091206"),
            Some(1_796_223_938_091_206_000)
        );
        assert_eq!(
            parse_time("2026-12-02 15:05:38"),
            Some(1_796_223_938_000_000_000)
        );
        assert_eq!(
            parse_time("2026-12-02T15:05:38"),
            Some(1_796_223_938_000_000_000)
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn a_call_becomes_a_point_with_its_tags_and_none_is_no_tag() {
        let record = to_record(&call("2026-12-02 15:05:38", "None"), "lab", 0).unwrap();
        assert_eq!(&*record.measure, MEASURE_TYPE);
        assert_eq!(record.value, 2.737);
        assert_eq!(record.tags["endpoint"], "hello");
        assert_eq!(record.tags["ip"], "127.0.0.1");
        assert_eq!(record.tags["version"], "1.0");
        assert!(!record.tags.contains_key("group_by"));
        let grouped = to_record(&call("2026-12-02 15:05:38", "user-7"), "lab", 0).unwrap();
        assert_eq!(grouped.tags["group_by"], "user-7");
        let bad = to_record(&call("soon", "None"), "lab", 4).unwrap_err();
        assert!(bad.to_string().contains("record 4: time"), "{bad}");
    }

    #[test]
    fn equal_rows_have_one_digest_and_any_difference_another() {
        let a = call("2026-12-02 15:05:38", "None");
        assert_eq!(
            row_digest(&a),
            row_digest(&call("2026-12-02 15:05:38", "None"))
        );
        assert_ne!(
            row_digest(&a),
            row_digest(&call("2026-12-02 15:05:38.000001", "None"))
        );
        assert_ne!(
            row_digest(&a),
            row_digest(&call("2026-12-02 15:05:38", "x"))
        );
    }
}
