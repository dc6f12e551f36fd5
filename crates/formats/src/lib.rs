//! Decoders and encoders of measures, one module per wire format, all streaming: a decoder
//! reads from a `BufRead` and yields one record (or one error) at a time, so a 1 GB file
//! needs memory for one record, not for the file.
//!
//! Every bad record is reported with its [`Position`] (element index or line), the field at
//! fault and the reason; decoding goes on with the next record, so one bad record never
//! hides the good ones after it.
//!
//! | format | module | a record is |
//! |---|---|---|
//! | JSON: one object, an array, or NDJSON | [`json`] | an object `{"experiment","measure","value","timestamp"[,"timestamp_unit"][,"tags"]}` |
//! | txt | [`txt`] | a line `VALUE` (timestamped on arrival) or `TIMESTAMP VALUE` |
//! | CSV | [`csv`] | a row under a header naming `experiment,measure,timestamp,value`; other columns are tags |
//! | XML | [`xml`] | a `<measure>` element, fields as attributes or child elements |
//! | InfluxDB line protocol | [`line_protocol`] | a line; each field is one record (measurement = experiment, field key = measure) |
//! | Prometheus text 0.0.4, OpenMetrics | [`prometheus`] | a sample (metric name = measure, labels = tags; the experiment is given) |

use std::{collections::BTreeMap, fmt, io::BufRead, sync::Arc};

pub mod csv;
pub mod format;
pub mod json;
pub mod line_protocol;
pub mod prometheus;
pub mod timestamp;
pub mod txt;
pub mod xml;

pub use format::{DecodeOptions, Format, OptionsError, decoder, decoder_in};
pub use timestamp::TimeUnit;

/// One measure as sources send it: names, not ids. The names are shared: the records of one
/// body mostly repeat a few names, which a decoder allocates once (see [`Names`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Experiment name.
    pub experiment: Arc<str>,
    /// Measure type name.
    pub measure: Arc<str>,
    /// Nanoseconds since the Unix epoch (UTC).
    pub timestamp_ns: i64,
    /// The reading (finite).
    pub value: f64,
    /// Tags (`host`, `endpoint`, …).
    pub tags: BTreeMap<String, String>,
}

/// Where a bad record sits in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The n-th record (0-based) of a JSON array or XML document, or the n-th line's record
    /// of NDJSON counted from 0.
    Index(usize),
    /// A line, 1-based (txt, CSV, line protocol).
    Line(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Index(index) => write!(f, "record {index}"),
            Position::Line(line) => write!(f, "line {line}"),
        }
    }
}

/// A record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {}{reason}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct RecordError {
    /// Where it is.
    pub position: Position,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl RecordError {
    /// An error about a field.
    pub fn field(position: Position, field: &str, reason: impl Into<String>) -> Self {
        Self {
            position,
            field: Some(field.to_string()),
            reason: reason.into(),
        }
    }

    /// An error about the record as a whole.
    pub fn record(position: Position, reason: impl Into<String>) -> Self {
        Self {
            position,
            field: None,
            reason: reason.into(),
        }
    }

    /// The position as a plain number (index or line), for API answers.
    pub fn index(&self) -> usize {
        match self.position {
            Position::Index(index) | Position::Line(index) => index,
        }
    }
}

/// The names a decoder met last, shared by the records that repeat them.
#[derive(Debug, Default)]
pub(crate) struct Names {
    recent: Vec<Arc<str>>,
    /// The slot the next new name takes once `recent` is full.
    next: usize,
}

impl Names {
    /// Names kept: a body's experiments and measure types are usually fewer.
    const KEPT: usize = 16;

    /// `name`, shared with the last records that had it.
    pub(crate) fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(found) = self.recent.iter().find(|kept| ***kept == *name) {
            return Arc::clone(found);
        }
        let new: Arc<str> = Arc::from(name);
        if self.recent.len() < Self::KEPT {
            self.recent.push(Arc::clone(&new));
        } else {
            self.recent[self.next] = Arc::clone(&new);
            self.next = (self.next + 1) % Self::KEPT;
        }
        new
    }
}

/// What decoders yield.
pub type Decoded = Result<Record, RecordError>;

/// Most tags read from one CSV row (the server's own limit, `ingest.max_tags_per_point`, is
/// usually far lower); a row with more is refused before its tags are copied.
pub const MAX_TAGS_READ: usize = 1_000;

