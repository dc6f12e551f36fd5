//! Prometheus' text exposition format (version 0.0.4) and OpenMetrics text (1.0.0), the pages
//! that exporters serve at `/metrics`. Each sample is one record: the metric name is the
//! measure type and the labels are tags, so a histogram stays its series (`_bucket{le=…}`,
//! `_sum`, `_count`) and a summary its quantiles.
//!
//! Samples without a timestamp take the scrape's time. A label with an empty value is no label,
//! as Prometheus reads it. `# HELP`, `# TYPE` and `# UNIT` lines are read past; OpenMetrics
//! exemplars (`… # {trace_id="…"} 1.0`) are dropped, and nothing may follow `# EOF`.

use std::{collections::BTreeMap, io::BufRead};

use crate::{Decoded, Position, Record, RecordError, check_record};

/// Which of the two text formats a page is in: they differ in their timestamps (0.0.4 counts
/// milliseconds, OpenMetrics seconds with a fraction) and in OpenMetrics' `# EOF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0` (or 0.0.1).
    OpenMetrics,
}

impl Flavor {
    /// The flavor a Content-Type names: `application/openmetrics-text`, or `text/plain` with
    /// a `version=0.0.4` parameter (plain `text/plain` is line protocol at MyMonit's ingest).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let mut parts = content_type.split(';').map(str::trim);
        let essence = parts.next().unwrap_or("").to_ascii_lowercase();
        match essence.as_str() {
            "application/openmetrics-text" => Some(Flavor::OpenMetrics),
            "text/plain" => parts
                .filter_map(|parameter| parameter.split_once('='))
                .any(|(key, value)| {
                    key.trim().eq_ignore_ascii_case("version") && value.trim() == "0.0.4"
                })
                .then_some(Flavor::Text),
            _ => None,
        }
    }
}

/// How to read one page.
#[derive(Debug, Clone)]
pub struct ExpositionOptions {
    /// The experiment every sample goes to.
    pub experiment: String,
    /// The text format.
    pub flavor: Flavor,
    /// The time of samples that carry none (the scrape's), in nanoseconds since the epoch.
    pub default_timestamp_ns: i64,
}

/// Decodes a page line by line; a bad line is one error and the next line is read.
pub fn decode<R: BufRead>(reader: R, options: ExpositionOptions) -> impl Iterator<Item = Decoded> {
    let mut lines = reader.split(b'\n').enumerate();
    let mut ended = false;
    std::iter::from_fn(move || {
        if ended {
            return None;
        }
        for (index, line) in lines.by_ref() {
            let position = Position::Line(index + 1);
            let line = match line {
                Ok(line) => line,
                Err(err) => {
                    ended = true;
                    return Some(Err(RecordError::record(
                        position,
                        format!("cannot read: {err}"),
                    )));
                }
            };
            let Ok(text) = std::str::from_utf8(&line) else {
                return Some(Err(RecordError::record(position, "not UTF-8")));
            };
            let text = text.strip_suffix('\r').unwrap_or(text);
            let trimmed = text.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                if options.flavor == Flavor::OpenMetrics && comment.trim() == "EOF" {
                    // Anything after the end marker is an error, reported once.
                    for (index, rest) in lines.by_ref() {
                        if rest
                            .as_deref()
                            .is_ok_and(|rest| rest.trim_ascii().is_empty())
                        {
                            continue;
                        }
                        ended = true;
                        return Some(Err(RecordError::record(
                            Position::Line(index + 1),
                            "data after # EOF",
                        )));
                    }
                    ended = true;
                    return None;
                }
                continue;
            }
            return Some(
                sample(text, options.flavor)
                    .map_err(|reason| RecordError::record(position, reason))
                    .and_then(|sample| {
                        check_record(
                            Record {
                                experiment: options.experiment.as_str().into(),
                                measure: sample.name.into(),
                                timestamp_ns: sample
                                    .timestamp_ns
                                    .unwrap_or(options.default_timestamp_ns),
                                value: sample.value,
                                tags: sample.labels,
                            },
                            position,
                        )
                    }),
            );
        }
        ended = true;
        None
    })
}

