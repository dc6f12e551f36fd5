//! InfluxDB line protocol, so Telegraf and Influx clients can write to MyMonit:
//! `measurement[,tag=value…] field=value[,field=value…] [timestamp]`. The measurement is the
//! experiment and each numeric field one record whose measure type is the field key
//! (`device-vibrations,host=lab1 hertz=2.2,volt=230 1653040000000000000`). Floats, integers
//! (`12i`) and unsigned integers (`12u`) are accepted; string and boolean fields are refused
//! by name. Timestamps count [`TimeUnit`]s (nanoseconds unless the request says otherwise,
//! as in InfluxDB); a line without one takes the arrival time. Backslash escapes commas,
//! spaces and `=` in names, tags and field keys.

use std::{borrow::Cow, collections::BTreeMap, io::BufRead, sync::Arc};

use crate::{
    Decoded, Names, Position, Record, RecordError, TimeUnit, check_record, line_text,
    numbered_lines, slice_lines,
};

/// Decodes lines; `now` gives the arrival time (nanoseconds) of lines without a timestamp.
/// One line yields one item per field.
pub fn decode<R: BufRead, N: FnMut() -> i64>(
    reader: R,
    unit: TimeUnit,
    now: N,
) -> impl Iterator<Item = Decoded> {
    decode_mapped(reader, unit.nanos(), now, Mapping::MeasurementIsExperiment)
}

/// The key of the tag that carries an InfluxDB field's key, in InfluxDB's mapping.
pub const FIELD_TAG: &str = "_field";

/// The field whose points carry no [`FIELD_TAG`] (MyMonit's own measures read back under it).
pub const VALUE_FIELD: &str = "value";

/// Decodes lines as InfluxDB's own API reads them, for the experiment `database`: the
/// measurement is the measure type, and a field's key becomes the tag [`FIELD_TAG`] unless it
/// is [`VALUE_FIELD`] (`cpu,host=a usage_user=1` is a point of type `cpu` with tags
/// `{host=a, _field=usage_user}`). Booleans read as 1 and 0. Timestamps count
/// `nanos_per_unit` nanoseconds (InfluxDB's precisions go up to hours).
pub fn decode_influx<R: BufRead, N: FnMut() -> i64>(
    reader: R,
    nanos_per_unit: i64,
    now: N,
    database: String,
) -> impl Iterator<Item = Decoded> {
    decode_mapped(
        reader,
        nanos_per_unit,
        now,
        Mapping::Influx {
            database: database.into(),
        },
    )
}

/// How a line's parts become records.
#[derive(Debug, Clone)]
enum Mapping {
    /// MyMonit's own: measurement = experiment, field key = measure type.
    MeasurementIsExperiment,
    /// InfluxDB's: the database is the experiment, measurement = measure type, field key = tag.
    Influx { database: Arc<str> },
}

fn decode_mapped<R: BufRead, N: FnMut() -> i64>(
    reader: R,
    nanos_per_unit: i64,
    now: N,
    mapping: Mapping,
) -> impl Iterator<Item = Decoded> {
    map_lines(numbered_lines(reader), nanos_per_unit, now, mapping)
}

/// Decodes lines already in memory, as [`decode`] does, without copying each line.
pub fn decode_in<'a, N: FnMut() -> i64 + 'a>(
    body: &'a [u8],
    unit: TimeUnit,
    now: N,
) -> impl Iterator<Item = Decoded> + 'a {
    map_lines(
        slice_lines(body),
        unit.nanos(),
        now,
        Mapping::MeasurementIsExperiment,
    )
}

/// Decodes lines already in memory, as [`decode_influx`] does, without copying each line.
pub fn decode_influx_in<'a, N: FnMut() -> i64 + 'a>(
    body: &'a [u8],
    nanos_per_unit: i64,
    now: N,
    database: String,
) -> impl Iterator<Item = Decoded> + 'a {
    map_lines(
        slice_lines(body),
        nanos_per_unit,
        now,
        Mapping::Influx {
            database: database.into(),
        },
    )
}

fn map_lines<L: AsRef<[u8]>, N: FnMut() -> i64>(
    lines: impl Iterator<Item = Result<(Position, L), RecordError>>,
    nanos_per_unit: i64,
    mut now: N,
    mapping: Mapping,
) -> impl Iterator<Item = Decoded> {
    let mut names = Names::default();
    lines.flat_map(move |line| {
        let items = line.and_then(|(position, line)| {
            let text = line_text(position, line.as_ref())?;
            if text.trim_start().starts_with('#') {
                return Ok(Vec::new());
            }
            decode_line(
                text,
                position,
                nanos_per_unit,
                &mut now,
                &mapping,
                &mut names,
            )
        });
        match items {
            Ok(items) => items,
            Err(err) => vec![Err(err)],
        }
    })
}

