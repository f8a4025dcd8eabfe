//! Entity names as the vSphere Client shows them.
//!
//! vCenter sends `ManagedEntity.name` with three characters percent-escaped: `%` as `%25`, `/`
//! as `%2f` and `\` as `%5c` (either case), so a cluster called `Prod/DMZ 100%` arrives as
//! `Prod%2fDMZ 100%25`. Every other `%` sequence is left as it is: vCenter escapes a `%` only
//! when it does not already start one of these three. The exporter decodes names once, where
//! they are read from an answer, so labels carry what an administrator typed and sees.
//!
//! It owns only that decoding, not where names are read (see [`super::properties`]).

use std::borrow::Cow;

/// The name vSphere sent, with `%25`, `%2f`/`%2F` and `%5c`/`%5C` decoded; borrowed when
/// there is nothing to decode (the usual case).
pub fn decode_entity_name(name: &str) -> Cow<'_, str> {
    if !name.contains('%') {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or("");
        let decoded = match escape.to_ascii_lowercase().as_str() {
            "%25" => Some('%'),
            "%2f" => Some('/'),
            "%5c" => Some('\\'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_escapes_vsphere_uses_are_decoded_in_either_case() {
        let cases = [
            ("DC0_C0_RP0_VM0", "DC0_C0_RP0_VM0"),
            ("Prod%2fDMZ 100%25", "Prod/DMZ 100%"),
            ("Prod%2FDMZ", "Prod/DMZ"),
            ("corp%5cvm01", "corp\\vm01"),
            ("corp%5Cvm01", "corp\\vm01"),
            ("%25%25", "%%"),
            // `%252f` is an escaped `%` followed by `2f`: decoded once, not twice.
            ("%252f", "%2f"),
            ("Zürich %2f Genève", "Zürich / Genève"),
        ];
        for (sent, shown) in cases {
            assert_eq!(decode_entity_name(sent), shown, "{sent}");
        }
    }

    #[test]
    fn other_percent_sequences_and_a_trailing_percent_are_kept() {
        let cases = [
            ("50%", "50%"),
            ("50%2", "50%2"),
            ("%20space", "%20space"),
            ("%zz", "%zz"),
            ("%ü", "%ü"),
            ("a%%2fb", "a%/b"),
        ];
        for (sent, shown) in cases {
            assert_eq!(decode_entity_name(sent), shown, "{sent}");
        }
    }

    #[test]
    fn names_without_escapes_are_borrowed() {
        assert!(matches!(decode_entity_name("vm-01"), Cow::Borrowed(_)));
    }
}