/// The earliest timestamp accepted: 1800-01-01T00:00:00Z, in nanoseconds.
pub const EARLIEST_TIMESTAMP_NS: i64 = -5_364_662_400_000_000_000;
/// The first timestamp refused at the other end: 2200-01-01T00:00:00Z, in nanoseconds. With
/// both bounds well inside what 64-bit nanoseconds hold, date arithmetic on stored points
/// (calendar slices, ranges) never comes near an overflow.
pub const END_OF_TIMESTAMPS_NS: i64 = 7_258_118_400_000_000_000;

/// Checks the parts every format shares: non-empty names, a finite value, a timestamp in
/// the accepted range.
pub(crate) fn check_record(record: Record, position: Position) -> Decoded {
    if !(EARLIEST_TIMESTAMP_NS..END_OF_TIMESTAMPS_NS).contains(&record.timestamp_ns) {
        return Err(RecordError::field(
            position,
            "timestamp",
            format!(
                "{} is outside the accepted range, 1800-01-01T00:00:00Z to 2200-01-01T00:00:00Z",
                timestamp::format_seconds(record.timestamp_ns)
            ),
        ));
    }
    if record.experiment.trim().is_empty() {
        return Err(RecordError::field(
            position,
            "experiment",
            "must not be empty",
        ));
    }
    if record.measure.trim().is_empty() {
        return Err(RecordError::field(position, "measure", "must not be empty"));
    }
    if !record.value.is_finite() {
        return Err(RecordError::field(
            position,
            "value",
            "must be a finite number",
        ));
    }
    Ok(record)
}

/// Parses a float the way every text format here writes one.
pub(crate) fn parse_value(text: &str, position: Position) -> Result<f64, RecordError> {
    let text = text.trim();
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(_) => Err(RecordError::field(
            position,
            "value",
            "must be a finite number",
        )),
        Err(_) => Err(RecordError::field(
            position,
            "value",
            format!("{text:?} is not a number"),
        )),
    }
}

/// The non-blank lines of a reader, without their line ends, each with its 1-based line number;
/// a line that cannot be read is reported at its number and reading goes on. Shared by the
/// line-oriented formats (NDJSON, txt, line protocol).
pub(crate) fn numbered_lines<R: BufRead>(
    mut reader: R,
) -> impl Iterator<Item = Result<(Position, Vec<u8>), RecordError>> {
    let mut line_number = 0;
    std::iter::from_fn(move || {
        loop {
            line_number += 1;
            let position = Position::Line(line_number);
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(err) => {
                    return Some(Err(RecordError::record(
                        position,
                        format!("cannot read: {err}"),
                    )));
                }
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            return Some(Ok((position, line)));
        }
    })
}

/// The non-blank lines of a body already in memory, borrowed (no copy per line), numbered as
/// [`numbered_lines`] numbers them.
pub(crate) fn slice_lines(
    body: &[u8],
) -> impl Iterator<Item = Result<(Position, &[u8]), RecordError>> {
    let mut rest = body;
    let mut line_number = 0;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            line_number += 1;
            let (mut line, after) = match memchr::memchr(b'\n', rest) {
                Some(end) => (&rest[..end], &rest[end + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = after;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            while let [head @ .., b'\r'] = line {
                line = head;
            }
            return Some(Ok((Position::Line(line_number), line)));
        }
        None
    })
}

/// A line as text, or an error at its position when it is not UTF-8.
pub(crate) fn line_text(position: Position, line: &[u8]) -> Result<&str, RecordError> {
    std::str::from_utf8(line)
        .map_err(|_| RecordError::record(position, "the line is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_share_one_allocation() {
        let mut names = Names::default();
        let first = names.get("device-vibrations");
        assert!(Arc::ptr_eq(&first, &names.get("device-vibrations")));
        // More distinct names than are kept: each still comes back right, the oldest ones
        // allocated again.
        for round in 0..3 {
            for i in 0..(Names::KEPT + 5) {
                assert_eq!(
                    &*names.get(&format!("type-{i}")),
                    format!("type-{i}"),
                    "{round}"
                );
            }
        }
        let body = b"{\"experiment\":\"e\",\"measure\":\"a\",\"value\":1,\"timestamp\":1}\n\
                     {\"experiment\":\"e\",\"measure\":\"b\",\"value\":2,\"timestamp\":1}\n\
                     {\"experiment\":\"e\",\"measure\":\"a\",\"value\":3,\"timestamp\":1}\n";
        let records: Vec<Record> = json::decode_lines_in(body, TimeUnit::Seconds)
            .map(|decoded| decoded.unwrap())
            .collect();
        assert!(Arc::ptr_eq(&records[0].experiment, &records[2].experiment));
        assert!(Arc::ptr_eq(&records[0].measure, &records[2].measure));
        assert_eq!(&*records[1].measure, "b");
    }
}
