//! Durations on the command line (`--batching-window 5s`, `--duration 1h30m`), read the way people write them.

use std::time::Duration;

use jiff::SignedDuration;

/// `90s`, `5m`, `1h`, `250ms`, `2` (seconds), or a jiff duration (`1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if let Ok(n) = number.parse::<f64>()
        && n >= 0.0
    {
        let seconds = match unit {
            "" | "s" => Some(n),
            "ms" => Some(n / 1000.0),
            "m" | "min" => Some(n * 60.0),
            "h" => Some(n * 3600.0),
            _ => None,
        };
        if let Some(s) = seconds {
            return Ok(Duration::from_secs_f64(s));
        }
    }
    t.parse::<SignedDuration>()
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .ok_or_else(|| format!("not a duration: {text:?} (like 90s, 5m, 1h, 250ms)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("soon").is_err());
    }
}
