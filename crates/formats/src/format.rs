//! Choosing a decoder: the formats by name and media type, and one entry point that turns a
//! reader and [`DecodeOptions`] into a stream of records, for every caller (HTTP ingest, the
//! adapter).

use std::io::BufRead;

use crate::{Decoded, TimeUnit, csv, json, line_protocol, prometheus, txt, xml};

/// A wire format sources may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One object, an array or concatenated objects.
    Json,
    /// One object per line.
    Ndjson,
    /// CSV with a header.
    Csv,
    /// `<measure>` elements.
    Xml,
    /// InfluxDB line protocol.
    LineProtocol,
    /// One number per line (or `TIMESTAMP VALUE`).
    Txt,
    /// Prometheus' text exposition format 0.0.4 (`text/plain; version=0.0.4`).
    Prometheus,
    /// OpenMetrics text (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// The format a Content-Type names.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match prometheus::Flavor::from_content_type(content_type) {
            Some(prometheus::Flavor::Text) => return Some(Format::Prometheus),
            Some(prometheus::Flavor::OpenMetrics) => return Some(Format::OpenMetrics),
            None => {}
        }
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Format::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/json-seq" => Some(Format::Ndjson),
            "text/csv" => Some(Format::Csv),
            "application/xml" | "text/xml" => Some(Format::Xml),
            "text/plain" => Some(Format::LineProtocol),
            _ => None,
        }
    }

    /// The format a name names (`json`, `ndjson`, `csv`, `xml`, `lp`, `txt`, `prometheus`,
    /// `openmetrics`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Format::Json),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "csv" => Some(Format::Csv),
            "xml" => Some(Format::Xml),
            "lp" | "line-protocol" | "influx" => Some(Format::LineProtocol),
            "txt" | "text" => Some(Format::Txt),
            "prometheus" | "prom" => Some(Format::Prometheus),
            "openmetrics" => Some(Format::OpenMetrics),
            _ => None,
        }
    }

    /// Unit of numeric timestamps when the request does not say: nanoseconds for line
    /// protocol (as InfluxDB), seconds (the original's) for the others.
    pub fn default_unit(self) -> TimeUnit {
        match self {
            Format::LineProtocol => TimeUnit::Nanos,
            _ => TimeUnit::Seconds,
        }
    }
}

/// How to read one body.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// The format.
    pub format: Format,
    /// Unit of numeric timestamps.
    pub unit: TimeUnit,
    /// Default or fixed experiment (txt, CSV without the column).
    pub experiment: Option<String>,
    /// Default or fixed measure type (txt, CSV without the column).
    pub measure: Option<String>,
    /// CSV delimiter.
    pub delimiter: Option<u8>,
}

/// Options that do not fit the chosen format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// txt lines carry only values (and maybe times): the experiment and measure type must be
    /// given.
    #[error("txt input needs an experiment and a measure type")]
    TxtNeedsNames,
    /// A Prometheus or OpenMetrics page names metrics, not the experiment they belong to.
    #[error("a Prometheus or OpenMetrics page needs an experiment")]
    ExpositionNeedsExperiment,
}

/// The decoder for `options.format` over a body already in memory: as [`decoder`], with the
/// line formats reading their lines in place instead of copying each.
pub fn decoder_in<'a>(
    body: &'a [u8],
    options: &DecodeOptions,
    now: fn() -> i64,
) -> Result<Box<dyn Iterator<Item = Decoded> + Send + 'a>, OptionsError> {
    Ok(match options.format {
        Format::Ndjson => Box::new(json::decode_lines_in(body, options.unit)),
        Format::LineProtocol => Box::new(line_protocol::decode_in(body, options.unit, now)),
        _ => decoder(body, options, now)?,
    })
}

/// The decoder for `options.format` over `reader`; `now` timestamps records that carry no
/// time (txt values, line protocol without a timestamp) on arrival.
pub fn decoder<'a, R: BufRead + Send + 'a>(
    reader: R,
    options: &DecodeOptions,
    now: fn() -> i64,
) -> Result<Box<dyn Iterator<Item = Decoded> + Send + 'a>, OptionsError> {
    let unit = options.unit;
    Ok(match options.format {
        Format::Json => Box::new(json::decode(reader, unit)),
        Format::Ndjson => Box::new(json::decode_lines(reader, unit)),
        Format::Csv => Box::new(csv::decode(
            reader,
            csv::CsvOptions {
                delimiter: options.delimiter,
                unit,
                experiment: options.experiment.clone(),
                measure: options.measure.clone(),
            },
        )),
        Format::Xml => Box::new(xml::decode(reader, unit)),
        Format::LineProtocol => Box::new(line_protocol::decode(reader, unit, now)),
        Format::Txt => {
            let (Some(experiment), Some(measure)) =
                (options.experiment.clone(), options.measure.clone())
            else {
                return Err(OptionsError::TxtNeedsNames);
            };
            Box::new(txt::decode(
                reader,
                txt::TxtOptions {
                    experiment,
                    measure,
                    unit,
                },
                now,
            ))
        }
        Format::Prometheus | Format::OpenMetrics => {
            let experiment = options
                .experiment
                .clone()
                .ok_or(OptionsError::ExpositionNeedsExperiment)?;
            let flavor = if options.format == Format::Prometheus {
                prometheus::Flavor::Text
            } else {
                prometheus::Flavor::OpenMetrics
            };
            Box::new(prometheus::decode(
                reader,
                prometheus::ExpositionOptions {
                    experiment,
                    flavor,
                    default_timestamp_ns: now(),
                },
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_names_pick_formats() {
        assert_eq!(
            Format::from_content_type("application/json; charset=utf-8"),
            Some(Format::Json)
        );
        assert_eq!(
            Format::from_content_type("application/x-ndjson"),
            Some(Format::Ndjson)
        );
        assert_eq!(Format::from_content_type("text/csv"), Some(Format::Csv));
        assert_eq!(Format::from_content_type("TEXT/XML"), Some(Format::Xml));
        assert_eq!(
            Format::from_content_type("text/plain"),
            Some(Format::LineProtocol)
        );
        assert_eq!(Format::from_content_type("image/png"), None);
        assert_eq!(
            Format::from_content_type("text/plain; version=0.0.4"),
            Some(Format::Prometheus)
        );
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0"),
            Some(Format::OpenMetrics)
        );
        assert_eq!(Format::from_name("lp"), Some(Format::LineProtocol));
        assert_eq!(Format::from_name("txt"), Some(Format::Txt));
        assert_eq!(Format::LineProtocol.default_unit(), TimeUnit::Nanos);
        assert_eq!(Format::Json.default_unit(), TimeUnit::Seconds);
    }

    #[test]
    fn txt_needs_names_and_the_others_decode() {
        let options = |format| DecodeOptions {
            format,
            unit: format.default_unit(),
            experiment: None,
            measure: None,
            delimiter: None,
        };
        assert_eq!(
            decoder(&b"1\n"[..], &options(Format::Txt), || 0).err(),
            Some(OptionsError::TxtNeedsNames)
        );
        let lp: Vec<Decoded> = decoder(&b"e m=1 5\n"[..], &options(Format::LineProtocol), || 0)
            .unwrap()
            .collect();
        assert_eq!(lp[0].as_ref().unwrap().timestamp_ns, 5);
    }
}
