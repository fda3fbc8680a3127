//! Secrets never printed: URLs in messages lose their userinfo, query values and fragment;
//! known secret values are blanked wherever they appear.
//!
//! What [`url`] does to every `scheme://...` it finds in a text (a whole URL, or one in
//! the middle of an error message):
//!
//! - userinfo: `https://user:pass@host` → `https://***@host` (up to the last `@` before the
//!   first `/`, `?`, `#` or space, as URL parsers read it);
//! - query: every value → `***` (`?sv=2024&sig=abc` → `?sv=***&sig=***`), a bare item with
//!   no `=` → `***`; keys stay (they say which option was wrong); empty values stay empty;
//! - fragment: `#...` → `#***`;
//! - scheme, host and path stay, except that a URL nested in the path is itself redacted.
//!
//! [`url_keeping`] keeps the values of an explicit allow-list of harmless option names,
//! compared with the percent-DECODED key (so `%73ig=` is `sig`, redacted unless `sig` is on
//! the list). A kept value that holds a URL (`endpoint=http%3A%2F%2Fu%3Ap%40h`) is shown
//! decoded and itself redacted (`endpoint=http://***@h`).
//!
//! A URL ends at whitespace, a control character or one of `"`, `<`, `>`, `` ` `` (none of
//! which a URL can hold unencoded). Punctuation right after a URL is taken as part of it, so
//! `?sig=abc: refused` shows as `?sig=*** refused`: losing the colon is the price of never
//! showing a secret's last character.

use std::fmt::{self, Write as _};

use crate::target::percent_decode;
use crate::text::needs_escape;

const MASK: &str = "***";
/// Nested URLs (an endpoint inside a query value inside ...) deeper than this are masked whole.
const MAX_DEPTH: usize = 4;

/// Every URL in `text` with userinfo, query values and fragment replaced by `***`.
pub fn url(text: &str) -> String {
    url_keeping(text, &[])
}

/// As [`url`], but the values of the query options named in `keep` (e.g. `region`,
/// `endpoint`, `profile`, `segments`, `key`, `prefix`) stay readable; a kept value that is
/// itself a URL is redacted in turn.
pub fn url_keeping(text: &str, keep: &[&str]) -> String {
    redact_text(text, keep, 0)
}

/// Displays a text through [`url`].
#[derive(Debug, Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&url(self.0))
    }
}

fn ends_url(c: char) -> bool {
    c.is_whitespace() || c.is_control() || needs_escape(c) || matches!(c, '"' | '<' | '>' | '`')
}

fn ends_authority(c: char) -> bool {
    matches!(c, '/' | '?' | '#') || c.is_whitespace() || c.is_control() || needs_escape(c)
}

fn redact_text(text: &str, keep: &[&str], depth: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos + 3);
        out.push_str(before);
        if depth >= MAX_DEPTH {
            // Absurdly nested: show nothing of it.
            let end = after.find(ends_url).unwrap_or(after.len());
            if end > 0 {
                out.push_str(MASK);
            }
            rest = &after[end..];
            continue;
        }
        rest = redact_one(after, keep, depth, &mut out);
    }
    out.push_str(rest);
    out
}

/// Redacts the URL starting right after its `://`; returns the text after the URL.
fn redact_one<'t>(s: &'t str, keep: &[&str], depth: usize, out: &mut String) -> &'t str {
    // Authority, with userinfo up to its last '@'.
    let auth_end = s.find(ends_authority).unwrap_or(s.len());
    let authority = &s[..auth_end];
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(MASK);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let s = &s[auth_end..];
    let end = s.find(ends_url).unwrap_or(s.len());
    let (token, after) = s.split_at(end);

    // Path: unchanged, except for URLs nested in it.
    let path_end = token.find(['?', '#']).unwrap_or(token.len());
    let (path, tail) = token.split_at(path_end);
    out.push_str(&redact_text(path, keep, depth + 1));

    let (query, fragment) = match tail.find('#') {
        Some(i) => (&tail[..i], Some(&tail[i + 1..])),
        None => (tail, None),
    };
    if let Some(query) = query.strip_prefix('?') {
        out.push('?');
        for (i, item) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            redact_item(item, keep, depth, out);
        }
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str(MASK);
        }
    }
    after
}