/// The ASCII bytes that end a part of a line, in a table (a line is scanned byte by byte).
struct Stops([bool; 128]);

impl Stops {
    const fn of(bytes: &[u8]) -> Self {
        let mut table = [false; 128];
        let mut index = 0;
        while index < bytes.len() {
            table[bytes[index] as usize] = true;
            index += 1;
        }
        Self(table)
    }

    fn contains(&self, c: char) -> bool {
        c.is_ascii() && self.0[c as usize]
    }
}

/// What ends a measurement, a tag value: a comma or a space.
const END_OF_NAME: Stops = Stops::of(b", ");
/// What ends a tag or field key: `=`, or (a mistake) a space or comma.
const END_OF_KEY: Stops = Stops::of(b"= ,");

/// Reads up to an unescaped byte of `stops`; returns the unescaped text and the stop found.
fn take_until<'a>(rest: &mut &'a str, stops: &Stops) -> (Cow<'a, str>, Option<char>) {
    // Most names hold no backslash: borrowed as they are.
    let text: &'a str = rest;
    match text
        .bytes()
        .position(|b| b == b'\\' || stops.contains(char::from(b)))
    {
        None => {
            *rest = "";
            return (Cow::Borrowed(text), None);
        }
        Some(index) if text.as_bytes()[index] != b'\\' => {
            let stop = char::from(text.as_bytes()[index]);
            *rest = &text[index + 1..];
            return (Cow::Borrowed(&text[..index]), Some(stop));
        }
        Some(_) => {}
    }
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((index, c)) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some((_, escaped)) => out.push(escaped),
                None => out.push('\\'),
            }
            continue;
        }
        if stops.contains(c) {
            *rest = &rest[index + c.len_utf8()..];
            return (Cow::Owned(out), Some(c));
        }
        out.push(c);
    }
    *rest = "";
    (Cow::Owned(out), None)
}

/// Reads a field value: the number or why it is refused, and the unescaped stop after it.
fn field_value(rest: &mut &str, booleans: bool) -> (Result<f64, String>, Option<char>) {
    let take_stop = |rest: &mut &str| {
        let stop = rest.chars().next();
        *rest = &rest[stop.map_or(0, char::len_utf8)..];
        stop
    };
    if let Some(after_quote) = rest.strip_prefix('"') {
        // A string field: skip it whole (escaped quotes included), then refuse it.
        let mut escaped = false;
        let mut end = None;
        for (index, c) in after_quote.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(index);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            *rest = "";
            return (Err("unterminated string field".into()), None);
        };
        *rest = &after_quote[end + 1..];
        let stop = take_stop(rest);
        return (
            Err("string fields are not measures: send a number".into()),
            stop,
        );
    }
    let end = rest.find([',', ' ']).unwrap_or(rest.len());
    let text = &rest[..end];
    *rest = &rest[end..];
    let stop = take_stop(rest);
    let number = text.strip_suffix(['i', 'u']).unwrap_or(text);
    let value = match number.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ if booleans && matches!(text, "t" | "T" | "true" | "True" | "TRUE") => Ok(1.0),
        _ if booleans && matches!(text, "f" | "F" | "false" | "False" | "FALSE") => Ok(0.0),
        _ if matches!(
            text,
            "t" | "T" | "true" | "True" | "TRUE" | "f" | "F" | "false" | "False" | "FALSE"
        ) =>
        {
            Err("boolean fields are not measures: send a number".into())
        }
        _ => Err(format!("{text:?} is not a number")),
    };
    (value, stop)
}

