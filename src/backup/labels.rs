//! Custom attribute names as Prometheus label names (`owner_labels`): `Cost Center` becomes
//! `cost_center`. The configuration refuses names that come out empty, reserved or twice.

/// The label name for a custom attribute: lower case, every character outside `[a-z0-9_]`
/// replaced by `_`, leading underscores dropped (`__` names are Prometheus' own), and
/// `attribute_` put before a name that would start with a digit or be empty.
pub fn label_name(attribute: &str) -> String {
    let mapped: String = attribute
        .trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches('_');
    match trimmed.chars().next() {
        Some(c) if !c.is_ascii_digit() => trimmed.to_owned(),
        _ => format!("attribute_{trimmed}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_become_valid_label_names() {
        let cases = [
            ("owner", "owner"),
            ("Cost Center", "cost_center"),
            ("team-name", "team_name"),
            ("__secret", "secret"),
            ("2nd owner", "attribute_2nd_owner"),
            ("Ünïcode", "n_code"),
            ("", "attribute_"),
        ];
        for (attribute, want) in cases {
            let got = label_name(attribute);
            assert_eq!(got, want, "{attribute:?}");
        }
    }
}