/// One sample line, read.
#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    timestamp_ns: Option<i64>,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Reads a bare name at the start of `rest`.
fn bare_name<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let mut chars = rest.char_indices();
    match chars.next() {
        Some((_, c)) if is_name_start(c) => {}
        _ => return None,
    }
    let end = chars
        .find(|(_, c)| !is_name_char(*c))
        .map_or(rest.len(), |(at, _)| at);
    let (name, tail) = rest.split_at(end);
    *rest = tail;
    Some(name)
}

/// Reads a double-quoted string with `\\`, `\"` and `\n` escapes at the start of `rest`.
fn quoted(rest: &mut &str) -> Result<String, String> {
    let Some(body) = rest.strip_prefix('"') else {
        return Err("expected a quoted string".into());
    };
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => {
                *rest = &body[at + 1..];
                return Ok(out);
            }
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                // Prometheus' own reader is as lenient with other escapes.
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("a quoted string is not closed".into())
}

fn skip_spaces(rest: &mut &str) {
    *rest = rest.trim_start_matches([' ', '\t']);
}

/// A label or metric name: bare, or quoted (Prometheus 3 allows any UTF-8 name quoted).
fn label_name(rest: &mut &str) -> Result<String, String> {
    if rest.starts_with('"') {
        return quoted(rest);
    }
    bare_name(rest)
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a label name at {:?}", excerpt(rest)))
}

fn excerpt(text: &str) -> String {
    text.chars().take(20).collect()
}

fn sample(line: &str, flavor: Flavor) -> Result<Sample, String> {
    let mut rest = line.trim_start_matches([' ', '\t']);
    let mut name = bare_name(&mut rest).map(str::to_owned);
    skip_spaces(&mut rest);
    let mut labels = BTreeMap::new();
    if let Some(inside) = rest.strip_prefix('{') {
        rest = inside;
        let mut first = true;
        loop {
            skip_spaces(&mut rest);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            if !first {
                let Some(after) = rest.strip_prefix(',') else {
                    return Err(format!(
                        "expected ',' or '}}' between labels at {:?}",
                        excerpt(rest)
                    ));
                };
                rest = after;
                skip_spaces(&mut rest);
                // A trailing comma before the brace is allowed.
                if let Some(after) = rest.strip_prefix('}') {
                    rest = after;
                    break;
                }
            }
            first = false;
            let key = label_name(&mut rest)?;
            skip_spaces(&mut rest);
            let Some(after) = rest.strip_prefix('=') else {
                // `{"metric.name", label="…"}`: a quoted name standing alone is the metric's.
                if name.is_none() && (rest.starts_with(',') || rest.starts_with('}')) {
                    name = Some(key);
                    continue;
                }
                return Err(format!("label {key:?} has no '=' and value"));
            };
            rest = after;
            skip_spaces(&mut rest);
            let value = quoted(&mut rest).map_err(|err| format!("label {key:?}: {err}"))?;
            if key == "__name__" {
                name = Some(value);
                continue;
            }
            if value.is_empty() {
                continue;
            }
            if labels.insert(key.clone(), value).is_some() {
                return Err(format!("label {key:?} appears twice"));
            }
        }
    }
    let name = name.ok_or_else(|| format!("expected a metric name at {:?}", excerpt(line)))?;
    // OpenMetrics exemplars follow ` # `.
    let rest = match rest.find(" # ") {
        Some(at) if flavor == Flavor::OpenMetrics => &rest[..at],
        _ => rest,
    };
    let mut words = rest.split_ascii_whitespace();
    let value_text = words
        .next()
        .ok_or_else(|| format!("metric {name:?} has no value"))?;
    let value = parse_float(value_text)
        .ok_or_else(|| format!("metric {name:?}: {value_text:?} is not a number"))?;
    let timestamp_ns = match words.next() {
        None => None,
        Some(text) => Some(timestamp(text, flavor).ok_or_else(|| {
            let unit = match flavor {
                Flavor::Text => "integer milliseconds",
                Flavor::OpenMetrics => "seconds",
            };
            format!("metric {name:?}: timestamp {text:?} is not {unit}")
        })?),
    };
    if let Some(extra) = words.next() {
        return Err(format!(
            "metric {name:?}: unexpected {extra:?} after the timestamp"
        ));
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ns,
    })
}

