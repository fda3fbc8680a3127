//! Durations on the command line (`90s`, `15m`, `1h30m`, `2d`) and for humans (`3h12m`).

use chrono::Duration;

/// Parses `1h30m`, `45s`, `2d`, `0s`; a bare number is seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration (use e.g. 30m, 2h, 1d)".into());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::seconds(secs as i64));
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!(
                    "invalid duration {t:?}: unknown unit {c:?} (use s, m, h, d, w)"
                ))
            }
        };
        let n: i64 = number
            .parse()
            .map_err(|_| format!("invalid duration {t:?}: a number must come before {c:?}"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {t:?} is too large"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "invalid duration {t:?}: {number} has no unit (use e.g. {number}m)"
        ));
    }
    Ok(Duration::seconds(total))
}

/// `3h12m`, `45s`, `2d3h`: the two largest units, no zero parts.
pub fn human(d: Duration) -> String {
    let s = d.num_seconds().max(0);
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

    #[test]
    fn parses() {
        assert_eq!(parse("90").unwrap(), Duration::seconds(90));
        assert_eq!(parse("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse("2d").unwrap(), Duration::days(2));
        assert_eq!(parse("0s").unwrap(), Duration::zero());
        for bad in ["", "1x", "h", "10m5", "-5m", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn humanises() {
        assert_eq!(human(Duration::seconds(5)), "5s");
        assert_eq!(human(Duration::seconds(125)), "2m5s");
        assert_eq!(human(Duration::minutes(60 * 3 + 12)), "3h12m");
        assert_eq!(human(Duration::hours(2)), "2h");
        assert_eq!(human(Duration::hours(51)), "2d3h");
        assert_eq!(human(Duration::seconds(-3)), "0s");
    }
}