fn redact_item(item: &str, keep: &[&str], depth: usize, out: &mut String) {
    if item.is_empty() {
        return;
    }
    let Some((key, value)) = item.split_once('=') else {
        // A bare item may itself be a token (`?SECRET`): kept only when on the list.
        if keep.contains(&percent_decode(item).as_str()) {
            out.push_str(item);
        } else {
            out.push_str(MASK);
        }
        return;
    };
    out.push_str(key);
    out.push('=');
    if value.is_empty() {
        return;
    }
    if !keep.contains(&percent_decode(key).as_str()) {
        out.push_str(MASK);
        return;
    }
    // A kept value: shown as written, unless (once decoded) it holds a URL, whose own
    // userinfo and query are then redacted.
    let mut decoded = value.to_string();
    for _ in 0..MAX_DEPTH {
        if decoded.contains("://") {
            let inner = redact_text(&decoded, keep, depth + 1);
            out.push_str(&encode_for_display(&inner));
            return;
        }
        let next = percent_decode(&decoded);
        if next == decoded {
            break;
        }
        decoded = next;
    }
    if decoded.contains("://") || (decoded.contains('%') && decoded != percent_decode(&decoded)) {
        // Encoded more deeply than any real option value: show nothing of it.
        out.push_str(MASK);
    } else {
        out.push_str(value);
    }
}

