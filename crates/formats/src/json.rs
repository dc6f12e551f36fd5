//! JSON: the original message `{"experiment": "device-vibrations", "measure": "hertz",
//! "value": 2.2, "timestamp": 1653040000}`, one object, an array of them, or newline-delimited
//! (NDJSON). Optional fields: `timestamp_unit` (`s`, `ms`, `us`, `ns`; numbers are seconds
//! otherwise, and may carry a fraction) and `tags` (an object of strings). `timestamp` may
//! also be an RFC 3339 string. Unknown fields are refused by name, so a typo is not lost.
//!
//! [`decode`] streams: it splits the top level into values without parsing them, and parses
//! one value at a time. [`decode_lines`] reads NDJSON line by line, so a broken line costs
//! only that line.

use std::{borrow::Cow, collections::BTreeMap, io::BufRead};

use serde::Deserialize;
use serde_json::{Map, Value, value::RawValue};

use crate::{
    Decoded, Names, Position, Record, RecordError, TimeUnit, check_record, numbered_lines,
    slice_lines, timestamp,
};

/// The message shape, read without building a JSON tree: the fast path. Anything it does not
/// take goes through [`record_from_value`], which says precisely what is wrong.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message<'a> {
    #[serde(borrow)]
    experiment: Cow<'a, str>,
    #[serde(borrow)]
    measure: Cow<'a, str>,
    value: f64,
    #[serde(borrow)]
    timestamp: &'a RawValue,
    #[serde(borrow, default)]
    timestamp_unit: Option<Cow<'a, str>>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

fn fast_record(
    bytes: &[u8],
    position: Position,
    default_unit: TimeUnit,
    names: &mut Names,
) -> Option<Decoded> {
    // Checked as UTF-8 once, so that the parser does not check each string again.
    let text = std::str::from_utf8(bytes).ok()?;
    let message: Message<'_> = serde_json::from_str(text).ok()?;
    let unit = match message.timestamp_unit {
        Some(unit) => unit.parse().ok()?,
        None => default_unit,
    };
    let raw = message.timestamp.get();
    let timestamp_ns = if raw.starts_with('"') {
        let text: Cow<'_, str> = serde_json::from_str(raw).ok()?;
        timestamp::from_text(&text, unit).ok()?
    } else {
        timestamp::from_text(raw, unit).ok()?
    };
    Some(check_record(
        Record {
            experiment: names.get(&message.experiment),
            measure: names.get(&message.measure),
            timestamp_ns,
            value: message.value,
            tags: message.tags.unwrap_or_default(),
        },
        position,
    ))
}

/// Decodes one JSON text (an element or a line) into a record.
fn decode_one(
    bytes: &[u8],
    position: Position,
    default_unit: TimeUnit,
    names: &mut Names,
) -> Decoded {
    if let Some(decoded) = fast_record(bytes, position, default_unit, names) {
        return decoded;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => record_from_value(value, position, default_unit),
        Err(err) => Err(RecordError::record(
            position,
            format!("malformed JSON: {err}"),
        )),
    }
}

/// Turns one parsed JSON value into a record.
pub fn record_from_value(value: Value, position: Position, default_unit: TimeUnit) -> Decoded {
    let Value::Object(mut object) = value else {
        return Err(RecordError::record(position, "expected a JSON object"));
    };
    let experiment = take_string(&mut object, "experiment", position)?;
    let measure = take_string(&mut object, "measure", position)?;
    let value = match object.remove("value") {
        Some(Value::Number(number)) => number
            .as_f64()
            .ok_or_else(|| RecordError::field(position, "value", "must be a number"))?,
        Some(other) => {
            return Err(RecordError::field(
                position,
                "value",
                format!("must be a number, not {other}"),
            ));
        }
        None => return Err(RecordError::field(position, "value", "missing")),
    };
    let unit = match object.remove("timestamp_unit") {
        None | Some(Value::Null) => default_unit,
        Some(Value::String(unit)) => unit
            .parse()
            .map_err(|err: String| RecordError::field(position, "timestamp_unit", err))?,
        Some(other) => {
            return Err(RecordError::field(
                position,
                "timestamp_unit",
                format!("must be a string, not {other}"),
            ));
        }
    };
    let timestamp_ns = match object.remove("timestamp") {
        // Through the number's shortest text, which is exact for integers and for the
        // fractions a float can hold (a float of nanoseconds would drift).
        Some(Value::Number(number)) => timestamp::from_text(&number.to_string(), unit)
            .map_err(|reason| RecordError::field(position, "timestamp", reason))?,
        Some(Value::String(text)) => timestamp::from_text(&text, unit)
            .map_err(|reason| RecordError::field(position, "timestamp", reason))?,
        Some(other) => {
            return Err(RecordError::field(
                position,
                "timestamp",
                format!("must be a number or an RFC 3339 string, not {other}"),
            ));
        }
        None => return Err(RecordError::field(position, "timestamp", "missing")),
    };
    let tags = match object.remove("tags") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(tags)) => tags
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(text) => Ok((key, text)),
                other => Err(RecordError::field(
                    position,
                    "tags",
                    format!("tag {key:?} must be a string, not {other}"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(RecordError::field(
                position,
                "tags",
                format!("must be an object of strings, not {other}"),
            ));
        }
    };
    if let Some(unknown) = object.keys().next() {
        return Err(RecordError::field(
            position,
            unknown,
            "unknown field (expected experiment, measure, value, timestamp, timestamp_unit, tags)",
        ));
    }
    check_record(
        Record {
            experiment: experiment.into(),
            measure: measure.into(),
            timestamp_ns,
            value,
            tags,
        },
        position,
    )
}

