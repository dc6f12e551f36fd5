use super::*;

fn decode_all(text: &str) -> Vec<Decoded> {
    decode(text.as_bytes(), TimeUnit::Seconds).collect()
}

fn original(value: f64, timestamp: i64) -> Record {
    Record {
        experiment: "device-vibrations".into(),
        measure: "hertz".into(),
        timestamp_ns: timestamp * 1_000_000_000,
        value,
        tags: BTreeMap::new(),
    }
}

#[test]
fn the_original_message() {
    let decoded = decode_all(
        r#"{"experiment": "device-vibrations", "measure": "hertz", "value": 2.2, "timestamp": 1653040000}"#,
    );
    assert_eq!(decoded, vec![Ok(original(2.2, 1_653_040_000))]);
}

#[test]
fn arrays_sequences_and_pretty_printing() {
    let one = r#"{"experiment":"device-vibrations","measure":"hertz","value":1,"timestamp":1}"#;
    let two = r#"{"experiment":"device-vibrations","measure":"hertz","value":2,"timestamp":2}"#;
    let expected = vec![Ok(original(1.0, 1)), Ok(original(2.0, 2))];
    assert_eq!(decode_all(&format!("[{one}, {two}]")), expected);
    assert_eq!(decode_all(&format!(" [\n  {one},\n  {two}\n]\n")), expected);
    assert_eq!(decode_all(&format!("{one}\n{two}\n")), expected);
    assert_eq!(decode_all(&format!("{one}{two}")), expected);
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(one).unwrap()).unwrap();
    assert_eq!(decode_all(&pretty), vec![Ok(original(1.0, 1))]);
    assert!(decode_all("[]").is_empty());
    assert!(decode_all("  ").is_empty());
}

