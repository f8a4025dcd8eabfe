//! The `tags` source: each vCenter's vSphere tags on VMs, read from the Automation REST API
//! ([`crate::vsphere::rest`]) every `tags_interval` (default 5 min: vCenter does not push tag
//! changes) and published as a [`VmTags`] snapshot for the `tags` and `vm` collectors.
//!
//! A cycle starts once the inventory mirror is in sync: it lists the category and tag ids
//! (two requests), reads the names of those it has not seen (cached across cycles, read again
//! when an unknown id appears, and all again every [`NAMES_REFRESH_CYCLES`] cycles so a renamed
//! tag shows), then asks for the tags attached to the mirror's VMs in batches of
//! [`ATTACHED_BATCH`]. A failed cycle publishes nothing (the collectors that need tags are
//! left out, nothing stale is served) and is logged once until it changes or clears.
//!
//! It runs only when the configuration asks for tags (`tag_labels`, `tag_info_categories`,
//! `backup_policy_categories`), and logs out of its REST session when the target stops.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{
    Erased, Feed, Moved, Publisher, RunningSource, Settling, SourceKind, SourceStatus,
    StartContext, Task,
};
use crate::config::Config;
use crate::vsphere::Inventory;
use crate::vsphere::rest::{ATTACHED_BATCH, Category, RestClient, Tag};

/// The source's name: the `source` label, and what collectors name in `reads`.
pub const TAGS: &str = "tags";

/// Every this many cycles the names of categories and tags are read again, renames included.
pub const NAMES_REFRESH_CYCLES: u32 = 12;

/// One tag on a VM, by names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttachedTag {
    pub category: String,
    pub tag: String,
}

/// The tags of every VM of the inventory that has any, by VM id; each VM's sorted by category,
/// then tag name.
#[derive(Debug, Default, PartialEq)]
pub struct VmTags {
    pub vms: HashMap<String, Vec<AttachedTag>>,
    /// VMs vCenter would not list tags for (refused alone, or gone since the mirror saw them):
    /// their tags are unknown, so no policy count is reported for them.
    pub unreadable: HashSet<String>,
}

impl VmTags {
    /// The tags of a VM (none when it has none).
    pub fn of(&self, vm_id: &str) -> &[AttachedTag] {
        self.vms.get(vm_id).map_or(&[], Vec::as_slice)
    }

    /// The names of a VM's tags of `category`, in name order.
    pub fn names_in<'a>(&'a self, vm_id: &str, category: &'a str) -> impl Iterator<Item = &'a str> {
        self.of(vm_id)
            .iter()
            .filter(move |t| t.category == category)
            .map(|t| t.tag.as_str())
    }
}

/// vSphere tags, per vCenter.
pub struct TagsSource;

impl SourceKind for TagsSource {
    fn name(&self) -> &'static str {
        TAGS
    }

    fn wanted_by(&self, config: &Config) -> bool {
        config.tags.wanted()
    }

    fn start(&self, ctx: &StartContext<'_>) -> Option<Box<dyn RunningSource>> {
        if !ctx.config.tags.wanted() {
            return None;
        }
        let (publisher, feed) = super::channel::<VmTags>();
        let rest = Arc::new(RestClient::new(ctx.client.clone()));
        let task = tokio::spawn(run(
            rest.clone(),
            ctx.inventory.clone(),
            ctx.config.tags.interval,
            publisher,
        ));
        Some(Box::new(Running {
            task: Task::new(TAGS, feed, task),
            rest,
        }))
    }
}

/// The running source: its task, and the REST session it logs out of at shutdown.
struct Running {
    task: Task<VmTags>,
    rest: Arc<RestClient>,
}

impl RunningSource for Running {
    fn name(&self) -> &'static str {
        TAGS
    }

    fn latest(&self) -> Erased {
        self.task.latest()
    }

    fn settled(&self) -> Settling<'_> {
        self.task.settled()
    }

    fn moved_from(&self, version: u64) -> Moved {
        self.task.moved_from(version)
    }

    fn stop(&self) {
        self.task.stop();
    }

    fn shutdown(&self, timeout: Duration) -> Settling<'_> {
        self.task.stop();
        Box::pin(self.rest.logout(timeout))
    }
}