fn decode_line(
    text: &str,
    position: Position,
    nanos_per_unit: i64,
    now: &mut impl FnMut() -> i64,
    mapping: &Mapping,
    names: &mut Names,
) -> Result<Vec<Decoded>, RecordError> {
    let mut rest = text;
    let (experiment, mut stop) = take_until(&mut rest, &END_OF_NAME);
    let mut tags = BTreeMap::new();
    while stop == Some(',') {
        let (key, equals) = take_until(&mut rest, &END_OF_KEY);
        if equals != Some('=') {
            return Err(RecordError::field(
                position,
                "tags",
                format!("tag {key:?} has no value"),
            ));
        }
        let (value, next) = take_until(&mut rest, &END_OF_NAME);
        if key.is_empty() || value.is_empty() {
            return Err(RecordError::field(
                position,
                "tags",
                "empty tag key or value",
            ));
        }
        tags.insert(key.into_owned(), value.into_owned());
        stop = next;
    }
    if stop != Some(' ') {
        return Err(RecordError::record(
            position,
            "expected MEASUREMENT[,TAGS] FIELDS [TIMESTAMP]: no fields",
        ));
    }
    rest = rest.trim_start_matches(' ');
    let mut fields: Vec<(Cow<'_, str>, Result<f64, String>)> = Vec::new();
    loop {
        let (key, equals) = take_until(&mut rest, &END_OF_KEY);
        if equals != Some('=') || key.is_empty() {
            return Err(RecordError::record(
                position,
                format!("field {key:?} has no value"),
            ));
        }
        let (value, stop) = field_value(&mut rest, matches!(mapping, Mapping::Influx { .. }));
        fields.push((key, value));
        if stop != Some(',') {
            break;
        }
    }
    let timestamp_text = rest.trim();
    let timestamp_ns = if timestamp_text.is_empty() {
        now()
    } else {
        let count: i64 = timestamp_text.parse().map_err(|_| {
            RecordError::field(
                position,
                "timestamp",
                format!("{timestamp_text:?} is not an integer"),
            )
        })?;
        count.checked_mul(nanos_per_unit).ok_or_else(|| {
            RecordError::field(position, "timestamp", format!("{count} is out of range"))
        })?
    };
    if let Mapping::Influx { .. } = mapping
        && tags.contains_key(FIELD_TAG)
    {
        return Err(RecordError::field(
            position,
            "tags",
            format!("the tag key {FIELD_TAG} is reserved: it carries the field's key"),
        ));
    }
    let experiment = names.get(&experiment);
    Ok(fields
        .into_iter()
        .map(|(field, value)| {
            let value = value.map_err(|reason| RecordError::field(position, &field, reason))?;
            let record = match mapping {
                Mapping::MeasurementIsExperiment => Record {
                    experiment: Arc::clone(&experiment),
                    measure: names.get(&field),
                    timestamp_ns,
                    value,
                    tags: tags.clone(),
                },
                Mapping::Influx { database } => {
                    let mut tags = tags.clone();
                    if field != VALUE_FIELD {
                        tags.insert(FIELD_TAG.to_owned(), field.into_owned());
                    }
                    Record {
                        experiment: Arc::clone(database),
                        measure: Arc::clone(&experiment),
                        timestamp_ns,
                        value,
                        tags,
                    }
                }
            };
            check_record(record, position)
        })
        .collect())
}

fn escape(text: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' || special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Writes one line per record, timestamps in nanoseconds.
pub fn encode<W: std::io::Write>(records: &[Record], mut out: W) -> std::io::Result<()> {
    for record in records {
        write!(out, "{}", escape(&record.experiment, &[',', ' ']))?;
        for (key, value) in &record.tags {
            write!(
                out,
                ",{}={}",
                escape(key, &[',', '=', ' ']),
                escape(value, &[',', '=', ' '])
            )?;
        }
        writeln!(
            out,
            " {}={:?} {}",
            escape(&record.measure, &[',', '=', ' ']),
            record.value,
            record.timestamp_ns
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode_all(text: &str) -> Vec<Decoded> {
        decode(text.as_bytes(), TimeUnit::Nanos, || 42).collect()
    }

    #[test]
    fn influxdbs_mapping_puts_the_field_key_in_a_tag() {
        let decoded: Vec<Decoded> = decode_influx(
            "cpu,host=a usage_user=1,usage_system=2i,value=3,up=true 5\nhertz value=2.5\nx,_field=y v=1 1\nm s=\"text\" 1\n"
                .as_bytes(),
            60_000_000_000,
            || 42,
            "lab".into(),
        )
        .collect();
        let ok: Vec<&Record> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
        assert_eq!(ok.len(), 5);
        assert_eq!(&*ok[0].experiment, "lab");
        assert_eq!(&*ok[0].measure, "cpu");
        assert_eq!(ok[0].timestamp_ns, 300_000_000_000);
        assert_eq!(
            ok[0].tags.get("_field").map(String::as_str),
            Some("usage_user")
        );
        assert_eq!(ok[1].value, 2.0);
        assert_eq!(ok[2].tags.get("_field"), None);
        assert_eq!(ok[2].tags.get("host").map(String::as_str), Some("a"));
        assert_eq!(ok[3].value, 1.0);
        assert_eq!(&*ok[4].measure, "hertz");
        assert_eq!(ok[4].timestamp_ns, 42);
        let errors: Vec<String> = decoded
            .iter()
            .filter_map(|d| d.as_ref().err().map(ToString::to_string))
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("_field is reserved"), "{errors:?}");
        assert!(errors[1].contains("string fields"), "{errors:?}");
    }

    #[test]
    fn measurement_is_the_experiment_and_fields_are_measures() {
        let decoded = decode_all(
            "device-vibrations,host=lab1,rack=r\\ 2 hertz=2.2,volt=230i 1653040000000000000\n",
        );
        assert_eq!(decoded.len(), 2);
        let hertz = decoded[0].as_ref().unwrap();
        assert_eq!(&*hertz.experiment, "device-vibrations");
        assert_eq!(&*hertz.measure, "hertz");
        assert_eq!(hertz.value, 2.2);
        assert_eq!(hertz.timestamp_ns, 1_653_040_000_000_000_000);
        assert_eq!(hertz.tags["rack"], "r 2");
        assert_eq!(decoded[1].as_ref().unwrap().value, 230.0);
    }

    #[test]
    fn the_benchmark_shape_with_second_precision() {
        let decoded: Vec<Decoded> = decode(
            "bench volt=230.123 1704067200\n".as_bytes(),
            TimeUnit::Seconds,
            || 0,
        )
        .collect();
        let record = decoded[0].as_ref().unwrap();
        assert_eq!(
            (&*record.experiment, &*record.measure, record.value),
            ("bench", "volt", 230.123)
        );
        assert_eq!(record.timestamp_ns, 1_704_067_200_000_000_000);
    }

    #[test]
    fn refusals_name_line_and_field_and_keep_the_rest() {
        let text = "e m=1\ne status=\"ok, fine\",m=2 7\ne flag=true\ne\ne m=abc\ne m=1 soon\n# comment\n\ne,host m=1\n";
        let decoded = decode_all(text);
        let show: Vec<String> = decoded
            .iter()
            .map(|d| match d {
                Ok(record) => format!(
                    "ok {}={} @{}",
                    record.measure, record.value, record.timestamp_ns
                ),
                Err(err) => err.to_string(),
            })
            .collect();
        assert_eq!(
            show,
            [
                "ok m=1 @42",
                "line 2: status: string fields are not measures: send a number",
                "ok m=2 @7",
                "line 3: flag: boolean fields are not measures: send a number",
                "line 4: expected MEASUREMENT[,TAGS] FIELDS [TIMESTAMP]: no fields",
                "line 5: m: \"abc\" is not a number",
                "line 6: timestamp: \"soon\" is not an integer",
                "line 9: tags: tag \"host\" has no value",
            ]
        );
    }

    /// Bytes that look like line protocol: names, escapes, separators, line ends (`\r\n`,
    /// blank lines, a last line without one), comments, and bytes that are not UTF-8.
    fn line_protocol_like() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'\n'),
                Just(b'\r'),
                Just(b' '),
                Just(b','),
                Just(b'='),
                Just(b'\\'),
                Just(b'#'),
                Just(b'"'),
                Just(0xff),
                b'0'..=b'9',
                b'a'..=b'f',
            ],
            0..120,
        )
    }

    proptest! {
        #[test]
        fn decoding_in_memory_equals_streaming(body in line_protocol_like()) {
            let streamed: Vec<Decoded> = decode(&body[..], TimeUnit::Nanos, || 7).collect();
            let in_place: Vec<Decoded> = decode_in(&body, TimeUnit::Nanos, || 7).collect();
            prop_assert_eq!(in_place, streamed);
            let streamed: Vec<Decoded> = decode_influx(&body[..], 1, || 7, "db".into()).collect();
            let in_place: Vec<Decoded> = decode_influx_in(&body, 1, || 7, "db".into()).collect();
            prop_assert_eq!(in_place, streamed);
        }

        #[test]
        fn decode_inverts_encode(records in proptest::collection::vec(
            (
                "[a-z][a-z0-9 ,=_\\\\-]{0,15}",
                "[a-zA-Z][a-zA-Z0-9 ,=]{0,10}",
                crate::EARLIEST_TIMESTAMP_NS..crate::END_OF_TIMESTAMPS_NS,
                any::<f64>().prop_filter("finite", |v| v.is_finite()),
                proptest::collection::btree_map("[a-z][a-z ,=]{0,5}", "[!-~][ -~]{0,9}", 0..3),
            ).prop_map(|(experiment, measure, timestamp_ns, value, tags)| Record { experiment: experiment.into(), measure: measure.into(), timestamp_ns, value, tags }),
            0..20)) {
            let mut text = Vec::new();
            encode(&records, &mut text).unwrap();
            let decoded: Vec<Record> = decode(&text[..], TimeUnit::Nanos, || 0).map(Result::unwrap).collect();
            prop_assert_eq!(&decoded, &records);
            let decoded: Vec<Record> = decode_in(&text, TimeUnit::Nanos, || 0).map(Result::unwrap).collect();
            prop_assert_eq!(decoded, records);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[ -~\\n]{0,200}") {
            let _ = decode(text.as_bytes(), TimeUnit::Nanos, || 0).take(100).count();
        }
    }
}