#[test]
fn timestamps_in_every_documented_form() {
    let with = |timestamp: &str, unit: &str| {
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(r#","timestamp_unit":"{unit}""#)
        };
        let text = format!(
            r#"{{"experiment":"e","measure":"m","value":1,"timestamp":{timestamp}{unit}}}"#
        );
        decode_all(&text).remove(0).map(|r| r.timestamp_ns)
    };
    assert_eq!(with("1653040000", ""), Ok(1_653_040_000_000_000_000));
    assert_eq!(with("1653040000.25", ""), Ok(1_653_040_000_250_000_000));
    assert_eq!(with("1653040000250", "ms"), Ok(1_653_040_000_250_000_000));
    assert_eq!(
        with("1653040000250000", "us"),
        Ok(1_653_040_000_250_000_000)
    );
    assert_eq!(
        with("1653040000250000001", "ns"),
        Ok(1_653_040_000_250_000_001)
    );
    assert_eq!(
        with(r#""2022-05-20T09:46:40.25Z""#, ""),
        Ok(1_653_040_000_250_000_000)
    );
    assert_eq!(with(r#""1653040000""#, ""), Ok(1_653_040_000_000_000_000));
    assert!(
        with("1", "fortnights")
            .unwrap_err()
            .to_string()
            .contains("timestamp_unit")
    );
    assert!(
        with("true", "")
            .unwrap_err()
            .to_string()
            .contains("timestamp")
    );
}

#[test]
fn bad_records_are_named_and_do_not_stop_the_good_ones() {
    let text = r#"[
        {"experiment":"e","measure":"m","value":1,"timestamp":1},
        {"experiment":"e","measure":"m","value":"high","timestamp":1},
        {"experiment":"e","value":1,"timestamp":1},
        {"experiment":"e","measure":"m","value":1,"timestamp":1,"mesure":"x"},
        {"experiment":"e","measure":"m","value":1,"timestamp":1,"tags":{"host":7}},
        {"experiment":"e","measure":"m","value":1,"timestamp": },
        "just a string",
        {"experiment":"e","measure":"m","value":2,"timestamp":2,"tags":{"host":"lab1"}}
    ]"#;
    let decoded = decode_all(text);
    assert_eq!(decoded.len(), 8);
    assert!(decoded[0].is_ok());
    let errors: Vec<String> = decoded[1..7]
        .iter()
        .map(|d| d.as_ref().unwrap_err().to_string())
        .collect();
    assert_eq!(
        errors[0],
        r#"record 1: value: must be a number, not "high""#
    );
    assert_eq!(errors[1], "record 2: measure: missing");
    assert!(
        errors[2].starts_with("record 3: mesure: unknown field"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].starts_with("record 4: tags: tag \"host\""),
        "{}",
        errors[3]
    );
    assert!(
        errors[4].starts_with("record 5: malformed JSON"),
        "{}",
        errors[4]
    );
    assert_eq!(errors[5], "record 6: expected a JSON object");
    let last = decoded[7].as_ref().unwrap();
    assert_eq!(last.tags["host"], "lab1");
}

#[test]
fn broken_structure_is_reported_once_and_ends_decoding() {
    for text in [
        "[1,,2]",
        "[{}",
        "}{",
        r#"[{"a":1} {"b":2}]"#,
        "[] x",
        r#"{"experiment": "#,
    ] {
        let decoded = decode_all(text);
        assert!(decoded.iter().any(Result::is_err), "{text}: {decoded:?}");
        assert!(decoded.len() <= 3, "{text}: {decoded:?}");
    }
}

#[test]
fn ndjson_lines_recover_after_a_broken_line() {
    let text = "{\"experiment\":\"e\",\"measure\":\"m\",\"value\":1,\"timestamp\":1}\n{broken\n\n{\"experiment\":\"e\",\"measure\":\"m\",\"value\":2,\"timestamp\":2}\n";
    let decoded: Vec<Decoded> = decode_lines(text.as_bytes(), TimeUnit::Seconds).collect();
    assert_eq!(decoded.len(), 3);
    assert!(decoded[0].is_ok());
    assert_eq!(decoded[1].as_ref().unwrap_err().position, Position::Line(2));
    assert_eq!(decoded[2].as_ref().unwrap().value, 2.0);
}

mod round_trip {
    use proptest::prelude::*;

    use super::*;

    pub(crate) fn record() -> impl Strategy<Value = Record> {
        (
            "[a-z][a-z0-9 _.\"\\\\,-]{0,20}",
            "[a-zA-Z°Ω][a-zA-Z0-9 ]{0,12}",
            -4_000_000_000_000_000_000i64..4_000_000_000_000_000_000,
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            proptest::collection::btree_map("[a-z]{1,6}", "[ -~]{0,10}", 0..3),
        )
            .prop_map(|(experiment, measure, timestamp_ns, value, tags)| Record {
                experiment: experiment.into(),
                measure: measure.into(),
                timestamp_ns,
                value,
                tags,
            })
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(records in proptest::collection::vec(record(), 0..20)) {
            let mut text = Vec::new();
            encode(&records, &mut text).unwrap();
            let lines: Vec<Record> = decode_lines(&text[..], TimeUnit::Seconds).map(Result::unwrap).collect();
            prop_assert_eq!(&lines, &records);
            let streamed: Vec<Record> = decode(&text[..], TimeUnit::Seconds).map(Result::unwrap).collect();
            prop_assert_eq!(&streamed, &records);
            let in_place: Vec<Record> = decode_lines_in(&text, TimeUnit::Seconds).map(Result::unwrap).collect();
            prop_assert_eq!(&in_place, &records);
        }

        /// Lines of good and broken records, `\r\n` and blank lines, bytes that are not
        /// UTF-8: read in place, the same records and errors, at the same lines.
        #[test]
        fn decoding_in_memory_equals_streaming(lines in proptest::collection::vec(prop_oneof![
            Just(br#"{"experiment":"e","measure":"m","value":1.5,"timestamp":12}"#.to_vec()),
            Just(br#"{"experiment":"\u00e9","measure":"m","value":2,"timestamp":"2024-01-01T00:00:00Z"}"#.to_vec()),
            Just(br#"{"experiment":"e","measure":"m","value":"x","timestamp":1}"#.to_vec()),
            Just(br#"{"experiment":"e","measure":"m","value":1,"timestamp":1,"extra":0}"#.to_vec()),
            Just(b"{\"experiment\":\"\xff\",\"measure\":\"m\",\"value\":1,\"timestamp\":1}".to_vec()),
            Just(b"   ".to_vec()),
            Just(b"\r".to_vec()),
            Just(Vec::new()),
            proptest::collection::vec(any::<u8>(), 0..30),
        ], 0..12), crlf in any::<bool>(), last_newline in any::<bool>()) {
            let end: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let mut body = lines.join(end);
            if last_newline {
                body.extend_from_slice(end);
            }
            let streamed: Vec<Decoded> = decode_lines(&body[..], TimeUnit::Seconds).collect();
            let in_place: Vec<Decoded> = decode_lines_in(&body, TimeUnit::Seconds).collect();
            prop_assert_eq!(in_place, streamed);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes[..], TimeUnit::Seconds).take(100).count();
            let _ = decode_lines(&bytes[..], TimeUnit::Seconds).take(100).count();
            let _ = decode_lines_in(&bytes, TimeUnit::Seconds).take(100).count();
        }
    }
}
