//! LockInfo JSON (every backend's lock body), and Azure's base64 form of it.
#![no_main]
use tflock_core::LockInfo;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(info) = LockInfo::parse(&text) {
        // What tflock writes back must read back the same.
        let again = LockInfo::parse(&info.to_terraform_json()).expect("own output parses");
        assert_eq!(again, info);
        let _ = info.terraform_block();
    }
    let _ = tflock_core::lockinfo::parse_go_time(&text);
});
