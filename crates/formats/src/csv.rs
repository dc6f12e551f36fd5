//! CSV with a header row naming `experiment`, `measure`, `timestamp` and `value` (any order,
//! any case); every other column is a tag (empty cells mean "no such tag"). The delimiter is
//! configurable (`,` by default; `;` and tab are common). `experiment` and `measure` columns
//! may be left out when the options give them.

use std::{collections::BTreeMap, io::BufRead};

use crate::{
    Decoded, Position, Record, RecordError, TimeUnit, check_record, parse_value, timestamp,
};

/// How to read a CSV input.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// Field delimiter.
    pub delimiter: Option<u8>,
    /// Unit of numeric timestamps.
    pub unit: TimeUnit,
    /// Experiment for rows when there is no `experiment` column.
    pub experiment: Option<String>,
    /// Measure type for rows when there is no `measure` column.
    pub measure: Option<String>,
}

struct Columns {
    experiment: Option<usize>,
    measure: Option<usize>,
    timestamp: usize,
    value: usize,
    tags: Vec<(usize, String)>,
}

fn columns(headers: &csv::StringRecord, options: &CsvOptions) -> Result<Columns, RecordError> {
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let header_error = |name: &str| {
        RecordError::field(
            Position::Line(1),
            name,
            format!(
                "the header has no {name:?} column (found: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        )
    };
    let experiment = find("experiment");
    let measure = find("measure");
    if experiment.is_none() && options.experiment.is_none() {
        return Err(header_error("experiment"));
    }
    if measure.is_none() && options.measure.is_none() {
        return Err(header_error("measure"));
    }
    let timestamp = find("timestamp").ok_or_else(|| header_error("timestamp"))?;
    let value = find("value").ok_or_else(|| header_error("value"))?;
    let known = [experiment, measure, Some(timestamp), Some(value)];
    let tags = headers
        .iter()
        .enumerate()
        .filter(|(index, _)| !known.contains(&Some(*index)))
        .map(|(index, name)| (index, name.trim().to_string()))
        .collect();
    Ok(Columns {
        experiment,
        measure,
        timestamp,
        value,
        tags,
    })
}

/// Decodes rows; positions are the lines where rows start.
pub fn decode<R: BufRead>(reader: R, options: CsvOptions) -> impl Iterator<Item = Decoded> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(options.delimiter.unwrap_or(b','))
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let mut header: Option<Result<Columns, RecordError>> = None;
    let mut row = csv::StringRecord::new();
    let mut finished = false;
    std::iter::from_fn(move || {
        if finished {
            return None;
        }
        let columns = match header.get_or_insert_with(|| match reader.headers() {
            Ok(headers) => columns(headers, &options),
            Err(err) => Err(RecordError::record(
                Position::Line(1),
                format!("cannot read the header: {err}"),
            )),
        }) {
            Ok(columns) => columns,
            Err(err) => {
                finished = true;
                return Some(Err(err.clone()));
            }
        };
        match reader.read_record(&mut row) {
            Ok(false) => None,
            Ok(true) => {
                let line = row.position().map_or(0, |p| p.line() as usize);
                Some(decode_row(&row, columns, &options, Position::Line(line)))
            }
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line() as usize);
                // An I/O or UTF-8 error may leave the reader mid-row; stop rather than guess.
                if !matches!(err.kind(), csv::ErrorKind::Utf8 { .. }) {
                    finished = true;
                }
                Some(Err(RecordError::record(
                    Position::Line(line),
                    format!("malformed CSV: {err}"),
                )))
            }
        }
    })
}