fn take_string(
    object: &mut Map<String, Value>,
    field: &str,
    position: Position,
) -> Result<String, RecordError> {
    match object.remove(field) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(RecordError::field(
            position,
            field,
            format!("must be a string, not {other}"),
        )),
        None => Err(RecordError::field(position, field, "missing")),
    }
}

/// Decodes one object, an array, or a sequence of objects (NDJSON or concatenated), streaming.
/// Positions are record indexes from 0.
pub fn decode<R: BufRead>(reader: R, default_unit: TimeUnit) -> impl Iterator<Item = Decoded> {
    let mut splitter = Splitter::new(reader);
    let mut index = 0;
    let mut names = Names::default();
    std::iter::from_fn(move || {
        let element = splitter.next_value()?;
        let position = Position::Index(index);
        index += 1;
        Some(match element {
            Ok(bytes) => decode_one(&bytes, position, default_unit, &mut names),
            Err(reason) => Err(RecordError::record(position, reason)),
        })
    })
}

/// Decodes NDJSON line by line; a malformed line costs only itself. Positions are lines from 1;
/// blank lines are skipped.
pub fn decode_lines<R: BufRead>(
    reader: R,
    default_unit: TimeUnit,
) -> impl Iterator<Item = Decoded> {
    let mut names = Names::default();
    numbered_lines(reader).map(move |line| {
        line.and_then(|(position, line)| decode_one(&line, position, default_unit, &mut names))
    })
}

/// Decodes NDJSON already in memory, as [`decode_lines`] does, without copying each line.
pub fn decode_lines_in(body: &[u8], default_unit: TimeUnit) -> impl Iterator<Item = Decoded> + '_ {
    let mut names = Names::default();
    slice_lines(body).map(move |line| {
        line.and_then(|(position, line)| decode_one(line, position, default_unit, &mut names))
    })
}

