//! A pasted `Error acquiring the state lock` output, and the s3 digest-mismatch error.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = tflock_core::pasted::parse_lock_error(&text);
    let _ = tflock_core::pasted::parse_digest_error(&text);
});