fn decode_row(
    row: &csv::StringRecord,
    columns: &Columns,
    options: &CsvOptions,
    position: Position,
) -> Decoded {
    let cell = |index: usize, name: &str| {
        row.get(index).ok_or_else(|| {
            RecordError::field(
                position,
                name,
                "missing: the row is shorter than the header",
            )
        })
    };
    let experiment = match columns.experiment {
        Some(index) => cell(index, "experiment")?.to_string(),
        None => options.experiment.clone().unwrap_or_default(),
    };
    let measure = match columns.measure {
        Some(index) => cell(index, "measure")?.to_string(),
        None => options.measure.clone().unwrap_or_default(),
    };
    let timestamp_ns = timestamp::from_text(cell(columns.timestamp, "timestamp")?, options.unit)
        .map_err(|reason| RecordError::field(position, "timestamp", reason))?;
    let value = parse_value(cell(columns.value, "value")?, position)?;
    // Counted before anything is copied: a row of thousands of tag cells costs no memory.
    let filled = columns
        .tags
        .iter()
        .filter(|(index, _)| row.get(*index).is_some_and(|cell| !cell.is_empty()))
        .count();
    if filled > crate::MAX_TAGS_READ {
        return Err(RecordError::field(
            position,
            "tags",
            format!(
                "{filled} tags in this row, at most {} are read",
                crate::MAX_TAGS_READ
            ),
        ));
    }
    let tags: BTreeMap<String, String> = columns
        .tags
        .iter()
        .filter_map(|(index, name)| {
            row.get(*index)
                .filter(|cell| !cell.is_empty())
                .map(|cell| (name.clone(), cell.to_string()))
        })
        .collect();
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

/// Writes a header and rows; tag columns are the union of the records' tag keys.
pub fn encode<W: std::io::Write>(records: &[Record], out: W) -> std::io::Result<()> {
    let tag_names: std::collections::BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r.tags.keys().map(String::as_str))
        .collect();
    let mut writer = csv::Writer::from_writer(out);
    let mut header = vec!["experiment", "measure", "timestamp", "value"];
    header.extend(tag_names.iter().copied());
    writer.write_record(&header)?;
    for record in records {
        let mut row = vec![
            record.experiment.to_string(),
            record.measure.to_string(),
            timestamp::format_seconds(record.timestamp_ns),
            record.value.to_string(),
        ];
        row.extend(
            tag_names
                .iter()
                .map(|name| record.tags.get(*name).cloned().unwrap_or_default()),
        );
        writer.write_record(&row)?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode_all(text: &str, options: CsvOptions) -> Vec<Decoded> {
        decode(text.as_bytes(), options).collect()
    }

    #[test]
    fn header_order_case_delimiters_and_tags() {
        let text = "Value;timestamp;MEASURE;experiment;host\n2.2;1653040000;hertz;device-vibrations;lab1\n3;2022-05-20T09:46:41Z;hertz;device-vibrations;\n";
        let decoded = decode_all(
            text,
            CsvOptions {
                delimiter: Some(b';'),
                ..Default::default()
            },
        );
        let first = decoded[0].as_ref().unwrap();
        assert_eq!(
            (first.value, first.timestamp_ns),
            (2.2, 1_653_040_000_000_000_000)
        );
        assert_eq!(first.tags["host"], "lab1");
        assert!(decoded[1].as_ref().unwrap().tags.is_empty());
    }

    #[test]
    fn missing_columns_can_come_from_options() {
        let text = "timestamp,value\n1,2\n";
        let refused = decode_all(text, CsvOptions::default());
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("no \"experiment\" column")
        );
        let options = CsvOptions {
            experiment: Some("e".into()),
            measure: Some("m".into()),
            ..Default::default()
        };
        let decoded = decode_all(text, options);
        assert_eq!(&*decoded[0].as_ref().unwrap().experiment, "e");
    }

    #[test]
    fn bad_rows_name_their_line() {
        let text = "experiment,measure,timestamp,value\ne,m,1,2\ne,m,yesterday,2\ne,m,1,two\ne,m\n\"e\nx\",m,1,5\n";
        let decoded = decode_all(text, CsvOptions::default());
        assert!(decoded[0].is_ok());
        assert!(
            decoded[1]
                .as_ref()
                .unwrap_err()
                .to_string()
                .starts_with("line 3: timestamp:")
        );
        assert_eq!(
            decoded[2].as_ref().unwrap_err().to_string(),
            "line 4: value: \"two\" is not a number"
        );
        assert!(
            decoded[3]
                .as_ref()
                .unwrap_err()
                .to_string()
                .starts_with("line 5: timestamp: missing")
        );
        assert_eq!(&*decoded[4].as_ref().unwrap().experiment, "e\nx");
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(records in proptest::collection::vec(
            (
                "[a-z][a-z0-9 _.\",;-]{0,20}",
                "[a-zA-Z°Ω][a-zA-Z0-9 ]{0,12}",
                -4_000_000_000_000_000_000i64..4_000_000_000_000_000_000,
                any::<f64>().prop_filter("finite", |v| v.is_finite()),
                proptest::collection::btree_map("t_[a-z]{1,5}", "[!-~][ -~]{0,9}", 0..3),
            ).prop_map(|(experiment, measure, timestamp_ns, value, tags)| Record { experiment: experiment.into(), measure: measure.into(), timestamp_ns, value, tags }),
            0..20)) {
            let mut text = Vec::new();
            encode(&records, &mut text).unwrap();
            let decoded: Vec<Record> = decode(&text[..], CsvOptions::default()).map(Result::unwrap).collect();
            prop_assert_eq!(decoded, records);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes[..], CsvOptions::default()).take(100).count();
        }
    }
}
