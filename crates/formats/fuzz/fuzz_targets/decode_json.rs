#![no_main]
//! Any bytes: the JSON decoders end, never panic, and every record they accept re-encodes.

use libfuzzer_sys::fuzz_target;
use mymonit_formats::{TimeUnit, json};

fuzz_target!(|data: &[u8]| {
    let records: Vec<_> = json::decode(data, TimeUnit::Seconds).filter_map(Result::ok).collect();
    let _ = json::decode_lines(data, TimeUnit::Millis).count();
    let mut out = Vec::new();
    json::encode(&records, &mut out).expect("encoding to memory");
    let again: Vec<_> = json::decode_lines(&out[..], TimeUnit::Seconds).map(Result::unwrap).collect();
    assert_eq!(again, records);
});
