//! tflock.toml.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tflock::fuzzing::config(&String::from_utf8_lossy(data));
});