/// Decoded text put back in a query value for display: what would end the value or the URL,
/// or reach the terminal raw (`&`, `#`, `%`, whitespace, control and format characters),
/// is percent-encoded again.
fn encode_for_display(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '&' | '#' | '%' | '"' | '<' | '>' | '`') || ends_url(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Shortest secret [`secrets`] looks for: shorter values would blank ordinary words.
pub const MIN_SECRET_LEN: usize = 4;

/// `text` with every occurrence of each known secret value (at least [`MIN_SECRET_LEN`]
/// bytes) replaced by `***`, also in its percent-encoded forms (upper- and lower-case hex),
/// as it appears inside URLs. Overlapping occurrences are masked as one.
pub fn secrets(text: &str, secrets: &[&str]) -> String {
    let mut masked = vec![false; text.len()];
    let mut any = false;
    for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
        let upper = percent_encode(secret, false);
        let lower = percent_encode(secret, true);
        for form in [*secret, upper.as_str(), lower.as_str()] {
            let mut start = 0;
            while let Some(i) = text.get(start..).and_then(|t| t.find(form)) {
                let at = start + i;
                masked[at..at + form.len()].fill(true);
                any = true;
                // Next search from the next character: overlapping occurrences count too.
                start = at + text[at..].chars().next().map_or(1, char::len_utf8);
            }
        }
    }
    if !any {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_mask = false;
    for (i, c) in text.char_indices() {
        if masked[i] {
            if !in_mask {
                out.push_str(MASK);
                in_mask = true;
            }
        } else {
            in_mask = false;
            out.push(c);
        }
    }
    out
}

/// Every byte but RFC 3986 unreserved ones as `%XX`.
fn percent_encode(s: &str, lower: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if lower {
            let _ = write!(out, "%{b:02x}");
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TARGET_KEEP: &[&str] = &["region", "endpoint", "profile", "segments", "key", "prefix"];

    #[test]
    fn userinfo_and_query_values_go() {
        assert_eq!(url("https://user:pass@host/x"), "https://***@host/x");
        assert_eq!(url("https://user@host"), "https://***@host");
        assert_eq!(url("https://u:p@ss@host:443/"), "https://***@host:443/");
        assert_eq!(
            url("https://acct.blob.core.windows.net/c?sv=2024&sig=abc"),
            "https://acct.blob.core.windows.net/c?sv=***&sig=***"
        );
        assert_eq!(
            url("https://h/p?TOKEN&a=&b=1#frag"),
            "https://h/p?***&a=&b=***#***"
        );
        assert_eq!(url("s3://bucket/key"), "s3://bucket/key");
        assert_eq!(url("no url here: a=b&c=d"), "no url here: a=b&c=d");
        assert_eq!(url(""), "");
        assert_eq!(url("://x:y@z?q=1"), "://***@z?q=***");
    }

    #[test]
    fn urls_inside_messages() {
        assert_eq!(
            url("error: listing https://a:b@h/x?sig=1: refused"),
            "error: listing https://***@h/x?sig=*** refused"
        );
        assert_eq!(
            url("GET \"https://h/x?sig=s3cr3t\" failed; retried http://u:p@h2/"),
            "GET \"https://h/x?sig=***\" failed; retried http://***@h2/"
        );
        assert_eq!(
            url("two: azblob://a/c?sas=X s3://b?region=eu-west-1"),
            "two: azblob://a/c?sas=*** s3://b?region=***"
        );
        assert_eq!(
            url("<https://h/?code=Z>\nnext"),
            "<https://h/?code=***>\nnext"
        );
        // A URL nested in a path is redacted too.
        assert_eq!(
            url("https://proxy/fwd/https://u:p@inner/x"),
            "https://proxy/fwd/https://***@inner/x"
        );
    }

    #[test]
    fn allow_list_keeps_harmless_options() {
        assert_eq!(
            url_keeping(
                "s3://b/k?region=eu-west-1&profile=ops&secret_key=AKIA&prefix=env:/",
                TARGET_KEEP
            ),
            "s3://b/k?region=eu-west-1&profile=ops&secret_key=***&prefix=env:/"
        );
        // The decoded key decides, whatever its encoding.
        assert_eq!(
            url_keeping("azblob://a/c?%73ig=S&re%67ion=eu&%72egion=x", TARGET_KEEP),
            "azblob://a/c?%73ig=***&re%67ion=eu&%72egion=x"
        );
        assert_eq!(
            url_keeping("s3://b?Region=x", TARGET_KEEP),
            "s3://b?Region=***"
        );
    }

    #[test]
    fn kept_endpoint_is_itself_redacted() {
        assert_eq!(
            url_keeping(
                "azblob://a/c?endpoint=http%3A%2F%2Fu%3Ap%40127.0.0.1%3A10000",
                TARGET_KEEP
            ),
            "azblob://a/c?endpoint=http://***@127.0.0.1:10000"
        );
        assert_eq!(
            url_keeping("s3://b?endpoint=http://u:p@h:9000&region=x", TARGET_KEEP),
            "s3://b?endpoint=http://***@h:9000&region=x"
        );
        assert_eq!(
            url_keeping(
                "s3://b?endpoint=https%3A%2F%2Fh%2F%3Fsig%3Dz%26region%3Dr",
                TARGET_KEEP
            ),
            "s3://b?endpoint=https://h/?sig=***%26region=r"
        );
        // Doubly encoded: decoded until it shows the URL.
        assert_eq!(
            url_keeping(
                "s3://b?endpoint=http%253A%252F%252Fu%253Ap%2540h",
                TARGET_KEEP
            ),
            "s3://b?endpoint=http://***@h"
        );
        // Plain endpoints stay as written.
        assert_eq!(
            url_keeping("s3://b?endpoint=http%3A%2F%2F127.0.0.1%3A5000", TARGET_KEEP),
            "s3://b?endpoint=http://127.0.0.1:5000"
        );
        // Decoding never brings control characters to the output.
        let out = url_keeping("s3://b?endpoint=http%3A%2F%2Fh%1B%5B2J%0A", TARGET_KEEP);
        assert!(!out.chars().any(needs_escape), "{out:?}");
        // Absurd nesting is masked.
        let mut nested = "http://u:p@h".to_string();
        for _ in 0..8 {
            nested = format!("s3://b?endpoint={nested}");
        }
        let out = url_keeping(&nested, TARGET_KEEP);
        assert!(!out.contains("u:p"), "{out}");
    }

    #[test]
    fn known_secrets_are_blanked() {
        assert_eq!(
            secrets(
                "key AKIAXYZ and token s+cr/t= again AKIAXYZ",
                &["AKIAXYZ", "s+cr/t="]
            ),
            "key *** and token *** again ***"
        );
        assert_eq!(
            secrets("url ?sig=s%2Bcr%2Ft%3D or s%2bcr%2ft%3d", &["s+cr/t="]),
            "url ?sig=*** or ***"
        );
        // Short values are not secrets worth blanking (they would hit ordinary words).
        assert_eq!(secrets("a bc abc", &["", "a", "abc"]), "a bc abc");
        // Overlaps and repeats are masked whole.
        assert_eq!(secrets("xxabcdefyy", &["abcd", "cdef"]), "xx***yy");
        assert_eq!(secrets("aaaaaa", &["aaaa"]), "***");
        assert_eq!(secrets("é-ñsecretñ-é", &["ñsecretñ"]), "é-***-é");
        assert_eq!(secrets("nothing", &[]), "nothing");
    }

    #[test]
    fn redacted_displays_through_url() {
        assert_eq!(
            Redacted("see https://a:b@h?x=1").to_string(),
            "see https://***@h?x=***"
        );
    }

    /// A value a URL can legally hold in a query (no `&`, `#`), or as a password (no
    /// `@ / ? #`): unreserved, sub-delims, `:`, and percent-encoded bytes.
    fn secret() -> impl Strategy<Value = String> {
        "SECRET[A-Za-z0-9._~!$'()*+,;=:-]{4,20}(%[0-9A-F]{2}){0,3}[A-Za-z0-9]{1,4}"
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-z0-9._-]{1,10}"
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            word(),
            Just("sig".to_string()),
            Just("%73ig".to_string()),
            Just("re%67io".to_string()),
            Just("REGION".to_string()),
        ]
        .prop_filter("not a kept option", |k| {
            !TARGET_KEEP.contains(&percent_decode(k).as_str())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn no_generated_secret_survives(
            scheme in "[a-z][a-z0-9+.-]{0,6}",
            user in proptest::option::of(word()),
            password in secret(),
            host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
            path in proptest::collection::vec(word(), 0..4),
            query in proptest::collection::vec((key(), secret()), 0..5),
            kept in proptest::collection::vec((prop_oneof![Just("region"), Just("profile")], word()), 0..3),
            fragment in proptest::option::of(secret()),
            before in "[ -~]{0,20}",
            after in "( [ -~]{0,20})?",
            use_userinfo in any::<bool>(),
        ) {
            let mut u = format!("{scheme}://");
            if use_userinfo {
                if let Some(user) = &user {
                    u.push_str(&format!("{user}:"));
                }
                u.push_str(&format!("{password}@"));
            }
            u.push_str(&host);
            for seg in &path {
                u.push('/');
                u.push_str(seg);
            }
            let mut items: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            items.extend(kept.iter().map(|(k, v)| format!("{k}={v}")));
            if !items.is_empty() {
                u.push('?');
                u.push_str(&items.join("&"));
            }
            if let Some(f) = &fragment {
                u.push('#');
                u.push_str(f);
            }
            // Alone, and inside a sentence.
            for text in [u.clone(), format!("{before} {u}{after}")] {
                for out in [url(&text), url_keeping(&text, TARGET_KEEP)] {
                    for (_, v) in &query {
                        prop_assert!(!out.contains(v.as_str()), "{v} in {out}");
                    }
                    if use_userinfo {
                        prop_assert!(!out.contains(password.as_str()), "{password} in {out}");
                    }
                    if let Some(f) = &fragment {
                        prop_assert!(!out.contains(f.as_str()), "{f} in {out}");
                    }
                }
                let out = url_keeping(&text, TARGET_KEEP);
                for (k, v) in &kept {
                    let kept_item = format!("{k}={v}");
                    prop_assert!(out.contains(&kept_item), "{kept_item} not in {out}");
                }
            }
        }

        #[test]
        fn never_panics_and_adds_no_control(s in crate::text::hostile_text(), keep in proptest::collection::vec("[a-z%0-9]{0,6}", 0..3)) {
            let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
            let out = url_keeping(&s, &keep);
            let before = s.chars().filter(|&c| needs_escape(c)).count();
            let after = out.chars().filter(|&c| needs_escape(c)).count();
            prop_assert!(after <= before);
        }

        #[test]
        fn url_like_garbage_never_panics(s in "([a-z]{0,3}(://)?[@?&#=%/:a-f0-9 \"'<>]{0,8}){0,8}") {
            let _ = url_keeping(&s, TARGET_KEEP);
            let _ = secrets(&s, &["abcd", "%2F%", "://"]);
        }

        #[test]
        fn secrets_never_survive(
            prefix in "[ -~]{0,20}",
            secret in "[ -)+-~é]{4,16}",
            suffix in "[ -~]{0,20}",
        ) {
            let text = format!("{prefix}{secret}{suffix}{secret}");
            let out = secrets(&text, &[&secret]);
            prop_assert!(!out.contains(secret.as_str()), "{out}");
        }
    }
}
