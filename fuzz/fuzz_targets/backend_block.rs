//! `*.tf` and `*.tf.json` files: the backend block, and every driver's discovery from it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    tflock::fuzzing::backend_block(&text, false);
    tflock::fuzzing::backend_block(&text, true);
});