/// Go's float syntax as Prometheus writes it: `1.5`, `1e3`, `NaN`, `+Inf`, `-Inf`.
fn parse_float(text: &str) -> Option<f64> {
    let unsigned = text.trim_start_matches(['+', '-']);
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("nan") {
        let negative = text.starts_with('-');
        return Some(match (unsigned.eq_ignore_ascii_case("nan"), negative) {
            (true, _) => f64::NAN,
            (false, true) => f64::NEG_INFINITY,
            (false, false) => f64::INFINITY,
        });
    }
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    text.parse().ok()
}

fn timestamp(text: &str, flavor: Flavor) -> Option<i64> {
    match flavor {
        Flavor::Text => text.parse::<i64>().ok()?.checked_mul(1_000_000),
        Flavor::OpenMetrics => {
            // `1520879607.789` read as decimal digits: through a float it would be 788999936 ns.
            if let Some((whole, fraction)) = text.split_once('.').or(Some((text, "")))
                && let Ok(whole) = whole.parse::<i64>()
                && fraction.len() <= 9
                && fraction.bytes().all(|b| b.is_ascii_digit())
            {
                let digits: String = format!("{fraction:0<9}");
                let nanos: i64 = digits.parse().ok()?;
                let signed = if text.starts_with('-') { -nanos } else { nanos };
                return whole.checked_mul(1_000_000_000)?.checked_add(signed);
            }
            let seconds = parse_float(text).filter(|s| s.is_finite())?;
            let nanos = (seconds * 1e9).round();
            (nanos.abs() < 9.2e18).then_some(nanos as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, flavor: Flavor) -> Vec<Decoded> {
        decode(
            text.as_bytes(),
            ExpositionOptions {
                experiment: "lab".into(),
                flavor,
                default_timestamp_ns: 1_700_000_000_000_000_000,
            },
        )
        .collect()
    }

    #[test]
    fn a_prometheus_page_becomes_one_record_per_sample() {
        let page = "# HELP http_requests_total The total.\n\
            # TYPE http_requests_total counter\n\
            http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
            http_requests_total{method=\"post\",code=\"400\",} 3\n\
            \n\
            request_duration_seconds_bucket{le=\"0.05\"} 24054\n\
            request_duration_seconds_bucket{le=\"+Inf\"} 144320\n\
            request_duration_seconds_sum 53423\n\
            go_gc_duration_seconds{quantile=\"0.5\"} 1.5e-05\n\
            metric_without_timestamp_and_labels 12.47\n\
            escapes{path=\"C:\\\\dir\\\\\",text=\"say \\\"hi\\\"\\n\",empty=\"\"} -3\n";
        let records: Vec<Record> = read(page, Flavor::Text)
            .into_iter()
            .map(|d| d.unwrap())
            .collect();
        assert_eq!(records.len(), 8);
        assert_eq!(&*records[0].measure, "http_requests_total");
        assert_eq!(&*records[0].experiment, "lab");
        assert_eq!(records[0].value, 1027.0);
        assert_eq!(records[0].timestamp_ns, 1_395_066_363_000_000_000);
        assert_eq!(records[0].tags["method"], "post");
        assert_eq!(records[1].timestamp_ns, 1_700_000_000_000_000_000);
        assert_eq!(records[1].tags["code"], "400");
        assert_eq!(records[3].tags["le"], "+Inf");
        assert_eq!(records[5].value, 1.5e-5);
        assert!(records[6].tags.is_empty());
        assert_eq!(records[7].tags["path"], "C:\\dir\\");
        assert_eq!(records[7].tags["text"], "say \"hi\"\n");
        assert!(!records[7].tags.contains_key("empty"));
    }

    #[test]
    fn openmetrics_counts_seconds_drops_exemplars_and_ends_at_eof() {
        let page = "# TYPE foo counter\n\
            foo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
            foo_created 1520430000.123\n\
            {\"my.dotted.metric\",\"label.x\"=\"v\"} 2\n\
            # EOF\n";
        let decoded = read(page, Flavor::OpenMetrics);
        let records: Vec<&Record> = decoded.iter().map(|d| d.as_ref().unwrap()).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].timestamp_ns, 1_520_879_607_789_000_000);
        assert_eq!(records[0].value, 17.0);
        assert_eq!(&*records[2].measure, "my.dotted.metric");
        assert_eq!(records[2].tags["label.x"], "v");
        let after = read("a 1\n# EOF\nb 2\n", Flavor::OpenMetrics);
        assert_eq!(after.len(), 2);
        assert!(
            after[1]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("after # EOF")
        );
    }

    #[test]
    fn bad_lines_are_named_and_do_not_stop_the_page() {
        let page = "ok 1\n\
            bad{a=\"1\" 2\n\
            novalue\n\
            word{a=\"x\"} abc\n\
            twice{a=\"1\",a=\"2\"} 1\n\
            ts 1 1.5\n\
            nan NaN\n\
            inf +Inf\n\
            9starts 1\n\
            last 2\n";
        let decoded = read(page, Flavor::Text);
        let errors: Vec<String> = decoded
            .iter()
            .filter_map(|d| d.as_ref().err().map(ToString::to_string))
            .collect();
        assert_eq!(decoded.len(), 10);
        assert_eq!(errors.len(), 8, "{errors:?}");
        assert!(errors[0].starts_with("line 2: "), "{errors:?}");
        assert!(errors[1].contains("has no value"), "{errors:?}");
        assert!(errors[2].contains("\"abc\" is not a number"), "{errors:?}");
        assert!(errors[3].contains("appears twice"), "{errors:?}");
        assert!(errors[4].contains("integer milliseconds"), "{errors:?}");
        assert!(
            errors[5].contains("finite") || errors[5].contains("value"),
            "{errors:?}"
        );
        assert!(errors[7].contains("metric name"), "{errors:?}");
        assert_eq!(&*decoded[9].as_ref().unwrap().measure, "last");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Flavor::from_content_type("text/plain; version=0.0.4; charset=utf-8"),
            Some(Flavor::Text)
        );
        assert_eq!(
            Flavor::from_content_type("application/openmetrics-text; version=1.0.0"),
            Some(Flavor::OpenMetrics)
        );
        assert_eq!(Flavor::from_content_type("text/plain"), None);
        assert_eq!(Flavor::from_content_type("application/json"), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(text in "[a-z_{}=\",# .0-9+\\\n-]{0,120}") {
                for flavor in [Flavor::Text, Flavor::OpenMetrics] {
                    for record in read(&text, flavor).into_iter().flatten() {
                        prop_assert!(record.value.is_finite());
                    }
                }
            }

            #[test]
            fn written_samples_read_back(
                name in "[a-z_][a-z0-9_:]{0,12}",
                labels in proptest::collection::btree_map("[a-z_][a-z0-9_]{0,6}", "[ -~\n]{1,10}", 0..4),
                value in -1e12f64..1e12,
                millis in 0i64..4_000_000_000_000,
            ) {
                let escape = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let inside: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                let line = format!("{name}{{{}}} {value:?} {millis}\n", inside.join(","));
                let records = read(&line, Flavor::Text);
                prop_assert_eq!(records.len(), 1);
                let record = records[0].as_ref().map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&*record.measure, name.as_str());
                prop_assert_eq!(&record.tags, &labels);
                prop_assert_eq!(record.value, value);
                prop_assert_eq!(record.timestamp_ns, millis * 1_000_000);
            }
        }
    }
}
