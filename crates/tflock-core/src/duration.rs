//! The one duration parser of the workspace: command-line flags (`--stale-after 1h`,
//! `--older-than 2d`, `--timeout 90`), tflock.toml, and Go durations from Terraform backend
//! blocks (`assume_role { duration = "1h30m" }`).
//!
//! Accepted: a bare whole number of seconds (`90`), or one or more `NUMBER UNIT` parts
//! (`45s`, `15m`, `1h30m`, `2d`, `1w`, `300ms`, `1.5h`, `1h0m0s`), optionally after a `+`.
//! Units: `ns`, `us` (`µs`, `μs`), `ms`, `s`, `m`, `h` as Go's `time.ParseDuration`, plus `d`
//! (24h) and `w` (7d). Every string Go accepts parses to the same value, except negative ones
//! (refused) and those above [`MAX`]; fractions are computed as Go computes them (truncated
//! to whole nanoseconds through a float64, bit for bit).
//!
//! Everything is checked integer arithmetic in nanoseconds: no input panics or wraps.

use std::fmt;
use std::time::Duration;

use crate::text::escape_control;

/// The longest duration accepted: 100 years of 365.25 days (36525d). Far beyond any lock
/// age or timeout, and well inside what `chrono::TimeDelta` and Go's `time.Duration` hold.
pub const MAX: Duration = Duration::from_secs(36_525 * 86_400);

const ACCEPTED: &str = "e.g. 90 (seconds), 45s, 15m, 1h30m, 1.5h, 2d, 1w, 300ms";
/// How much of the offending text an error shows.
const SHOWN_CHARS: usize = 64;

const NS: u128 = 1;
const US: u128 = 1_000;
const MS: u128 = 1_000_000;
const SEC: u128 = 1_000_000_000;

/// Why a duration was refused. Its `Display` is one line: the (escaped, shortened) text,
/// what is wrong, and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    text: String,
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    Empty,
    Negative,
    NoNumber(String),
    NoUnit(String),
    UnknownUnit(String),
    Malformed,
    TooLarge,
}

impl DurationError {
    fn new(text: &str, reason: Reason) -> Self {
        let shown: String = text.chars().take(SHOWN_CHARS).collect();
        let text = if shown.len() < text.len() {
            format!("{shown}...")
        } else {
            shown
        };
        DurationError { text, reason }
    }

    /// True when the text was a well-formed duration longer than [`MAX`].
    pub fn is_too_large(&self) -> bool {
        self.reason == Reason::TooLarge
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = escape_control(&self.text);
        let part = |s: &str| escape_control(s).into_owned();
        match &self.reason {
            Reason::Empty => write!(f, "empty duration ({ACCEPTED})"),
            Reason::Negative => write!(
                f,
                "invalid duration \"{text}\": negative durations are not accepted ({ACCEPTED})"
            ),
            Reason::NoNumber(unit) => write!(
                f,
                "invalid duration \"{text}\": a number must come before \"{}\" ({ACCEPTED})",
                part(unit)
            ),
            Reason::NoUnit(number) => write!(
                f,
                "invalid duration \"{text}\": {} has no unit ({ACCEPTED})",
                part(number)
            ),
            Reason::UnknownUnit(unit) => write!(
                f,
                "invalid duration \"{text}\": unknown unit \"{}\" (units: ns, us, ms, s, m, h, d, w; {ACCEPTED})",
                part(unit)
            ),
            Reason::Malformed => write!(f, "invalid duration \"{text}\" ({ACCEPTED})"),
            Reason::TooLarge => write!(
                f,
                "duration \"{text}\" is longer than the maximum of 36525d (100 years)"
            ),
        }
    }
}

impl std::error::Error for DurationError {}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => NS,
        "us" | "\u{b5}s" | "\u{3bc}s" => US,
        "ms" => MS,
        "s" => SEC,
        "m" => 60 * SEC,
        "h" => 3_600 * SEC,
        "d" => 86_400 * SEC,
        "w" => 604_800 * SEC,
        _ => return None,
    })
}

/// One `NUMBER UNIT` part, still as text.
struct Part<'a> {
    whole: &'a str,
    frac: &'a str,
    unit: &'a str,
}

