//! Durations as users write them: `90s`, `10m`, `1h30m`, or plain seconds.

use std::time::Duration;

/// Parses `90`, `90s`, `10m`, `2h`, `1h30m`; refuses zero, and anything
/// longer than a week (surely a typo).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("'{s}' is not a duration; write e.g. 90s, 10m or 1h30m (plain numbers are seconds)")
    };
    let text = s.trim();
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut any_unit = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
        any_unit = true;
    }
    if !number.is_empty() {
        if any_unit {
            return Err(bad());
        }
        total = number.parse().map_err(|_| bad())?;
    }
    if total == 0 {
        return Err(format!("'{s}': a timeout must be longer than zero"));
    }
    if total > 7 * 24 * 3600 {
        return Err(format!("'{s}': longer than a week; give at most 168h"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        for bad in [
            "",
            "0",
            "0s",
            "m",
            "10x",
            "1.5m",
            "-3",
            "10m5",
            "999999999999999999h",
            "200h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
