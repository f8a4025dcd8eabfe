//! Key paths (`vcenters[0].password_env`) and where they are in the YAML text.
//!
//! serde_yaml_ng reports the line of the errors it raises itself, but keeps no positions once a
//! value is parsed. Checks made after parsing (credentials, files, duplicate names) find the line
//! of the key they complain about by deserializing the text a second time with a seed that walks
//! down the path and fails on purpose at its end: serde_yaml_ng stamps that failure with the
//! position of the value, which is all we keep. It knows nothing of what the keys mean.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a key path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// A path from the document's root to a value, displayed like serde_yaml_ng's own paths.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyPath<'a>(pub(crate) &'a [Seg<'a>]);

impl fmt::Display for KeyPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => f.write_str(key)?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// The line and column (both from 1) where the value at `path` starts in `text`, if it is there.
pub(crate) fn locate(text: &str, path: &[Seg<'_>]) -> Option<(usize, usize)> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    let error = Seek { path }.deserialize(deserializer).err()?;
    if !error.to_string().contains(FOUND) {
        return None;
    }
    let location = error.location()?;
    Some((location.line(), location.column()))
}

/// The message of the error provoked at the path's end, to tell it apart from any other.
const FOUND: &str = "<located>";

struct Seek<'p> {
    path: &'p [Seg<'p>],
}

impl Seek<'_> {
    /// A scalar: the end of the path, or a dead end.
    fn leaf<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (wanted, rest) = match self.path.split_first() {
            None => return Err(de::Error::custom(FOUND)),
            Some((Seg::Key(wanted), rest)) => (wanted, rest),
            Some((Seg::Index(_), _)) => return Ok(()),
        };
        while let Some(key) = map.next_key::<KeyName>()? {
            if key.0.as_deref() == Some(*wanted) {
                return map.next_value_seed(Seek { path: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (wanted, rest) = match self.path.split_first() {
            None => return Err(de::Error::custom(FOUND)),
            Some((Seg::Index(wanted), rest)) => (wanted, rest),
            Some((Seg::Key(_), _)) => return Ok(()),
        };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek { path: rest }).map(|_| ())
    }
}

/// A mapping key: its text when it is a scalar, else nothing (it can't be on a path).
struct KeyName(Option<String>);

impl<'de> de::Deserialize<'de> for KeyName {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyNameVisitor)
    }
}

struct KeyNameVisitor;

impl<'de> Visitor<'de> for KeyNameVisitor {
    type Value = KeyName;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyName, E> {
        Ok(KeyName(Some(v.to_owned())))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyName, E> {
        Ok(KeyName(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyName, E> {
        Ok(KeyName(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyName, E> {
        Ok(KeyName(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyName, E> {
        Ok(KeyName(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeyName, E> {
        Ok(KeyName(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyName, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyName(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyName, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(KeyName(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
vcenters:
  - name: vc01
    url: https://vc01/sdk
  - name: vc02
    tls:
      ca_file: ca.pem
other: [1, 2]
";

    #[test]
    fn key_path_displays_like_serde_yaml_ng_paths() {
        let path = [
            Seg::Key("vcenters"),
            Seg::Index(1),
            Seg::Key("tls"),
            Seg::Key("ca_file"),
        ];
        assert_eq!(KeyPath(&path).to_string(), "vcenters[1].tls.ca_file");
    }

    #[test]
    fn locate_finds_the_line_and_column_of_a_value() {
        let at = |path: &[Seg<'_>]| locate(TEXT, path);
        assert_eq!(at(&[Seg::Key("vcenters")]), Some((2, 3)));
        assert_eq!(at(&[Seg::Key("vcenters"), Seg::Index(0)]), Some((2, 5)));
        assert_eq!(
            at(&[Seg::Key("vcenters"), Seg::Index(0), Seg::Key("url")]),
            Some((3, 10))
        );
        assert_eq!(
            at(&[Seg::Key("vcenters"), Seg::Index(1), Seg::Key("name")]),
            Some((4, 11))
        );
        let ca_file = [
            Seg::Key("vcenters"),
            Seg::Index(1),
            Seg::Key("tls"),
            Seg::Key("ca_file"),
        ];
        assert_eq!(at(&ca_file), Some((6, 16)));
        assert_eq!(at(&[Seg::Key("other"), Seg::Index(1)]), Some((7, 12)));
    }

    #[test]
    fn locate_returns_none_for_a_path_that_is_not_there() {
        assert_eq!(locate(TEXT, &[Seg::Key("vcenters"), Seg::Index(5)]), None);
        assert_eq!(locate(TEXT, &[Seg::Key("missing")]), None);
        assert_eq!(locate(TEXT, &[Seg::Key("other"), Seg::Key("x")]), None);
        assert_eq!(locate("{{{", &[Seg::Key("vcenters")]), None);
    }
}
