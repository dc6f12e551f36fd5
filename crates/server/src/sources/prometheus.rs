//! Scraping a Prometheus text (0.0.4) or OpenMetrics page, as Prometheus does: one GET with
//! Prometheus' `Accept` header, the scrape's time on every sample that carries none.
//!
//! Labels are kept as scraped, like Prometheus' `honor_labels: true`; the only label MyMonit
//! adds is `instance` (the URL's `host:port`), and only to samples that have none, so that two
//! sources of one experiment do not write the same series. A sample with its own timestamp is
//! stored once however many scrapes serve it (the page repeats it until it changes).

use mymonit_formats::{
    Decoded,
    prometheus::{ExpositionOptions, Flavor, decode},
};
use mymonit_model::source::Source;

use super::{Fetched, Fetcher, SourceError, shown};

/// What Prometheus 2.x asks for: OpenMetrics first, then the text format.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The `host:port` of a URL, for the `instance` label.
fn instance(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else if url.starts_with("https://") {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    }
}

/// Scrapes a page and decodes it (a `None` filter keeps every metric); also returns the
/// scrape's time, which samples without their own carry.
async fn scrape(
    fetcher: &Fetcher,
    url: &str,
    secret: Option<&str>,
    experiment: &str,
    include: Option<&regex::Regex>,
) -> Result<(Vec<Decoded>, i64), SourceError> {
    let mut headers = vec![
        ("accept", ACCEPT.to_owned()),
        (
            "x-prometheus-scrape-timeout-seconds",
            fetcher.settings().fetch_timeout_secs.to_string(),
        ),
    ];
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        headers.push(("authorization", format!("Bearer {secret}")));
    }
    let started = mymonit_model::time::now_ns();
    let answer = fetcher
        .get(url, &headers, |status| match status {
            401 | 403 => ": the page refused the secret (sent as a Bearer token)".into(),
            404 => ": no metrics page there".into(),
            _ => String::new(),
        })
        .await?;
    let flavor = match Flavor::from_content_type(&answer.content_type) {
        Some(flavor) => flavor,
        // Exporters that say only `text/plain` speak 0.0.4.
        None if answer.content_type.is_empty() || answer.content_type.starts_with("text/plain") => {
            Flavor::Text
        }
        None => {
            return Err(SourceError::WrongKind(format!(
                "{} is not a Prometheus metrics page: its Content-Type is {:?}",
                shown(url),
                answer.content_type
            )));
        }
    };
    let instance = instance(url);
    let decoded: Vec<Decoded> = decode(
        &answer.body[..],
        ExpositionOptions {
            experiment: experiment.to_owned(),
            flavor,
            default_timestamp_ns: started,
        },
    )
    .filter(|item| match (item, include) {
        (Ok(record), Some(filter)) => filter.is_match(&record.measure),
        _ => true,
    })
    .map(|item| {
        item.map(|mut record| {
            record
                .tags
                .entry("instance".to_owned())
                .or_insert_with(|| instance.clone());
            record
        })
    })
    .collect();
    Ok((decoded, started))
}

/// Checks that `url` serves a metrics page with at least one sample that decodes.
pub async fn check(
    fetcher: &Fetcher,
    url: &str,
    secret: Option<&str>,
    include: Option<&regex::Regex>,
) -> Result<(), SourceError> {
    let (decoded, _) = scrape(fetcher, url, secret, "check", include).await?;
    if decoded.iter().any(Result::is_ok) {
        return Ok(());
    }
    let url = shown(url);
    Err(match decoded.iter().find_map(|item| item.as_ref().err()) {
        Some(err) => {
            SourceError::WrongKind(format!("{url} is not a Prometheus metrics page: {err}"))
        }
        None if include.is_some() => SourceError::WrongKind(format!(
            "{url} has no metric whose name the include filter matches"
        )),
        None => SourceError::WrongKind(format!("{url} serves no metric")),
    })
}

/// Scrapes a source once.
pub async fn fetch(
    fetcher: &Fetcher,
    source: &Source,
    secret: Option<&str>,
    experiment: &str,
) -> Result<Fetched, SourceError> {
    let include = match &source.include {
        Some(pattern) => Some(regex::Regex::new(pattern).map_err(|err| {
            SourceError::Refused(format!(
                "the include filter is not a regular expression: {err}"
            ))
        })?),
        None => None,
    };
    let (decoded, scraped_at) =
        scrape(fetcher, &source.url, secret, experiment, include.as_ref()).await?;
    let records = decoded
        .into_iter()
        .map(|item| {
            let key = match &item {
                // A sample stamped by the page is the same sample in every scrape serving it.
                Ok(record) if record.timestamp_ns != scraped_at => Some(sample_key(source, record)),
                _ => None,
            };
            (key, item)
        })
        .collect();
    Ok(Fetched {
        records,
        cursor: None,
        history_from: None,
        backlog_secs: 0,
    })
}

/// The key of a timestamped sample: its series and its time.
fn sample_key(source: &Source, record: &mymonit_formats::Record) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(record.measure.as_bytes());
    for (key, value) in &record.tags {
        context.update(&[0]);
        context.update(key.as_bytes());
        context.update(&[1]);
        context.update(value.as_bytes());
    }
    format!(
        "prom:{}:{}:{}",
        source.source_id,
        hex::encode(&context.finish().as_ref()[..16]),
        record.timestamp_ns
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_is_host_and_port() {
        assert_eq!(instance("http://127.0.0.1:9464/metrics"), "127.0.0.1:9464");
        assert_eq!(instance("http://exporter/metrics"), "exporter:80");
        assert_eq!(instance("https://exporter/metrics"), "exporter:443");
        assert_eq!(instance("http://[::1]:9100/metrics"), "[::1]:9100");
    }
}
