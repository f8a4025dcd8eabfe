//! The names of the alarms the root folder's `triggeredAlarmState` references
//! (`Alarm.info.name`), read with RetrievePropertiesEx when an alarm is new to the mirror and
//! kept across updates and full retrievals (alarm definitions are few and seldom renamed).
//!
//! A failed read never stops the mirror: the client counts it with every other call's errors,
//! it is logged, and the alarms stay unnamed. They are asked for again with the next alarm new
//! to the mirror, else at the first update or quiet wait [`RETRY_AFTER`] later. An alarm vCenter
//! no longer has (deleted while still triggered) is left out of the answer, not a failure of
//! the call, and stays unnamed likewise.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::Follower;
use crate::vsphere::client::Session;
use crate::vsphere::error::Error;
use crate::vsphere::model::{Inventory, MoId, MoRef};
use crate::vsphere::properties::{self, Property, Value, alarm_name_spec};
use crate::vsphere::soap;

/// How long alarms whose names could not be read wait before they are asked for again.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(300);
/// Alarms asked for in one call.
const BATCH: usize = 500;

/// The names read so far, and the alarms asked for in vain.
#[derive(Debug, Default)]
pub(super) struct AlarmNames {
    names: BTreeMap<MoId, String>,
    /// Alarms a read left unnamed (it failed, or vCenter no longer has them).
    unnamed: BTreeSet<MoId>,
    /// When those may be asked for again without a new alarm.
    not_before: Option<Instant>,
}

impl AlarmNames {
    /// Of `unknown` (alarms without a name), whether to read now: one is new, or the retry of
    /// those asked for in vain is due.
    fn due(&self, unknown: &[MoId]) -> bool {
        unknown.iter().any(|id| !self.unnamed.contains(id))
            || (!unknown.is_empty() && self.not_before.is_none_or(|t| Instant::now() >= t))
    }
}

impl Follower {
    /// Fills `inventory.alarm_names` for the alarms it references, reading the names of those
    /// the cache lacks when a read is due. True when the names held changed.
    pub(super) async fn name_alarms(&self, session: &Session, inventory: &mut Inventory) -> bool {
        let (unknown, due) = match self.alarm_names.lock() {
            Ok(cache) => {
                let unknown: Vec<MoId> = inventory
                    .unnamed_alarms()
                    .into_iter()
                    .filter(|id| !cache.names.contains_key(id))
                    .collect();
                let due = cache.due(&unknown);
                (unknown, due)
            }
            Err(_) => return false,
        };
        if due {
            let read = self.read_alarm_names(session, &unknown).await;
            if let Ok(mut cache) = self.alarm_names.lock() {
                match read {
                    Ok(names) => {
                        if names.len() < unknown.len() {
                            debug!(vcenter = %self.vcenter, asked = unknown.len(), named = names.len(), "alarms not found; they stay unnamed");
                        }
                        cache.names.extend(names);
                    }
                    Err(e) => {
                        warn!(vcenter = %self.vcenter, error = %e, alarms = unknown.len(), retry_seconds = RETRY_AFTER.as_secs(), "reading alarm names failed; they stay unnamed");
                    }
                }
                let AlarmNames { names, unnamed, .. } = &mut *cache;
                *unnamed = unknown
                    .into_iter()
                    .filter(|id| !names.contains_key(id))
                    .collect();
                cache.not_before =
                    (!cache.unnamed.is_empty()).then(|| Instant::now() + RETRY_AFTER);
            }
        }
        let Ok(cache) = self.alarm_names.lock() else {
            return false;
        };
        let named: BTreeMap<MoId, String> = inventory
            .triggered_alarms
            .iter()
            .filter_map(|s| Some((s.alarm.clone(), cache.names.get(&s.alarm)?.clone())))
            .collect();
        if named == inventory.alarm_names {
            return false;
        }
        inventory.alarm_names = named;
        true
    }

    /// True when the inventory references alarms without a name and a read is due.
    pub(super) fn alarm_names_due(&self, inventory: &Inventory) -> bool {
        let unnamed = inventory.unnamed_alarms();
        if unnamed.is_empty() {
            return false;
        }
        self.alarm_names.lock().is_ok_and(|cache| {
            let unknown: Vec<MoId> = unnamed
                .iter()
                .filter(|id| !cache.names.contains_key(*id))
                .cloned()
                .collect();
            unknown.len() < unnamed.len() || cache.due(&unknown)
        })
    }

    /// `info.name` of `alarms`, in batches; alarms vCenter does not have are absent.
    async fn read_alarm_names(
        &self,
        session: &Session,
        alarms: &[MoId],
    ) -> Result<BTreeMap<MoId, String>, Error> {
        let pc = &session.content.property_collector;
        let mut names = BTreeMap::new();
        for batch in alarms.chunks(BATCH) {
            let refs: Vec<MoRef> = batch.iter().map(|id| MoRef::new("Alarm", id)).collect();
            let mut call = "RetrievePropertiesEx";
            let mut body = soap::retrieve_properties_of_existing(pc, &refs, &[alarm_name_spec()]);
            loop {
                let bytes = self.client.call(call, session, body).await?;
                let limits = self.client.limits();
                let token = properties::read_objects(&bytes[..], &limits, |object| {
                    for change in object.changes {
                        if let (Ok(Property::AlarmName), Some(Ok(Value::Text(name)))) =
                            (change.property, change.value)
                        {
                            names.insert(object.obj.value.clone(), name);
                        }
                    }
                    Ok(())
                })
                .map_err(|e| self.error(call, e.into()))?;
                let Some(token) = token else {
                    break;
                };
                call = "ContinueRetrievePropertiesEx";
                body = soap::continue_retrieve_properties_ex(pc, &token);
            }
        }
        let asked: BTreeSet<&MoId> = alarms.iter().collect();
        names.retain(|id, _| asked.contains(id));
        Ok(names)
    }
}
