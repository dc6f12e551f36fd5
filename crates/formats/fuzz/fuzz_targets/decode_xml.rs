#![no_main]
//! Any bytes: the XML decoder ends and never panics.

use libfuzzer_sys::fuzz_target;
use mymonit_formats::{TimeUnit, xml};

fuzz_target!(|data: &[u8]| {
    let _ = xml::decode(data, TimeUnit::Seconds).count();
});
