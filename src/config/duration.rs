//! Prometheus-style durations (`500ms`, `10s`, `1m30s`, `2h`) for the configuration's timeouts.
//!
//! Only the units a timeout can sensibly use are accepted (`h`, `m`, `s`, `ms`), in that order,
//! each at most once, like Prometheus' `model.ParseDuration`. It does not know which keys hold
//! durations nor their defaults (see [`super`]).

use std::time::Duration;

/// The units in the order they must appear, with their length in milliseconds.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `text` as a strictly positive duration, or says what is wrong with it.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    // Index into UNITS of the next unit allowed: units must go from largest to smallest.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid(text));
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        if unit_len == 0 && tail.is_empty() {
            return Err(format!(
                "invalid duration {text:?}: missing unit (ms, s, m or h)"
            ));
        }
        let (unit, tail) = tail.split_at(unit_len);
        let Some(offset) = UNITS[next_unit..].iter().position(|(u, _)| *u == unit) else {
            return Err(invalid(text));
        };
        let value: u64 = number.parse().map_err(|_| too_long(text))?;
        let ms = value
            .checked_mul(UNITS[next_unit + offset].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| too_long(text))?;
        total_ms = ms;
        next_unit += offset + 1;
        rest = tail;
    }
    if total_ms == 0 {
        return Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        ));
    }
    Ok(Duration::from_millis(total_ms))
}

fn invalid(text: &str) -> String {
    format!(
        "invalid duration {text:?}: expected a number and a unit (ms, s, m, h), like 10s or 1m30s"
    )
}

fn too_long(text: &str) -> String {
    format!("invalid duration {text:?}: too long")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_accepts_prometheus_units_in_order() {
        let cases = [
            ("1ms", 1),
            ("500ms", 500),
            ("10s", 10_000),
            ("1m", 60_000),
            ("1m30s", 90_000),
            ("2h", 7_200_000),
            ("1h2m3s4ms", 3_723_004),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
    }

    #[test]
    fn parse_duration_rejects_bad_text_with_a_reason() {
        let cases = [
            ("", "empty duration"),
            (
                "10",
                "invalid duration \"10\": missing unit (ms, s, m or h)",
            ),
            ("0s", "invalid duration \"0s\": must be greater than zero"),
            (
                "99999999999999999999h",
                "invalid duration \"99999999999999999999h\": too long",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(parse_duration(text), Err(message.to_owned()), "{text}");
        }
        for text in [
            "s", "10x", "1d", "30s1m", "1s1s", "-5s", "1.5s", " 10s", "10s ",
        ] {
            assert_eq!(parse_duration(text), Err(invalid(text)), "{text}");
        }
    }
}
