//! Lock metadata through `tflock list` and `inspect` (table and JSON): no panic, and no
//! control character reaches the terminal.
#![no_main]
use std::sync::Arc;
use tflock_core::memory::MemoryStore;
use tflock_core::{ConnectOptions, Error, LockStore, Target};

struct One(String);

#[async_trait::async_trait]
impl tflock::Resolver for One {
    async fn open(&self, t: &Target, _: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        let mem = MemoryStore::new(t.url.clone());
        mem.hold("state.tflock", &self.0);
        Ok(Arc::new(mem))
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let resolver = One(String::from_utf8_lossy(data).into_owned());
    for args in [
        &["tflock", "list", "-t", "memory://f"][..],
        &["tflock", "list", "-t", "memory://f", "--json"][..],
        &["tflock", "inspect", "state.tflock", "-t", "memory://f"][..],
    ] {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut input = std::io::Cursor::new(Vec::new());
        let mut io = tflock::Io {
            out: &mut out,
            err: &mut err,
            input: &mut input,
            interactive: false,
            color: false,
            progress: false,
        };
        tflock::run(args.iter().copied(), &mut io, &resolver);
        if !args.contains(&"--json") {
            let text = String::from_utf8_lossy(&out);
            assert!(text
                .chars()
                .all(|c| c == '\n' || !tflock_core::text::needs_escape(c)));
        }
    }
});
