//! Byte sizes as people write them: `1GiB`, `512MiB`, `64KiB`, `10MB`, or a plain number of
//! bytes.

/// The units, longest first so that `MiB` is not read as `M` and `iB`.
const UNITS: &[(&str, u64)] = &[
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("kB", 1_000),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("K", 1 << 10),
    ("k", 1 << 10),
    ("M", 1 << 20),
    ("G", 1 << 30),
    ("T", 1 << 40),
    ("B", 1),
];

/// Parses a size; the error says how to write one.
pub fn parse(text: &str) -> Result<u64, String> {
    let usage = || {
        format!(
            "`{text}` is not a size: write bytes, or a number with KiB, MiB, GiB (or kB, MB, GB)"
        )
    };
    let trimmed = text.trim();
    let digits = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let number: u64 = number.parse().map_err(|_| usage())?;
    let unit = unit.trim();
    let multiplier = match unit {
        "" => 1,
        unit => UNITS.iter().find(|(name, _)| *name == unit).map(|(_, m)| *m).ok_or_else(usage)?,
    };
    number.checked_mul(multiplier).ok_or_else(|| format!("`{text}` is too large"))
}

/// `bytes` in the largest binary unit that divides it, as [`parse`] reads it back.
pub fn format(bytes: u64) -> String {
    for (name, size) in [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
    {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{name}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("512MiB"), Ok(512 << 20));
        assert_eq!(parse("64 KiB"), Ok(64 << 10));
        assert_eq!(parse("10MB"), Ok(10_000_000));
        assert_eq!(parse("2G"), Ok(2 << 30));
        assert_eq!(parse("1048576"), Ok(1 << 20));
        assert_eq!(parse("7B"), Ok(7));
    }

    #[test]
    fn nonsense_and_overflow_are_refused_saying_how() {
        for bad in ["", "GiB", "1.5GiB", "1 gigabyte", "-1", "1XiB"] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains("KiB, MiB, GiB"), "{bad}: {error}");
        }
        assert!(parse("99999999999TiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn formatted_sizes_read_back() {
        for bytes in [1 << 30, 3 << 20, 1000, 0, 5 << 40] {
            assert_eq!(parse(&format(bytes)), Ok(bytes));
        }
        assert_eq!(format(1 << 30), "1GiB");
    }
}
