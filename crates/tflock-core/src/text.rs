//! Terminal safety and shell quoting for text that came from outside: lock metadata
//! (`Who`, `Info`, `Path`, IDs) written by whoever took the lock, and values from configs
//! and backend blocks.
//!
//! - [`escape_control`] makes such text safe to *show*: nothing in it can move the cursor,
//!   recolour, clear, retitle the terminal, hide or reorder characters. Its output is for
//!   display only and not reversible (a backslash is not doubled, so `\x1b` in the output
//!   may have been an ESC or the four characters `\x1b`).
//! - [`shell_quote`] makes such text safe to *paste* as one argument of a printed command
//!   (`tflock break --id ...`): it is read back as exactly the original bytes, and nothing
//!   in it runs.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for characters that must not reach a terminal raw: control characters (C0
/// including NUL, ESC, BEL, CR, LF, TAB; DEL; C1 U+0080–U+009F), the line and paragraph
/// separators, and the invisible format characters (Unicode category Cf) that can reorder
/// or hide text: bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069),
/// marks (LRM, RLM, ALM), zero-width spaces and joiners, the BOM, soft hyphen, interlinear
/// annotations and the tag characters (U+E0000 block) used to smuggle invisible text.
pub fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

/// Text safe to print on a terminal: every character for which [`needs_escape`] holds
/// becomes a visible escape — `\n`, `\r`, `\t`, `\x1b` (other C0 and DEL), `\u{9b}` (C1),
/// `\u{202e}` (format characters). Everything else, including a backslash, is unchanged,
/// so ordinary text stays readable.
///
/// The output is for display and is **not reversible**: a backslash in the input is not
/// doubled. Never feed it back as data (JSON output stays exact; see `docs/security.md`).
///
/// Borrows (no copy) when nothing needs escaping.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(needs_escape) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if needs_escape(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn push_escape(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{0}'..='\u{1f}' | '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// One argument of a shell command the user may copy and paste (`tflock break --id ARG`).
///
/// - Plain words stay bare: `tflock`, `--id`, `9f2c8a51-3b7e-4d0a-8c6f-1e2d3c4b5a69`,
///   `s3://bucket/key`.
/// - Anything else is quoted by the `shlex` crate (POSIX single/double quotes), so that a
///   POSIX shell, bash, zsh or `shlex::split` read back exactly `arg`: `x'; touch /tmp/P`
///   stays one harmless word.
/// - An argument with a character that [`needs_escape`] (ESC, CR, LF, bidi overrides, ...)
///   is written in ANSI-C quoting, `$'...'`, with those characters as `\xHH` byte escapes:
///   the printed command then contains no raw control character (it cannot redraw the
///   terminal or hide part of itself), and bash, zsh, ksh and POSIX.1-2024 `sh` read it
///   back as exactly the original bytes. Shells without `$'...'` (dash, fish) fail to
///   parse it or pass a different word; none runs anything from it. Plain quoting plus
///   [`escape_control`] would have been neither exact nor honest, hence this choice.
/// - A NUL cannot be part of a program argument at all. It is written as the four
///   characters `\x00` (inside `$'...'`, as `\\x00`), so the pasted command names an ID
///   that does not exist and fails, rather than being cut at the NUL into a prefix that
///   could be another lock's ID.
///
/// The result never contains a raw control or format character.
pub fn shell_quote(arg: &str) -> String {
    if arg.chars().any(needs_escape) {
        return ansi_c_quote(arg);
    }
    match shlex::try_quote(arg) {
        Ok(quoted) => quoted.into_owned(),
        // Only NUL makes shlex fail, and NUL already took the branch above; kept so that
        // a future shlex error can only ever fall back to the form that runs nothing.
        Err(_) => ansi_c_quote(arg),
    }
}

