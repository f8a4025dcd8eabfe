//! The vSphere tag keys: `tags_interval`, `tag_labels`, `tag_info_categories` and
//! `backup_policy_categories`. Categories are named as vCenter shows them (case matters, as
//! it does to vCenter); each list refuses empty names and duplicates. Whether a tag label
//! clashes with the labels `vsphere_vm_info` already has, owner labels among them, is checked
//! in [`super`], where both are known.
//!
//! The tags themselves are read by [`crate::source`]'s `tags` source; this module only builds
//! its settings.

use std::time::Duration;

use super::locate::Seg;
use super::scalar::Timeout;
use super::{ConfigError, Loader};
use crate::backup::labels::label_name;

/// Default time between two reads of the tags: tag changes are not pushed.
pub const DEFAULT_TAGS_INTERVAL: Duration = Duration::from_secs(300);

/// What the `tags` source reads and how the collectors use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagsConfig {
    /// Time between two reads (`tags_interval`, default 5 min, at least 30 s).
    pub interval: Duration,
    /// Categories that become labels of `vsphere_vm_info`, in order.
    pub labels: Vec<TagLabel>,
    /// Categories whose tags get a `vsphere_vm_tag_info` series per VM.
    pub info_categories: Vec<String>,
    /// Categories whose tags put a VM into a backup policy.
    pub backup_policy_categories: Vec<String>,
}

impl Default for TagsConfig {
    fn default() -> Self {
        TagsConfig {
            interval: DEFAULT_TAGS_INTERVAL,
            labels: Vec::new(),
            info_categories: Vec::new(),
            backup_policy_categories: Vec::new(),
        }
    }
}

impl TagsConfig {
    /// True when any key asks for tags: only then does the source run.
    pub fn wanted(&self) -> bool {
        !self.labels.is_empty()
            || !self.info_categories.is_empty()
            || !self.backup_policy_categories.is_empty()
    }