/// Parses a duration (see the module documentation for the forms).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let err = |reason| DurationError::new(t, reason);
    if t.is_empty() {
        return Err(err(Reason::Empty));
    }
    let body = match t.as_bytes()[0] {
        b'-' => return Err(err(Reason::Negative)),
        b'+' => &t[1..],
        _ => t,
    };
    if body.is_empty() {
        return Err(err(Reason::Malformed));
    }
    // A bare whole number is seconds (tflock's flags; legacy `*_duration_seconds`).
    if body.bytes().all(|b| b.is_ascii_digit()) {
        let secs = digits_value(body).ok_or_else(|| err(Reason::TooLarge))?;
        return checked(secs.checked_mul(SEC)).ok_or_else(|| err(Reason::TooLarge));
    }

    // Syntax first, so a malformed text is reported as such even when it is also huge.
    let mut parts = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let whole = &rest[..whole_len];
        rest = &rest[whole_len..];
        let mut frac = "";
        let mut dot = false;
        if let Some(after) = rest.strip_prefix('.') {
            dot = true;
            let frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
            frac = &after[..frac_len];
            rest = &after[frac_len..];
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if whole.is_empty() && frac.is_empty() {
            if unit == "-" || unit.starts_with('-') {
                return Err(err(Reason::Negative));
            }
            return Err(err(Reason::NoNumber(if dot {
                format!(".{unit}")
            } else {
                unit.to_string()
            })));
        }
        if unit.is_empty() {
            let number = if dot {
                format!("{whole}.{frac}")
            } else {
                whole.to_string()
            };
            return Err(err(Reason::NoUnit(number)));
        }
        if unit_nanos(unit).is_none() {
            return Err(err(Reason::UnknownUnit(unit.to_string())));
        }
        parts.push(Part { whole, frac, unit });
    }

    let mut total: u128 = 0;
    for part in parts {
        let unit =
            unit_nanos(part.unit).ok_or_else(|| err(Reason::UnknownUnit(part.unit.into())))?;
        let whole = digits_value(part.whole).ok_or_else(|| err(Reason::TooLarge))?;
        let nanos = whole
            .checked_mul(unit)
            .and_then(|n| n.checked_add(fraction_nanos(part.frac, unit)))
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| err(Reason::TooLarge))?;
        if nanos > MAX.as_nanos() {
            return Err(err(Reason::TooLarge));
        }
        total = nanos;
    }
    checked(Some(total)).ok_or_else(|| err(Reason::TooLarge))
}

/// Decimal digits as a number, `None` past what can ever be below [`MAX`] in any unit.
fn digits_value(digits: &str) -> Option<u128> {
    let significant = digits.trim_start_matches('0');
    // MAX is about 3.2e18 ns; 30 digits are far beyond it and far inside u128.
    if significant.len() > 30 {
        return None;
    }
    significant.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)?.checked_add(u128::from(b - b'0'))
    })
}

/// `0.frac * unit` in nanoseconds, computed exactly as Go's `time.ParseDuration` does, so a
/// backend block's duration means the same to tflock as to Terraform: the leading fraction
/// digits that fit in 63 bits, a float64 scale, and truncation of
/// `float64(f) * (float64(unit) / scale)`. (Exact for up to 9 digits in s, m, h, d, w; Go
/// reads `0.3333333333333333333h` as exactly 20m.) Cannot panic: the product is below
/// `unit` (at most a week in ns) and an `as` cast saturates.
fn fraction_nanos(frac: &str, unit: u128) -> u128 {
    const LIMIT: u64 = 1 << 63;
    let mut f: u64 = 0;
    let mut scale: f64 = 1.0;
    for b in frac.bytes() {
        if f > (LIMIT - 1) / 10 {
            break;
        }
        let y = f * 10 + u64::from(b - b'0');
        if y > LIMIT {
            break;
        }
        f = y;
        scale *= 10.0;
    }
    if f == 0 {
        return 0;
    }
    let nanos = (f as f64 * (unit as f64 / scale)) as u64;
    u128::from(nanos)
}

fn checked(nanos: Option<u128>) -> Option<Duration> {
    let nanos = nanos.filter(|&n| n <= MAX.as_nanos())?;
    let secs = u64::try_from(nanos / SEC).ok()?;
    let sub = u32::try_from(nanos % SEC).ok()?;
    Some(Duration::new(secs, sub))
}

/// A `chrono::Duration` (`TimeDelta`) for date arithmetic; saturates instead of panicking.
pub fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// A duration [`human`] can show: `std::time::Duration` or `chrono::Duration`.
pub trait WholeSeconds {
    /// Whole seconds, negative values as 0.
    fn whole_seconds(&self) -> u64;
}

impl WholeSeconds for Duration {
    fn whole_seconds(&self) -> u64 {
        self.as_secs()
    }
}

impl WholeSeconds for chrono::TimeDelta {
    fn whole_seconds(&self) -> u64 {
        u64::try_from(self.num_seconds()).unwrap_or(0)
    }
}

