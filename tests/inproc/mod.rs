//! Runs the command line in this process over a test resolver (in-memory stores): the
//! harness the CLI test files share.
#![allow(dead_code)]

use tflock::{Io, Resolver};

/// What one run printed and returned.
pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

/// `tflock ARGS...` (without the program name) with `input` on stdin; `interactive`: a
/// person could answer a prompt.
pub fn tflock(resolver: &dyn Resolver, args: &[&str], input: &str, interactive: bool) -> Run {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut input = std::io::Cursor::new(input.as_bytes().to_vec());
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        input: &mut input,
        interactive,
        color: false,
        progress: false,
    };
    let argv: Vec<&str> = std::iter::once("tflock")
        .chain(args.iter().copied())
        .collect();
    let code = tflock::run(argv, &mut io, resolver);
    Run {
        code,
        out: String::from_utf8(out).expect("stdout is UTF-8"),
        err: String::from_utf8(err).expect("stderr is UTF-8"),
    }
}

/// `args` with `--audit-log PATH` added when the command is one that writes it.
pub fn with_audit<'a>(args: &[&'a str], audit: &'a str) -> Vec<&'a str> {
    let mut v = args.to_vec();
    if matches!(args.first(), Some(&"break") | Some(&"doctor")) && !args.contains(&"--audit-log") {
        v.extend(["--audit-log", audit]);
    }
    v
}
