use proptest::prelude::*;

use super::*;

fn decode_all(text: &str) -> Vec<Decoded> {
    decode(text.as_bytes(), TimeUnit::Seconds).collect()
}

#[test]
fn attributes_elements_and_tags() {
    let text = r#"<?xml version="1.0"?>
        <measures>
          <measure experiment="device-vibrations" measure="hertz" timestamp="1653040000" value="2.2" host="lab1"/>
          <measure>
            <experiment>device-vibrations</experiment><measure>hertz</measure>
            <timestamp>2022-05-20T09:46:41Z</timestamp><value> 2.3 </value>
            <tag name="rack">r&amp;d &#65;</tag>
          </measure>
          <measure experiment="black-holes" measure="tesla"><timestamp>1653040002</timestamp><value>4</value></measure>
        </measures>"#;
    let decoded = decode_all(text);
    assert_eq!(decoded.len(), 3, "{decoded:?}");
    let first = decoded[0].as_ref().unwrap();
    assert_eq!(
        (first.value, first.timestamp_ns),
        (2.2, 1_653_040_000_000_000_000)
    );
    assert_eq!(first.tags["host"], "lab1");
    let second = decoded[1].as_ref().unwrap();
    assert_eq!((&*second.measure, second.value), ("hertz", 2.3));
    assert_eq!(second.tags["rack"], "r&d A");
    assert_eq!(&*decoded[2].as_ref().unwrap().experiment, "black-holes");
}

#[test]
fn bad_records_are_named_and_the_rest_kept() {
    let text = r#"<measures>
        <measure experiment="e" measure="m" value="1"/>
        <measure experiment="e" measure="m" timestamp="1" value="high"/>
        <measure experiment="e" measure="m" timestamp="1" value="5"/>
        <measure experiment="e" measure="m" timestamp="1" value="6"><unclosed></measure>
    </measures>"#;
    let decoded = decode_all(text);
    assert_eq!(
        decoded[0].as_ref().unwrap_err().to_string(),
        "record 0: timestamp: missing"
    );
    assert_eq!(
        decoded[1].as_ref().unwrap_err().to_string(),
        "record 1: value: \"high\" is not a number"
    );
    assert_eq!(decoded[2].as_ref().unwrap().value, 5.0);
    let last = decoded[3].as_ref().unwrap_err().to_string();
    assert!(last.starts_with("record 3: malformed XML"), "{last}");
    assert_eq!(decoded.len(), 4);
}

proptest! {
    #[test]
    fn decode_inverts_encode(records in proptest::collection::vec(
        (
            "[a-z][a-z0-9 <>&'\"_.-]{0,20}",
            "[a-zA-Z°Ω][a-zA-Z0-9 ]{0,12}",
            -4_000_000_000_000_000_000i64..4_000_000_000_000_000_000,
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            proptest::collection::btree_map("[a-z][a-z &<]{0,5}", "[!-~]{1,10}", 0..3),
        ).prop_map(|(experiment, measure, timestamp_ns, value, tags)| Record { experiment: experiment.into(), measure: measure.into(), timestamp_ns, value, tags }),
        0..20)) {
        let mut text = Vec::new();
        encode(&records, &mut text).unwrap();
        let decoded: Vec<Record> = decode(&text[..], TimeUnit::Seconds).map(Result::unwrap).collect();
        prop_assert_eq!(decoded, records);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\\n]{0,300}") {
        let _ = decode(text.as_bytes(), TimeUnit::Seconds).take(100).count();
    }
}
