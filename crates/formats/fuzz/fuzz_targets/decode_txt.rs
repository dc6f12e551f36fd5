#![no_main]
//! Any bytes: the txt decoder ends and never panics.

use libfuzzer_sys::fuzz_target;
use mymonit_formats::{TimeUnit, txt};

fuzz_target!(|data: &[u8]| {
    let options = txt::TxtOptions { experiment: "e".into(), measure: "m".into(), unit: TimeUnit::Seconds };
    let _ = txt::decode(data, options, || 0).count();
});
