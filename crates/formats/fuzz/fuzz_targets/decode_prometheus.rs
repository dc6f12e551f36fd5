#![no_main]
//! Any bytes: the Prometheus/OpenMetrics decoder ends and never panics.

use libfuzzer_sys::fuzz_target;
use mymonit_formats::prometheus::{ExpositionOptions, Flavor, decode};

fuzz_target!(|data: &[u8]| {
    for flavor in [Flavor::Text, Flavor::OpenMetrics] {
        let options = ExpositionOptions { experiment: "e".into(), flavor, default_timestamp_ns: 0 };
        for record in decode(data, options).flatten() {
            assert!(record.value.is_finite());
        }
    }
});