/// `$'...'`: printable characters as they are, `'` and `\` backslash-escaped, `!` as
/// `\x21` (no history expansion in interactive bash), every [`needs_escape`] character as
/// the `\xHH` escapes of its UTF-8 bytes (exact whatever the locale), NUL as a literal
/// `\x00`.
fn ansi_c_quote(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 8);
    out.push_str("$'");
    for c in arg.chars() {
        match c {
            '\0' => out.push_str("\\\\x00"),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '!' => out.push_str("\\x21"),
            c if needs_escape(c) => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A whole command line from its words, each through [`shell_quote`], space-separated.
pub fn shell_join<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words
        .into_iter()
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Property-test input: text that is dense in what hostile input uses (C0 and C1
/// controls, ESC sequences, bidi and zero-width characters, quotes, backslashes, shell
/// metacharacters), mixed with arbitrary Unicode. `any::<String>()` alone almost never
/// produces a control character.
#[cfg(test)]
pub(crate) fn hostile_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let c = prop_oneof![
        3 => proptest::char::range(' ', '~'),
        2 => proptest::char::range('\u{0}', '\u{1f}'),
        1 => proptest::char::range('\u{7f}', '\u{9f}'),
        1 => proptest::sample::select(vec![
            '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{200b}', '\u{200f}', '\u{feff}',
            '\u{2028}', '\u{ad}', '\u{e0041}', '\'', '"', '\\', '!', '$', '`', '%', '&', '?',
            '#', '@', '=', ':', '/', '^', 'é', '日',
        ]),
        2 => any::<char>(),
    ];
    proptest::collection::vec(c, 0..40).prop_map(|v| v.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;

    #[test]
    fn escapes_controls_visibly() {
        assert_eq!(
            escape_control("a\x1b[2Jb\rc\nd\te\x07f\x7fg\0"),
            "a\\x1b[2Jb\\rc\\nd\\te\\x07f\\x7fg\\x00"
        );
        assert_eq!(escape_control("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(
            escape_control("evil\u{202e}gnp.exe\u{2066}"),
            "evil\\u{202e}gnp.exe\\u{2066}"
        );
        assert_eq!(escape_control("p\u{200b}rod"), "p\\u{200b}rod");
        assert_eq!(escape_control("\u{e0041}"), "\\u{e0041}");
        // Backslashes are not doubled; ordinary text and other scripts are untouched.
        assert_eq!(escape_control(r"C:\path\x1b"), r"C:\path\x1b");
        assert_eq!(
            escape_control("alice@laptöp 日本 🙂"),
            "alice@laptöp 日本 🙂"
        );
    }

    #[test]
    fn escape_is_zero_copy_when_clean() {
        assert!(matches!(
            escape_control("alice@host (pid 42)"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(escape_control(""), Cow::Borrowed(_)));
        assert!(matches!(escape_control("a\nb"), Cow::Owned(_)));
    }

    #[test]
    fn plain_words_stay_bare() {
        for w in [
            "tflock",
            "break",
            "--id",
            "9f2c8a51-3b7e-4d0a-8c6f-1e2d3c4b5a69",
            "s3://bucket/env:/prod/terraform.tfstate",
            "user@host",
        ] {
            assert_eq!(shell_quote(w), w);
        }
    }

    #[test]
    fn quotes_what_the_shell_would_interpret() {
        let attack = "x'; touch /tmp/P; echo '";
        let q = shell_quote(attack);
        assert_ne!(q, attack);
        assert_eq!(shlex::split(&q), Some(vec![attack.to_string()]));
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$(id)"), "'$(id)'");
        assert_eq!(
            shell_join(["tflock", "break", "--id", "a b"]),
            "tflock break --id 'a b'"
        );
    }

    #[test]
    fn control_characters_use_ansi_c_quoting() {
        assert_eq!(shell_quote("a\x1b[2Jb"), "$'a\\x1b[2Jb'");
        assert_eq!(shell_quote("a\nb'c\\d!"), "$'a\\x0ab\\'c\\\\d\\x21'");
        assert_eq!(shell_quote("x\u{202e}y"), "$'x\\xe2\\x80\\xaey'");
        assert_eq!(shell_quote("x\0y"), "$'x\\\\x00y'");
    }

    /// What `bash -c "printf '%s\0' WORD"` receives for the printed WORD.
    fn through_shell(shell: &str, quoted: &str) -> Vec<u8> {
        let out = Command::new(shell)
            .arg("-c")
            .arg(format!("printf '%s\\0' {quoted}"))
            .output()
            .expect("run shell");
        assert!(
            out.status.success(),
            "{shell} failed on {quoted:?}: {out:?}"
        );
        out.stdout
    }

    fn has_shell(shell: &str) -> bool {
        Command::new(shell)
            .arg("-c")
            .arg("true")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn bash_reads_back_exact_bytes() {
        if !has_shell("bash") {
            eprintln!("skipped: no bash on PATH");
            return;
        }
        for arg in [
            "x'; touch /tmp/P; echo '",
            "a\x1b]0;title\x07b",
            "line1\nline2\r\n",
            "evil\u{202e}gnp\u{2066}",
            "back\\slash 'single' \"double\" $HOME `id` !! ^x * ? [a] {b,c} ~ # %",
            "tab\there\u{85}\u{9b}\u{7f}",
            "\u{e0041}\u{feff}é",
            "\x1bab\x01f\x7f0",
            "",
        ] {
            let mut want = arg.as_bytes().to_vec();
            want.push(0);
            assert_eq!(through_shell("bash", &shell_quote(arg)), want, "{arg:?}");
        }
        // NUL: a different, harmless word (never a prefix of the ID).
        assert_eq!(
            through_shell("bash", &shell_quote("id\0tail")),
            b"id\\x00tail\0"
        );
    }

    #[test]
    fn bash_history_expansion_does_not_fire() {
        if !has_shell("bash") {
            eprintln!("skipped: no bash on PATH");
            return;
        }
        for arg in ["a!!b", "!-1", "x\x1b!y"] {
            let out = Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "set -o history -H; echo warm; printf '%s\\0' {}",
                    shell_quote(arg)
                ))
                .output()
                .expect("run bash");
            let mut want = b"warm\n".to_vec();
            want.extend_from_slice(arg.as_bytes());
            want.push(0);
            assert_eq!(out.stdout, want, "{arg:?}");
        }
    }

    fn printable_ascii(c: char) -> bool {
        (' '..='~').contains(&c)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn escaped_text_has_no_control_or_format_char(s in hostile_text()) {
            let e = escape_control(&s);
            prop_assert!(!e.chars().any(needs_escape), "{:?}", e);
        }

        #[test]
        fn escape_is_identity_on_printable_ascii(s in "[ -~]*") {
            prop_assert_eq!(escape_control(&s), s.as_str());
        }

        #[test]
        fn escape_keeps_every_safe_character(s in hostile_text()) {
            let kept: String = s.chars().filter(|&c| !needs_escape(c)).collect();
            let e = escape_control(&s);
            // Unescaped characters survive in order (escapes only add ASCII).
            let shown: String = e.chars().filter(|&c| !printable_ascii(c)).collect();
            let want: String = kept.chars().filter(|&c| !printable_ascii(c)).collect();
            prop_assert_eq!(shown, want);
        }

        #[test]
        fn shlex_round_trip(
            a in hostile_text().prop_filter("no control/format", |s| !s.chars().any(needs_escape)),
            b in "[ -~]{0,40}",
        ) {
            let line = format!("tflock break --id {} -t {}", shell_quote(&a), shell_quote(&b));
            prop_assert_eq!(
                shlex::split(&line),
                Some(vec!["tflock".into(), "break".into(), "--id".into(), a.clone(), "-t".into(), b.clone()])
            );
        }

        #[test]
        fn quoted_never_has_raw_control(s in hostile_text()) {
            let q = shell_quote(&s);
            prop_assert!(!q.chars().any(needs_escape), "{:?}", q);
        }
    }

    proptest! {
        // Spawns a shell per case: fewer cases, still well under a few seconds.
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn bash_round_trip_any_text(s in hostile_text().prop_filter("no NUL", |s| !s.contains('\0'))) {
            if has_shell("bash") {
                let mut want = s.as_bytes().to_vec();
                want.push(0);
                prop_assert_eq!(through_shell("bash", &shell_quote(&s)), want);
            }
        }

        #[test]
        fn posix_sh_round_trip_without_controls(
            s in hostile_text().prop_filter("no control/format", |s| !s.chars().any(needs_escape)),
        ) {
            if has_shell("sh") {
                let mut want = s.as_bytes().to_vec();
                want.push(0);
                prop_assert_eq!(through_shell("sh", &shell_quote(&s)), want);
            }
        }
    }
}