/// `3h12m`, `45s`, `2d3h`: the two largest units, no zero parts (ages and timeouts in the
/// table). Negative durations show as `0s`. [`parse`] reads every output back.
pub fn human(d: impl WholeSeconds) -> String {
    let s = d.whole_seconds();
    let (days, hours, mins, secs) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) if secs == 0 => format!("{m}m"),
        (0, 0, m) => format!("{m}m{secs}s"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn parses_the_documented_forms() {
        let cases: &[(&str, Duration)] = &[
            ("90", secs(90)),
            ("45s", secs(45)),
            ("15m", secs(900)),
            ("1h30m", secs(5400)),
            ("2d", secs(2 * 86_400)),
            ("1w", secs(7 * 86_400)),
            ("1.5h", secs(5400)),
            ("300ms", Duration::from_millis(300)),
            ("1h0m0s", secs(3600)),
            ("0s", Duration::ZERO),
            ("0", Duration::ZERO),
            ("  15m\n", secs(900)),
            ("+1h", secs(3600)),
            ("2d3h", secs(2 * 86_400 + 3 * 3600)),
            ("00090", secs(90)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn parses_go_durations_as_go_does() {
        // Values from Go's time.ParseDuration tests and Terraform backend blocks.
        let cases: &[(&str, u64)] = &[
            ("1h", 3_600_000_000_000),
            ("900s", 900_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("5s", 5_000_000_000),
            ("30s", 30_000_000_000),
            ("1478s", 1_478_000_000_000),
            ("5.0s", 5_000_000_000),
            ("5.6s", 5_600_000_000),
            ("5.s", 5_000_000_000),
            (".5s", 500_000_000),
            ("1.0s", 1_000_000_000),
            ("1.00s", 1_000_000_000),
            ("1.004s", 1_004_000_000),
            ("1.0040s", 1_004_000_000),
            ("100.00100s", 100_001_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14_000_000_000),
            ("15m", 900_000_000_000),
            ("16h", 57_600_000_000_000),
            ("3h30m", 12_600_000_000_000),
            ("10.5s4m", 250_500_000_000),
            ("1m1s1ms1us1ns", 61_001_001_001),
            ("39h9m14.425s", 140_954_425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("9007199254.740993ms", 9_007_199_254_740_993),
            ("0.100000000000000000000h", 360_000_000_000),
            ("0.830103483285477580700h", 2_988_372_539_827),
            ("1s1s", 2_000_000_000),
        ];
        for (text, nanos) in cases {
            assert_eq!(
                parse(text).map(|d| d.as_nanos()),
                Ok(u128::from(*nanos)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "  ",
            "1x",
            "h",
            "10m5",
            "-5m",
            "-0s",
            "+",
            ".",
            ".s",
            "1.5",
            "1 h",
            "1h 30m",
            "3H",
            "1e400h",
            "1.2.3s",
            "s10",
            "1h-30m",
            "0x10s",
            "١s",
            "1\u{202e}h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn refuses_huge_without_panicking_or_wrapping() {
        for huge in [
            "18446744073709551615",
            "10000000000000000",
            "99999999999999d",
            "9999999999999999999999s",
            "99999999999999999999999999999999999999999999999999999999999s",
            "36526d",
            "5300w",
            "3155760000.000000001s",
            "36525d1ns",
            "876601h",
            "36524d24h1ns",
        ] {
            let e = parse(huge).unwrap_err();
            assert!(e.is_too_large(), "{huge}: {e}");
            assert!(e.to_string().contains("36525d (100 years)"), "{e}");
        }
        assert_eq!(parse("36525d"), Ok(MAX));
        assert_eq!(parse("3155760000"), Ok(MAX));
        assert_eq!(parse("36524d24h"), Ok(MAX));
        // Syntax errors are reported as such even when the number is also huge.
        assert!(!parse("99999999999999999999999x")
            .unwrap_err()
            .is_too_large());
    }

    #[test]
    fn errors_are_one_escaped_line_naming_the_text() {
        let e = parse("10m5").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid duration \"10m5\": 5 has no unit (e.g. 90 (seconds), 45s, 15m, 1h30m, 1.5h, 2d, 1w, 300ms)"
        );
        let e = parse("1\x1b[2Jx").unwrap_err().to_string();
        assert!(e.contains("1\\x1b[2Jx"), "{e}");
        assert!(!e.chars().any(crate::text::needs_escape), "{e}");
        let e = parse("5y").unwrap_err().to_string();
        assert!(e.contains("unknown unit \"y\""), "{e}");
        let long = "9".repeat(10_000) + "q";
        let e = parse(&long).unwrap_err().to_string();
        assert!(e.len() < 300, "{}", e.len());
        assert!(e.contains("..."));
        assert_eq!(
            parse("-1h").unwrap_err().to_string(),
            "invalid duration \"-1h\": negative durations are not accepted (e.g. 90 (seconds), 45s, 15m, 1h30m, 1.5h, 2d, 1w, 300ms)"
        );
    }

    #[test]
    fn to_chrono_saturates() {
        assert_eq!(to_chrono(secs(90)), chrono::Duration::seconds(90));
        assert_eq!(to_chrono(MAX), chrono::Duration::days(36_525));
        assert_eq!(to_chrono(Duration::MAX), chrono::TimeDelta::MAX);
    }

    #[test]
    fn humanises_std_and_chrono() {
        assert_eq!(human(chrono::Duration::seconds(5)), "5s");
        assert_eq!(human(chrono::Duration::seconds(125)), "2m5s");
        assert_eq!(human(chrono::Duration::minutes(60 * 3 + 12)), "3h12m");
        assert_eq!(human(chrono::Duration::hours(2)), "2h");
        assert_eq!(human(chrono::Duration::hours(51)), "2d3h");
        assert_eq!(human(chrono::Duration::seconds(-3)), "0s");
        assert_eq!(human(chrono::TimeDelta::MIN), "0s");
        assert_eq!(human(secs(45)), "45s");
        assert_eq!(human(secs(3600)), "1h");
        assert_eq!(human(Duration::from_millis(300)), "0s");
        assert_eq!(human(Duration::MAX), "213503982334601d7h");
    }

    /// A unit, its nanoseconds, and how many fraction digits stay exact in nanoseconds.
    fn unit() -> impl Strategy<Value = (&'static str, u128, usize)> {
        prop_oneof![
            Just(("ns", NS, 0)),
            Just(("us", US, 3)),
            Just(("µs", US, 3)),
            Just(("ms", MS, 6)),
            Just(("s", SEC, 9)),
            Just(("m", 60 * SEC, 9)),
            Just(("h", 3600 * SEC, 9)),
            Just(("d", 86_400 * SEC, 9)),
            Just(("w", 604_800 * SEC, 9)),
        ]
    }

    fn go_part() -> impl Strategy<Value = (String, u128)> {
        (unit(), 0u64..5000, 0usize..10, any::<u64>()).prop_map(
            |((name, ns, max_frac), whole, frac_len, frac_seed)| {
                let frac_len = frac_len.min(max_frac);
                if frac_len == 0 {
                    return (format!("{whole}{name}"), u128::from(whole) * ns);
                }
                let scale = 10u64.pow(frac_len as u32);
                let frac = frac_seed % scale;
                let text = format!("{whole}.{frac:0width$}{name}", width = frac_len);
                let nanos = u128::from(whole) * ns + u128::from(frac) * ns / u128::from(scale);
                (text, nanos)
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_any_text(s in crate::text::hostile_text()) {
            if let Err(e) = parse(&s) {
                let shown = e.to_string();
                prop_assert!(!shown.chars().any(crate::text::needs_escape), "{:?}", shown);
            }
        }

        #[test]
        fn never_panics_on_duration_like_text(s in "[0-9.smhdwnuµμ+ -]{0,40}") {
            if let Ok(d) = parse(&s) {
                prop_assert!(d <= MAX);
            }
        }

        #[test]
        fn go_forms_round_trip(parts in proptest::collection::vec(go_part(), 1..5)) {
            let text: String = parts.iter().map(|(t, _)| t.as_str()).collect();
            let want: u128 = parts.iter().map(|(_, n)| n).sum();
            match parse(&text) {
                Ok(d) => prop_assert_eq!(d.as_nanos(), want, "{}", text),
                Err(e) => {
                    prop_assert!(want > MAX.as_nanos(), "{}: {}", text, e);
                    prop_assert!(e.is_too_large());
                }
            }
        }

        #[test]
        fn human_forms_parse_back(s in 0u64..=MAX.as_secs()) {
            let shown = human(secs(s));
            let back = parse(&shown).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // human keeps the two largest units: what it drops is under an hour.
            prop_assert!(back <= secs(s));
            prop_assert!(secs(s) - back < secs(3600), "{} -> {} -> {:?}", s, shown, back);
        }

        #[test]
        fn exact_human_forms_round_trip(d in 0u64..36_000, h in 0u64..24, m in 0u64..60) {
            let (d, h, m) = if d > 0 { (d, h, 0) } else { (0, h, m) };
            let s = d * 86_400 + h * 3600 + m * 60;
            prop_assert_eq!(parse(&human(secs(s))), Ok(secs(s)));
        }
    }
}