/// The names known from earlier cycles.
#[derive(Default)]
struct Names {
    categories: HashMap<String, Category>,
    tags: HashMap<String, Tag>,
    cycles: u32,
}

/// What a cycle cost, for the debug line (and docs/performance.md).
#[derive(Debug, Default)]
struct Cost {
    vms: usize,
    requests: u64,
    bytes: u64,
}

/// Cycles until aborted: wait for the mirror to be in sync, read, publish, sleep out the rest
/// of the interval.
async fn run(
    rest: Arc<RestClient>,
    inventory: Feed<Inventory>,
    interval: Duration,
    publisher: Publisher<VmTags>,
) {
    let mut names = Names::default();
    let mut last_error: Option<String> = None;
    loop {
        let inv = inventory.value().await;
        let started = Instant::now();
        let vms: Vec<String> = inv.vms.keys().cloned().collect();
        drop(inv);
        let before = rest.traffic();
        let outcome = cycle(&rest, &mut names, &vms).await;
        let after = rest.traffic();
        let cost = Cost {
            vms: vms.len(),
            requests: after.0 - before.0,
            bytes: after.1 - before.1,
        };
        last_error = publish(
            &publisher,
            rest.vcenter(),
            outcome,
            started.elapsed(),
            &cost,
            last_error,
        );
        let elapsed = started.elapsed();
        if elapsed < interval {
            tokio::time::sleep(interval - elapsed).await;
        }
    }
}

/// One read: names (from the cache where known), then the attached tags of `vms`.
async fn cycle(
    rest: &RestClient,
    names: &mut Names,
    vms: &[String],
) -> Result<VmTags, crate::vsphere::Error> {
    if names.cycles.is_multiple_of(NAMES_REFRESH_CYCLES) {
        names.categories.clear();
        names.tags.clear();
    }
    names.cycles = names.cycles.wrapping_add(1);
    let category_ids = rest.category_ids().await?;
    keep_listed(&mut names.categories, &category_ids);
    for id in &category_ids {
        if !names.categories.contains_key(id)
            && let Some(c) = rest.category(id).await?
        {
            names.categories.insert(id.clone(), c);
        }
    }
    let tag_ids = rest.tag_ids().await?;
    keep_listed(&mut names.tags, &tag_ids);
    for id in &tag_ids {
        read_tag(rest, names, id).await?;
    }
    let (attached, unreadable) =
        attached_in_batches(vms, ATTACHED_BATCH, SPLIT_BUDGET, |ids| async move {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            rest.attached_tags(&ids).await
        })
        .await?;
    // Tags made since the list: read the names of ids not seen yet.
    let unknown: HashSet<&String> = attached
        .iter()
        .flat_map(|(_, tags)| tags)
        .filter(|id| !names.tags.contains_key(*id))
        .collect();
    for id in unknown {
        read_tag(rest, names, id).await?;
    }
    // Building the snapshot of 40,000 VMs takes milliseconds: off the async workers, with a
    // copy of the names (hundreds of entries).
    let copy = Names {
        categories: names.categories.clone(),
        tags: names.tags.clone(),
        cycles: names.cycles,
    };
    let built = tokio::task::spawn_blocking(move || {
        let mut tags = snapshot(&copy, attached);
        tags.unreadable = unreadable;
        tags
    })
    .await;
    built.map_err(|e| crate::vsphere::Error {
        vcenter: rest.vcenter().to_owned(),
        call: "tags snapshot",
        failure: crate::vsphere::CallError::Malformed(format!("snapshot task: {e}")),
        sent: None,
    })
}

/// Extra requests a cycle may spend narrowing down refused batches.
pub const SPLIT_BUDGET: usize = 64;

