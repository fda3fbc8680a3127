//! Target URLs and the redaction of what is shown of them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = tflock_core::Target::parse(&text) {
        let _ = t.check_params(&["region", "endpoint"]);
    }
    let _ = tflock_core::redact::url(&text);
    let _ = tflock_core::text::escape_control(&text);
    let _ = tflock_core::text::shell_quote(&text);
});
