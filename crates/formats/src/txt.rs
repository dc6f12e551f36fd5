//! txt: what the original adapter read, one number per line, timestamped on arrival, with the
//! experiment and measure given as options. A line may also be `TIMESTAMP VALUE` (separated
//! by spaces or a tab; the timestamp as in [`crate::timestamp`]). Blank lines and lines
//! starting with `#` are skipped.

use std::{collections::BTreeMap, io::BufRead};

use crate::{
    Decoded, Position, Record, RecordError, TimeUnit, check_record, line_text, numbered_lines,
    parse_value, timestamp,
};

/// What a txt input does not say itself.
#[derive(Debug, Clone)]
pub struct TxtOptions {
    /// Experiment of every line.
    pub experiment: String,
    /// Measure type of every line.
    pub measure: String,
    /// Unit of numeric timestamps.
    pub unit: TimeUnit,
}

/// Decodes lines; `now` gives the arrival time (nanoseconds) of lines without a timestamp.
pub fn decode<R: BufRead, N: FnMut() -> i64>(
    reader: R,
    options: TxtOptions,
    mut now: N,
) -> impl Iterator<Item = Decoded> {
    numbered_lines(reader).filter_map(move |line| {
        let (position, line) = match line {
            Ok(line) => line,
            Err(err) => return Some(Err(err)),
        };
        let text = match line_text(position, &line) {
            Ok(text) => text.trim(),
            Err(err) => return Some(Err(err)),
        };
        if text.starts_with('#') {
            return None;
        }
        Some(decode_line(text, position, &options, &mut now))
    })
}

fn decode_line(
    text: &str,
    position: Position,
    options: &TxtOptions,
    now: &mut impl FnMut() -> i64,
) -> Decoded {
    let mut parts = text.split_whitespace();
    let (timestamp_ns, value) = match (parts.next(), parts.next(), parts.next()) {
        (Some(value), None, None) => (now(), parse_value(value, position)?),
        (Some(timestamp), Some(value), None) => (
            timestamp::from_text(timestamp, options.unit)
                .map_err(|reason| RecordError::field(position, "timestamp", reason))?,
            parse_value(value, position)?,
        ),
        _ => {
            return Err(RecordError::record(
                position,
                "expected VALUE or TIMESTAMP VALUE",
            ));
        }
    };
    check_record(
        Record {
            experiment: options.experiment.as_str().into(),
            measure: options.measure.as_str().into(),
            timestamp_ns,
            value,
            tags: BTreeMap::new(),
        },
        position,
    )
}

/// Writes `TIMESTAMP VALUE` lines (epoch seconds, exact).
pub fn encode<W: std::io::Write>(records: &[Record], mut out: W) -> std::io::Result<()> {
    for record in records {
        writeln!(
            out,
            "{} {}",
            timestamp::format_seconds(record.timestamp_ns),
            record.value
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn options() -> TxtOptions {
        TxtOptions {
            experiment: "device-vibrations".into(),
            measure: "hertz".into(),
            unit: TimeUnit::Seconds,
        }
    }

    #[test]
    fn values_are_timestamped_on_arrival() {
        let mut clock = 100;
        let decoded: Vec<Decoded> = decode(
            "2.2\n\n# comment\n  -3.5e2 \n".as_bytes(),
            options(),
            || {
                clock += 1;
                clock
            },
        )
        .collect();
        assert_eq!(decoded.len(), 2);
        let first = decoded[0].as_ref().unwrap();
        assert_eq!((first.value, first.timestamp_ns), (2.2, 101));
        assert_eq!(&*first.experiment, "device-vibrations");
        assert_eq!(decoded[1].as_ref().unwrap().value, -350.0);
    }

    #[test]
    fn timestamped_lines_and_errors_by_line() {
        let text = "1653040000 2.2\n2022-05-20T09:46:41Z\t3\nabc\n1 2 3\nnoon 4\n1653040005 inf\n";
        let decoded: Vec<Decoded> = decode(text.as_bytes(), options(), || 0).collect();
        assert_eq!(
            decoded[0].as_ref().unwrap().timestamp_ns,
            1_653_040_000_000_000_000
        );
        assert_eq!(
            decoded[1].as_ref().unwrap().timestamp_ns,
            1_653_040_001_000_000_000
        );
        let errors: Vec<String> = decoded[2..]
            .iter()
            .map(|d| d.as_ref().unwrap_err().to_string())
            .collect();
        assert_eq!(errors[0], "line 3: value: \"abc\" is not a number");
        assert_eq!(errors[1], "line 4: expected VALUE or TIMESTAMP VALUE");
        assert!(errors[2].starts_with("line 5: timestamp:"), "{}", errors[2]);
        assert_eq!(errors[3], "line 6: value: must be a finite number");
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(points in proptest::collection::vec(
            (-4_000_000_000_000_000_000i64..4_000_000_000_000_000_000, any::<f64>().prop_filter("finite", |v| v.is_finite())), 0..30)) {
            let records: Vec<Record> = points.into_iter().map(|(timestamp_ns, value)| Record {
                experiment: "device-vibrations".into(), measure: "hertz".into(), timestamp_ns, value, tags: BTreeMap::new(),
            }).collect();
            let mut text = Vec::new();
            encode(&records, &mut text).unwrap();
            let decoded: Vec<Record> = decode(&text[..], options(), || 0).map(Result::unwrap).collect();
            prop_assert_eq!(decoded, records);
        }
    }
}
