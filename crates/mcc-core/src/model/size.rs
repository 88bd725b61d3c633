//! Sizes in bytes as users write them: `1048576`, `64M`, `1G`, `512KiB`.
//! Suffixes are binary (K = 1024), as the docker CLI's.

/// Parses a size; `flag` names it in the error.
pub fn parse_size(flag: &str, s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{flag} '{s}' is not a size; give bytes or a number with K, M, G or T, e.g. 64M or 1G"
        )
    };
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    let v = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{flag} '{s}' is too large"))?;
    if v == 0 {
        return Err(format!(
            "{flag} '{s}' is zero; give a size above 0, e.g. 64M"
        ));
    }
    Ok(v)
}

/// A size for people: `64 MiB`, `1.5 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("--size", "1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("--size", "64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("--size", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("--size", "512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("--size", "2gb").unwrap(), 2 << 30);
        for bad in [
            "",
            "M",
            "-1",
            "1.5G",
            "12X",
            "0",
            "0M",
            "99999999999999999999",
            "20000000T",
        ] {
            let e = parse_size("--size", bad).unwrap_err();
            assert!(e.contains("--size"), "{bad}: {e}");
        }
        assert_eq!(human(64 << 20), "64 MiB");
        assert_eq!(human(1536 << 20), "1.5 GiB");
    }
}
