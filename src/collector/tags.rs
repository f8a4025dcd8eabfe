//! vSphere tags on VMs, from the `tags` source: `vsphere_vm_tag_info` for the categories named
//! in `tag_info_categories` (one series per VM and tag of those categories: the user chooses
//! the cardinality), and `vsphere_vm_backup_policy_tags` for every VM that is not a template
//! when `backup_policy_categories` is set (one series per VM). The `tag_labels` of
//! `vsphere_vm_info` are the `vm` collector's.
//!
//! Nothing is written while the tags cannot be read: a VM is never reported outside every
//! backup policy because the REST API was down.

use super::catalogue::{VM_BACKUP_POLICY_TAGS, VM_TAG_INFO};
use super::{CollectError, Collector, Context, Sink};
use crate::source::INVENTORY;
use crate::source::tags::{TAGS, VmTags};

pub struct Tags;

impl Collector for Tags {
    fn name(&self) -> &'static str {
        "tags"
    }

    fn reads(&self) -> &'static [&'static str] {
        &[INVENTORY, TAGS]
    }

    fn per_vm(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        let Some(tags) = ctx.source::<VmTags>(TAGS) else {
            return Ok(());
        };
        let info = &ctx.config.tags.info_categories;
        let policy = &ctx.config.tags.backup_policy_categories;
        for vm in ctx.vms() {
            let on_vm = tags.of(&vm.id);
            for t in on_vm.iter().filter(|t| info.contains(&t.category)) {
                out.gauge(&VM_TAG_INFO, &[&vm.id, &vm.name, &t.category, &t.tag], 1.0);
            }
            if policy.is_empty() || vm.template || tags.unreadable.contains(&vm.id) {
                continue;
            }
            let n = on_vm
                .iter()
                .filter(|t| policy.contains(&t.category))
                .count();
            out.gauge(&VM_BACKUP_POLICY_TAGS, &[&vm.id, &vm.name], n as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::collector::test_support::{config, run_with, samples, value};
    use crate::source::tags::AttachedTag;
    use crate::source::{Erased, SourceStatus};
    use crate::vsphere::Inventory;
    use crate::vsphere::model::Vm;

    fn inventory() -> Inventory {
        let mut inv = Inventory::default();
        for (id, name, template) in [
            ("vm-1", "db01", false),
            ("vm-2", "web01", false),
            ("vm-3", "tmpl", true),
        ] {
            inv.vms.insert(
                id.into(),
                Arc::new(Vm {
                    id: id.into(),
                    name: name.into(),
                    template,
                    ..Default::default()
                }),
            );
        }
        inv
    }

    fn tags() -> Erased {
        let tag = |category: &str, tag: &str| AttachedTag {
            category: category.into(),
            tag: tag.into(),
        };
        let mut t = VmTags::default();
        t.vms.insert(
            "vm-1".into(),
            vec![
                tag("Backup", "gold"),
                tag("Owner", "team-a"),
                tag("Owner", "team-b"),
            ],
        );
        Erased {
            name: TAGS,
            version: 1,
            value: Some(Arc::new(t)),
            status: SourceStatus::default(),
        }
    }

    #[test]
    fn policy_counts_skip_templates_and_info_follows_the_chosen_categories() {
        let mut cfg = config();
        cfg.tags.backup_policy_categories = vec!["Backup".into()];
        cfg.tags.info_categories = vec!["Owner".into()];
        cfg.tags.labels = vec![crate::config::TagLabel {
            category: "Owner".into(),
            label: "owner".into(),
        }];
        let out = run_with(&inventory(), &cfg, &[tags()]);
        let policy = "vsphere_vm_backup_policy_tags";
        assert_eq!(value(&out, policy, &[("vm_id", "vm-1")]), Some(1.0));
        assert_eq!(value(&out, policy, &[("vm_id", "vm-2")]), Some(0.0));
        assert_eq!(value(&out, policy, &[("vm_id", "vm-3")]), None, "template");
        let info = samples(&out, "vsphere_vm_tag_info");
        let got: Vec<(&str, &str)> = info
            .iter()
            .map(|s| (s.labels["category"].as_str(), s.labels["tag"].as_str()))
            .collect();
        assert_eq!(got, [("Owner", "team-a"), ("Owner", "team-b")]);
        let owner = |id: &str| {
            samples(&out, "vsphere_vm_info")
                .into_iter()
                .find(|s| s.labels["vm_id"] == id)
                .map(|s| s.labels["owner"].clone())
        };
        assert_eq!(owner("vm-1").as_deref(), Some("team-a,team-b"));
        assert_eq!(owner("vm-2").as_deref(), Some(""));
    }

    #[test]
    fn without_tags_nothing_is_written_and_vm_info_keeps_empty_labels() {
        let mut cfg = config();
        cfg.tags.backup_policy_categories = vec!["Backup".into()];
        cfg.tags.labels = vec![crate::config::TagLabel {
            category: "Owner".into(),
            label: "owner".into(),
        }];
        let out = run_with(&inventory(), &cfg, &[]);
        assert!(samples(&out, "vsphere_vm_backup_policy_tags").is_empty());
        let info = samples(&out, "vsphere_vm_info");
        assert_eq!(info.len(), 3);
        assert!(info.iter().all(|s| s.labels["owner"].is_empty()));
    }
}