    /// Every category some key names, once each.
    pub fn categories(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .labels
            .iter()
            .map(|l| l.category.as_str())
            .chain(self.info_categories.iter().map(String::as_str))
            .chain(self.backup_policy_categories.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// One `tag_labels` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagLabel {
    /// The tag category's name.
    pub category: String,
    /// Its label name (see [`label_name`]).
    pub label: String,
}

/// The tag keys of the top level, taken out of [`super::raw::RawConfig`].
#[derive(Debug, Default)]
pub(crate) struct RawTags {
    pub(crate) tags_interval: Option<Timeout>,
    pub(crate) tag_labels: Vec<String>,
    pub(crate) tag_info_categories: Vec<String>,
    pub(crate) backup_policy_categories: Vec<String>,
}

impl Loader<'_> {
    /// Builds the tag settings from the raw keys.
    pub(super) fn tags(&self, raw: RawTags) -> Result<TagsConfig, ConfigError> {
        let interval = raw.tags_interval.map_or(DEFAULT_TAGS_INTERVAL, |t| t.0);
        if interval < Duration::from_secs(30) {
            return Err(self.invalid(
                &[Seg::Key("tags_interval")],
                "must be at least 30s (every read lists the tags of every VM)".to_owned(),
            ));
        }
        let labels = self.categories("tag_labels", raw.tag_labels)?;
        let mut out: Vec<TagLabel> = Vec::with_capacity(labels.len());
        for (index, category) in labels.into_iter().enumerate() {
            let label = label_name(&category);
            if let Some(other) = out.iter().position(|o| o.label == label) {
                let message =
                    format!("{category:?} becomes label {label:?}, as tag_labels[{other}] does");
                return Err(self.invalid(&[Seg::Key("tag_labels"), Seg::Index(index)], message));
            }
            out.push(TagLabel { category, label });
        }
        Ok(TagsConfig {
            interval,
            labels: out,
            info_categories: self.categories("tag_info_categories", raw.tag_info_categories)?,
            backup_policy_categories: self
                .categories("backup_policy_categories", raw.backup_policy_categories)?,
        })
    }

    /// A list of category names: none empty, none twice.
    fn categories(
        &self,
        key: &'static str,
        names: Vec<String>,
    ) -> Result<Vec<String>, ConfigError> {
        for (index, name) in names.iter().enumerate() {
            let path = [Seg::Key(key), Seg::Index(index)];
            if name.trim().is_empty() {
                return Err(self.invalid(&path, "must name a tag category".to_owned()));
            }
            if let Some(first) = names[..index].iter().position(|n| n == name) {
                let message = format!("{name:?} is listed twice (also {key}[{first}])");
                return Err(self.invalid(&path, message));
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const VCENTER: &str =
        "vcenters:\n  - {name: vc01, url: \"https://vc01/sdk\", username: u, password_env: HOME}\n";

    fn load(extra: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(&format!("{VCENTER}{extra}"), "bad.yml")
    }

    #[test]
    fn no_tag_keys_run_no_tags_source() {
        let c = load("").unwrap();
        assert_eq!(c.tags, TagsConfig::default());
        assert!(!c.tags.wanted());
        assert_eq!(c.tags.interval, Duration::from_secs(300));
    }

    #[test]
    fn tag_keys_are_read_with_their_labels() {
        let c = load(concat!(
            "tags_interval: 10m\n",
            "tag_labels: [Owner, Cost Center]\n",
            "tag_info_categories: [Owner]\n",
            "backup_policy_categories: [Backup Policy, Veeam Jobs]\n",
        ))
        .unwrap();
        assert!(c.tags.wanted());
        assert_eq!(c.tags.interval, Duration::from_secs(600));
        let labels: Vec<(&str, &str)> = c
            .tags
            .labels
            .iter()
            .map(|l| (l.category.as_str(), l.label.as_str()))
            .collect();
        assert_eq!(labels, [("Owner", "owner"), ("Cost Center", "cost_center")]);
        assert_eq!(c.tags.info_categories, ["Owner"]);
        assert_eq!(
            c.tags.backup_policy_categories,
            ["Backup Policy", "Veeam Jobs"]
        );
        assert_eq!(
            c.tags.categories(),
            ["Backup Policy", "Cost Center", "Owner", "Veeam Jobs"]
        );
        // One key is enough to run the source.
        assert!(
            load("backup_policy_categories: [Backup]\n")
                .unwrap()
                .tags
                .wanted()
        );
    }

    #[test]
    fn bad_tag_keys_get_exact_errors() {
        let cases = [
            (
                "tags_interval: 10s\ntag_labels: [Owner]\n",
                "bad.yml:3:16: tags_interval: must be at least 30s (every read lists the tags of every VM)",
            ),
            (
                "tags_interval: soon\n",
                "bad.yml:3:16: tags_interval: invalid duration \"soon\": expected a number and a unit (ms, s, m, h), like 10s or 1m30s",
            ),
            (
                "tag_labels: [Owner, \"\"]\n",
                "bad.yml:3:21: tag_labels[1]: must name a tag category",
            ),
            (
                "tag_labels: [Owner, OWNER]\n",
                "bad.yml:3:21: tag_labels[1]: \"OWNER\" becomes label \"owner\", as tag_labels[0] does",
            ),
            (
                "tag_labels: [Guest ID]\n",
                "bad.yml:3:14: tag_labels[0]: \"Guest ID\" becomes label \"guest_id\", which vsphere_vm_info already has",
            ),
            (
                "owner_labels: [owner]\ntag_labels: [Owner]\n",
                "bad.yml:4:14: tag_labels[0]: \"Owner\" becomes label \"owner\", as owner_labels[0] does",
            ),
            (
                "tag_info_categories: [Owner, Owner]\n",
                "bad.yml:3:30: tag_info_categories[1]: \"Owner\" is listed twice (also tag_info_categories[0])",
            ),
            (
                "backup_policy_categories: [\" \"]\n",
                "bad.yml:3:28: backup_policy_categories[0]: must name a tag category",
            ),
            (
                "backup_policy_categories: Backup\n",
                "bad.yml:3:27: backup_policy_categories: invalid type: string \"Backup\", expected a sequence",
            ),
        ];
        for (extra, want) in cases {
            let got = load(extra).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), Some(want), "{extra}");
        }
    }
}