/// Writes records as NDJSON in the original message shape (integer seconds, or nanoseconds
/// with `"timestamp_unit": "ns"` when there is a fraction; tags when there are any).
pub fn encode<W: std::io::Write>(records: &[Record], mut out: W) -> std::io::Result<()> {
    for record in records {
        let mut object = Map::new();
        object.insert("experiment".into(), record.experiment.as_ref().into());
        object.insert("measure".into(), record.measure.as_ref().into());
        object.insert("value".into(), record.value.into());
        // Whole seconds as the original wrote them; otherwise integer nanoseconds, since a
        // fractional JSON number is read as a float and would lose them.
        if record.timestamp_ns % 1_000_000_000 == 0 {
            object.insert(
                "timestamp".into(),
                (record.timestamp_ns / 1_000_000_000).into(),
            );
        } else {
            object.insert("timestamp".into(), record.timestamp_ns.into());
            object.insert("timestamp_unit".into(), "ns".into());
        }
        if !record.tags.is_empty() {
            object.insert(
                "tags".into(),
                serde_json::to_value(&record.tags).unwrap_or_default(),
            );
        }
        serde_json::to_writer(&mut out, &object)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing read yet.
    Start,
    /// Inside a top-level array; `expect_comma` after an element.
    Array { expect_comma: bool },
    /// Top-level values one after another (one object, NDJSON, concatenated).
    Sequence,
    /// After the closing `]`: only whitespace may follow.
    Done,
    /// After an unrecoverable error: nothing more is read.
    Failed,
}

/// Splits the top level of a JSON text into its values without parsing them: a value's bytes
/// are kept only until it is parsed.
struct Splitter<R> {
    reader: R,
    mode: Mode,
}

impl<R: BufRead> Splitter<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            mode: Mode::Start,
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, String> {
        self.reader
            .fill_buf()
            .map(|buffer| buffer.first().copied())
            .map_err(|err| format!("cannot read: {err}"))
    }

    fn fail(&mut self, reason: impl Into<String>) -> Option<Result<Vec<u8>, String>> {
        self.mode = Mode::Failed;
        Some(Err(reason.into()))
    }

    fn next_value(&mut self) -> Option<Result<Vec<u8>, String>> {
        if self.mode == Mode::Failed {
            return None;
        }
        loop {
            let byte = match self.peek() {
                Ok(Some(byte)) => byte,
                Ok(None) => {
                    return match self.mode {
                        Mode::Array { .. } => {
                            self.fail("unexpected end of input: the array is not closed with ]")
                        }
                        _ => None,
                    };
                }
                Err(reason) => return self.fail(reason),
            };
            match (self.mode, byte) {
                (_, byte) if byte.is_ascii_whitespace() => self.reader.consume(1),
                (Mode::Start, b'[') => {
                    self.reader.consume(1);
                    self.mode = Mode::Array {
                        expect_comma: false,
                    };
                }
                (Mode::Start, _) => self.mode = Mode::Sequence,
                (Mode::Array { .. }, b']') => {
                    self.reader.consume(1);
                    self.mode = Mode::Done;
                }
                (Mode::Array { expect_comma: true }, b',') => {
                    self.reader.consume(1);
                    self.mode = Mode::Array {
                        expect_comma: false,
                    };
                }
                (Mode::Array { expect_comma: true }, other) => {
                    return self.fail(format!(
                        "expected , or ] between array elements, found {:?}",
                        other as char
                    ));
                }
                (Mode::Done, _) => {
                    return self.fail("unexpected data after the end of the JSON text");
                }
                (
                    Mode::Array {
                        expect_comma: false,
                    },
                    _,
                )
                | (Mode::Sequence, _) => break,
                (Mode::Failed, _) => return None,
            }
        }
        let value = self.capture();
        if let Mode::Array { .. } = self.mode {
            self.mode = Mode::Array { expect_comma: true };
        }
        match value {
            Ok(bytes) => Some(Ok(bytes)),
            Err(reason) => self.fail(reason),
        }
    }

    /// Reads one value's bytes: a container up to its matching close, a string up to its
    /// closing quote, a scalar up to the next delimiter.
    fn capture(&mut self) -> Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let buffer = self
                .reader
                .fill_buf()
                .map_err(|err| format!("cannot read: {err}"))?;
            if buffer.is_empty() {
                if depth == 0 && !in_string && !bytes.is_empty() {
                    return Ok(bytes);
                }
                return Err("unexpected end of input inside a value".into());
            }
            let mut used = 0;
            let mut complete = false;
            for &byte in buffer {
                if in_string {
                    used += 1;
                    if escaped {
                        escaped = false;
                    } else if byte == b'\\' {
                        escaped = true;
                    } else if byte == b'"' {
                        in_string = false;
                        if depth == 0 {
                            complete = true;
                            break;
                        }
                    }
                    continue;
                }
                match byte {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth == 0 => {
                        complete = true;
                        break;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            used += 1;
                            complete = true;
                            break;
                        }
                    }
                    b',' if depth == 0 => {
                        complete = true;
                        break;
                    }
                    byte if depth == 0 && byte.is_ascii_whitespace() => {
                        complete = true;
                        break;
                    }
                    _ => {}
                }
                used += 1;
            }
            if complete && used == 0 && bytes.is_empty() {
                let unexpected = buffer[0] as char;
                return Err(format!(
                    "unexpected {unexpected:?} where a value should start"
                ));
            }
            bytes.extend_from_slice(&buffer[..used]);
            self.reader.consume(used);
            if complete {
                return Ok(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests;