/// The tags attached to `vms`, `batch` VMs a request. vCenter refuses a whole batch (403, or
/// 404 for a VM deleted since the mirror listed it) for one VM it will not read: such a batch is
/// split in halves until the VM is found, at most `budget` extra requests a cycle (a refusal of
/// everything fails the cycle rather than cost a request per VM). The VMs refused alone are
/// returned apart: their tags are unknown, not none.
async fn attached_in_batches<'a, F, Fut>(
    vms: &'a [String],
    batch: usize,
    budget: usize,
    mut fetch: F,
) -> Result<(Vec<(String, Vec<String>)>, HashSet<String>), crate::vsphere::Error>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(String, Vec<String>)>, crate::vsphere::Error>>,
{
    let mut attached = Vec::with_capacity(vms.len());
    let mut unreadable = HashSet::new();
    let mut pending: Vec<&'a [String]> = vms.chunks(batch.max(1)).rev().collect();
    let mut spent = 0usize;
    while let Some(part) = pending.pop() {
        match fetch(part.to_vec()).await {
            Ok(found) => attached.extend(found),
            Err(e) if refuses_objects(&e) && spent < budget => {
                if let [one] = part {
                    unreadable.insert(one.clone());
                } else {
                    let (a, b) = part.split_at(part.len() / 2);
                    pending.push(b);
                    pending.push(a);
                    spent += 2;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok((attached, unreadable))
}

/// 403 (an object the account may not read) or 404 (an object that is gone).
fn refuses_objects(e: &crate::vsphere::Error) -> bool {
    matches!(
        e.failure,
        crate::vsphere::CallError::Status(403) | crate::vsphere::CallError::Status(404)
    )
}

/// Reads a tag's name (and its category's, when new) unless known.
async fn read_tag(
    rest: &RestClient,
    names: &mut Names,
    id: &str,
) -> Result<(), crate::vsphere::Error> {
    if names.tags.contains_key(id) {
        return Ok(());
    }
    let Some(tag) = rest.tag(id).await? else {
        return Ok(());
    };
    if !names.categories.contains_key(&tag.category_id)
        && let Some(c) = rest.category(&tag.category_id).await?
    {
        names.categories.insert(c.id.clone(), c);
    }
    names.tags.insert(id.to_owned(), tag);
    Ok(())
}

/// Drops cached names whose ids vCenter no longer lists.
fn keep_listed<T>(cache: &mut HashMap<String, T>, listed: &[String]) {
    let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
    cache.retain(|id, _| listed.contains(id.as_str()));
}

/// The snapshot: each VM's tags by names, sorted; tags (or categories) without a known name
/// are left out.
fn snapshot(names: &Names, attached: Vec<(String, Vec<String>)>) -> VmTags {
    let mut vms = HashMap::new();
    for (vm, ids) in attached {
        let mut tags: Vec<AttachedTag> = ids
            .iter()
            .filter_map(|id| names.tags.get(id))
            .filter_map(|t| {
                names.categories.get(&t.category_id).map(|c| AttachedTag {
                    category: c.name.clone(),
                    tag: t.name.clone(),
                })
            })
            .collect();
        if tags.is_empty() {
            continue;
        }
        tags.sort();
        tags.dedup();
        vms.insert(vm, tags);
    }
    VmTags {
        vms,
        unreadable: HashSet::new(),
    }
}

/// Publishes one cycle's outcome (a value equal to the last one only confirms it, so nothing
/// is rendered again) and logs a failure once, until it changes or clears; returns the failure
/// now in force.
fn publish(
    publisher: &Publisher<VmTags>,
    vcenter: &str,
    outcome: Result<VmTags, crate::vsphere::Error>,
    took: Duration,
    cost: &Cost,
    last_error: Option<String>,
) -> Option<String> {
    let now = super::unix_now();
    match outcome {
        Ok(tags) => {
            debug!(
                vcenter,
                vms = cost.vms,
                tagged_vms = tags.vms.len(),
                requests = cost.requests,
                bytes = cost.bytes,
                seconds = took.as_secs_f64(),
                "tags: cycle done"
            );
            if last_error.is_some() {
                info!(vcenter, "tags: read again");
            }
            let status = SourceStatus {
                attempted: true,
                synced: true,
                last_update_seconds: now,
                sync_seconds: took.as_secs_f64(),
                error: None,
            };
            let previous = publisher.latest();
            if previous.value.as_deref() == Some(&tags) {
                publisher.set_status(|s| *s = status);
            } else {
                publisher.publish(Some(Arc::new(tags)), status);
            }
            None
        }
        Err(e) => {
            let error = e.to_string();
            let key = incident_key(&e);
            if last_error.as_deref() != Some(key.as_str()) {
                warn!(vcenter, error = %error, "tags: read failed; tag metrics are absent until it succeeds");
            }
            let previous = publisher.latest();
            let status = SourceStatus {
                attempted: true,
                synced: false,
                last_update_seconds: previous.status.last_update_seconds,
                sync_seconds: previous.status.sync_seconds,
                error: Some(error.clone()),
            };
            if previous.value.is_some() || !previous.status.attempted {
                publisher.publish(None, status);
            } else {
                publisher.set_status(|s| *s = status);
            }
            Some(key)
        }
    }
}

/// What makes a failure the same as the last one for the log: a refused login and the pause
/// after it (whose message counts the seconds down) are one; anything else is its message.
fn incident_key(e: &crate::vsphere::Error) -> String {
    let refused = e.failure.is_invalid_login()
        || matches!(e.failure, crate::vsphere::CallError::LoginSuspended(_));
    if refused {
        format!("vCenter {}: the REST login is refused", e.vcenter)
    } else {
        e.to_string()
    }
}

/// Per VM, the names of its tags of each of `categories`, comma-joined in name order ("" for
/// none), for `tag_labels`.
pub fn label_values<'a>(
    tags: Option<&'a VmTags>,
    vm_id: &str,
    categories: &[&'a str],
) -> Vec<String> {
    categories
        .iter()
        .map(|c| {
            tags.map(|t| t.names_in(vm_id, c).collect::<Vec<_>>().join(","))
                .unwrap_or_default()
        })
        .collect()
}

/// VM ids by number of tags of `categories`, for tests and the report (sorted for stable
/// output).
pub fn policy_counts(
    tags: &VmTags,
    vm_ids: &[&str],
    categories: &[String],
) -> BTreeMap<String, usize> {
    vm_ids
        .iter()
        .map(|id| {
            let n = tags
                .of(id)
                .iter()
                .filter(|t| categories.contains(&t.category))
                .count();
            ((*id).to_owned(), n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut n = Names::default();
        for (id, name) in [("c1", "Backup Policy"), ("c2", "Owner")] {
            n.categories.insert(
                id.into(),
                Category {
                    id: id.into(),
                    name: name.into(),
                },
            );
        }
        for (id, name, c) in [
            ("t1", "gold", "c1"),
            ("t2", "silver", "c1"),
            ("t3", "team-b", "c2"),
            ("t4", "team-a", "c2"),
            ("t5", "orphan", "c9"),
        ] {
            n.tags.insert(
                id.into(),
                Tag {
                    id: id.into(),
                    name: name.into(),
                    category_id: c.into(),
                },
            );
        }
        n
    }

    #[test]
    fn the_snapshot_names_tags_sorted_and_leaves_out_unknown_ones() {
        let attached = vec![
            ("vm-1".into(), vec!["t3".into(), "t1".into(), "t4".into()]),
            ("vm-2".into(), vec!["t5".into(), "t9".into()]),
            ("vm-3".into(), vec![]),
        ];
        let tags = snapshot(&names(), attached);
        let got: Vec<(&str, &str)> = tags
            .of("vm-1")
            .iter()
            .map(|t| (t.category.as_str(), t.tag.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Backup Policy", "gold"),
                ("Owner", "team-a"),
                ("Owner", "team-b")
            ]
        );
        assert!(tags.of("vm-2").is_empty() && !tags.vms.contains_key("vm-3"));
        assert_eq!(
            label_values(Some(&tags), "vm-1", &["Owner", "Tier"]),
            ["team-a,team-b", ""]
        );
        assert_eq!(label_values(None, "vm-1", &["Owner"]), [""]);
        let counts = policy_counts(&tags, &["vm-1", "vm-2"], &["Backup Policy".into()]);
        assert_eq!(counts.get("vm-1"), Some(&1));
        assert_eq!(counts.get("vm-2"), Some(&0));
    }

    #[tokio::test]
    async fn a_refused_batch_is_narrowed_down_to_the_vm_vcenter_will_not_read() {
        let vms: Vec<String> = (1..=10).map(|i| format!("vm-{i}")).collect();
        let refuse = |failing: &'static [&'static str]| {
            move |ids: Vec<String>| {
                let refused = ids.iter().any(|id| failing.contains(&id.as_str()));
                let answer = ids
                    .iter()
                    .map(|id| (id.clone(), vec![format!("t-{id}")]))
                    .collect();
                let result = if refused {
                    Err(crate::vsphere::Error {
                        vcenter: "vc01".into(),
                        call: "tagging.tag-association.list-attached-tags-on-objects",
                        failure: crate::vsphere::CallError::Status(403),
                        sent: None,
                    })
                } else {
                    Ok(answer)
                };
                std::future::ready(result)
            }
        };
        let (attached, unreadable) = attached_in_batches(&vms, 4, 64, refuse(&["vm-6"]))
            .await
            .unwrap();
        let got: Vec<&str> = attached.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            got,
            [
                "vm-1", "vm-2", "vm-3", "vm-4", "vm-5", "vm-7", "vm-8", "vm-9", "vm-10"
            ]
        );
        assert_eq!(unreadable, HashSet::from(["vm-6".to_string()]));
        // Everything refused: the budget ends the narrowing and the cycle fails.
        let all: &'static [&'static str] = &[
            "vm-1", "vm-2", "vm-3", "vm-4", "vm-5", "vm-6", "vm-7", "vm-8", "vm-9", "vm-10",
        ];
        let failed = attached_in_batches(&vms, 4, 6, refuse(all)).await;
        assert!(failed.is_err());
        // Another failure is not narrowed down.
        let mut calls = 0;
        let failed = attached_in_batches(&vms, 4, 64, |_: Vec<String>| {
            calls += 1;
            std::future::ready(Err(crate::vsphere::Error {
                vcenter: "vc01".into(),
                call: "x",
                failure: crate::vsphere::CallError::Status(503),
                sent: None,
            }))
        })
        .await;
        assert!(failed.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn names_of_ids_no_longer_listed_are_dropped() {
        let mut n = names();
        keep_listed(&mut n.tags, &["t1".into(), "t2".into()]);
        let mut left: Vec<&String> = n.tags.keys().collect();
        left.sort();
        assert_eq!(left, ["t1", "t2"]);
    }

    #[tokio::test]
    async fn a_failure_withdraws_the_value_and_an_equal_value_keeps_the_version() {
        let (publisher, feed) = crate::source::channel::<VmTags>();
        let cost = Cost::default();
        let ok = || Ok(snapshot(&names(), vec![("vm-1".into(), vec!["t1".into()])]));
        let last = publish(&publisher, "vc01", ok(), Duration::ZERO, &cost, None);
        assert!(last.is_none());
        let first = feed.latest();
        assert!(first.status.synced && first.value.is_some());
        publish(&publisher, "vc01", ok(), Duration::ZERO, &cost, None);
        assert_eq!(
            feed.latest().version,
            first.version,
            "same tags, same version"
        );
        let failed = Err(crate::vsphere::Error {
            vcenter: "vc01".into(),
            call: "cis.session.create",
            failure: crate::vsphere::CallError::Status(503),
            sent: None,
        });
        let last = publish(&publisher, "vc01", failed, Duration::ZERO, &cost, last);
        assert_eq!(
            last.as_deref(),
            Some("vCenter vc01: cis.session.create: HTTP status 503")
        );
        let p = feed.latest();
        assert!(!p.status.synced && p.value.is_none() && p.status.attempted);
        assert_eq!(p.status.error, last);
        // A refused login and the pause after it are one failure for the log.
        let refused = |failure| crate::vsphere::Error {
            vcenter: "vc01".into(),
            call: "cis.session.create",
            failure,
            sent: None,
        };
        let invalid = refused(crate::vsphere::CallError::Fault(crate::vsphere::Fault {
            kind: "InvalidLogin".into(),
            message: "HTTP 401".into(),
        }));
        let paused = |s| {
            refused(crate::vsphere::CallError::LoginSuspended(
                Duration::from_secs(s),
            ))
        };
        assert_eq!(incident_key(&invalid), incident_key(&paused(599)));
        assert_eq!(incident_key(&paused(599)), incident_key(&paused(298)));
        let last = publish(
            &publisher,
            "vc01",
            Err(paused(599)),
            Duration::ZERO,
            &cost,
            last,
        );
        assert_eq!(
            feed.latest().status.error.as_deref(),
            Some(
                "vCenter vc01: cis.session.create: not logging in again for 599s after vCenter refused the credentials (InvalidLogin); fix the password or username"
            )
        );
        assert_eq!(
            last.as_deref(),
            Some("vCenter vc01: the REST login is refused")
        );
    }
}
