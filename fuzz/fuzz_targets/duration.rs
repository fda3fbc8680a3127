//! Every duration flag and the backend block's Go durations.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = tflock_core::duration::parse(&text) {
        assert!(d <= tflock_core::duration::MAX);
        let _ = tflock_core::duration::human(d);
    }
});
