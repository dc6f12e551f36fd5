#![no_main]
//! Any bytes: the CSV decoder ends and never panics.

use libfuzzer_sys::fuzz_target;
use mymonit_formats::csv;

fuzz_target!(|data: &[u8]| {
    let _ = csv::decode(data, csv::CsvOptions::default()).count();
});
