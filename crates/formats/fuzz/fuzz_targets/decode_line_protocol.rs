#![no_main]
//! Any bytes: the line protocol decoder ends, never panics, and what it accepts re-encodes.

use libfuzzer_sys::fuzz_target;
use mymonit_formats::{TimeUnit, line_protocol};

fuzz_target!(|data: &[u8]| {
    let records: Vec<_> = line_protocol::decode(data, TimeUnit::Nanos, || 0).filter_map(Result::ok).collect();
    let mut out = Vec::new();
    line_protocol::encode(&records, &mut out).expect("encoding to memory");
    let again: Vec<_> = line_protocol::decode(&out[..], TimeUnit::Nanos, || 0).map(Result::unwrap).collect();
    assert_eq!(again, records);
});
