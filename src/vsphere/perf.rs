//! The PerformanceManager: which host counters the exporter reads, the envelopes that ask for
//! them, the parsers of the answers, the batching of metric ids into requests, and thin async
//! calls on a [`Client`].
//!
//! Counters are known by name (`group.name.rollup`, e.g. `disk.read.average`): their ids differ
//! between vCenters, so they are resolved once per session from the `perfCounter` catalogue
//! ([`Catalogue::resolve`]). Instances (datastores, NICs, storage adapters) come from
//! `QueryAvailablePerfMetric` per host. Values are returned in vCenter's units (the catalogue's
//! `unitInfo`); converting them to base units is the collector's business, not this module's.
//!
//! This module owns no schedule and no state across cycles: the perf source does.

use std::collections::{HashMap, HashSet};

use quick_xml::escape::escape;

use super::client::{Client, Session};
use super::error::{CallError, Error, ParseError};
use super::model::MoRef;
use super::soap::{self, PropertySpec, VIM25};
use super::xml::{self, Node, SoapReader};

/// The real-time sampling period of host statistics, in seconds (`intervalId` 20).
pub const REALTIME_INTERVAL_SECONDS: u32 = 20;
/// vCenter's advanced setting that caps the metrics of one `QueryPerf`.
pub const MAX_QUERY_METRICS_KEY: &str = "config.vpxd.stats.maxQueryMetrics";
/// vCenter's cap when the setting is absent (or cannot be read).
pub const DEFAULT_MAX_QUERY_METRICS: usize = 64;
/// vCenter refuses a document with more than 500,000 XML elements; requests and their answers
/// are kept ten times under that.
pub const MAX_ELEMENTS_PER_DOCUMENT: usize = 50_000;

/// Which instances of a counter are read on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Instances {
    /// The host's total, instance `""`.
    Aggregate,
    /// One per datastore, instance = the datastore's volume id (its URL's last component).
    Datastores,
    /// One per physical NIC (`vmnic0`).
    Nics,
    /// One per storage adapter (`vmhba0`).
    StorageAdapters,
}

/// How the samples of one cycle's window become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// Rates: the mean of the samples.
    Mean,
    /// Latencies: the worst sample.
    Max,
    /// Counts per sample (`summation`): their sum over the window.
    Sum,
}

/// A host counter the exporter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCounter {
    /// `group.name.rollup`.
    pub name: &'static str,
    pub instances: Instances,
    pub reduce: Reduce,
}

const fn counter(name: &'static str, instances: Instances, reduce: Reduce) -> HostCounter {
    HostCounter {
        name,
        instances,
        reduce,
    }
}

/// Every host counter read, in the order the results keep.
pub const HOST_COUNTERS: &[HostCounter] = &[
    counter("cpu.usage.average", Instances::Aggregate, Reduce::Mean),
    counter("disk.read.average", Instances::Aggregate, Reduce::Mean),
    counter("disk.write.average", Instances::Aggregate, Reduce::Mean),
    counter(
        "disk.maxTotalLatency.latest",
        Instances::Aggregate,
        Reduce::Max,
    ),
    counter(
        "datastore.totalReadLatency.average",
        Instances::Datastores,
        Reduce::Max,
    ),
    counter(
        "datastore.totalWriteLatency.average",
        Instances::Datastores,
        Reduce::Max,
    ),
    counter(
        "datastore.read.average",
        Instances::Datastores,
        Reduce::Mean,
    ),
    counter(
        "datastore.write.average",
        Instances::Datastores,
        Reduce::Mean,
    ),
    counter("net.bytesRx.average", Instances::Nics, Reduce::Mean),
    counter("net.bytesTx.average", Instances::Nics, Reduce::Mean),
    counter("net.droppedRx.summation", Instances::Nics, Reduce::Sum),
    counter("net.droppedTx.summation", Instances::Nics, Reduce::Sum),
    counter(
        "storageAdapter.totalReadLatency.average",
        Instances::StorageAdapters,
        Reduce::Max,
    ),
    counter(
        "storageAdapter.totalWriteLatency.average",
        Instances::StorageAdapters,
        Reduce::Max,
    ),
    counter(
        "storageAdapter.read.average",
        Instances::StorageAdapters,
        Reduce::Mean,
    ),
    counter(
        "storageAdapter.write.average",
        Instances::StorageAdapters,
        Reduce::Mean,
    ),
];

/// `PerfMetricId`: a counter and an instance (`""` is the entity's total).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MetricId {
    pub counter_id: i32,
    pub instance: String,
}

/// `PerfCounterInfo`, reduced to what identifies and scales a counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterInfo {
    pub key: i32,
    /// `group.name.rollup`.
    pub name: String,
    /// `unitInfo.key`: kiloBytesPerSecond, millisecond, percent, number, …
    pub unit: String,
}

/// The counters of [`HOST_COUNTERS`] this vCenter has, by their index in that table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// `(index in HOST_COUNTERS, info)`, in table order.
    pub counters: Vec<(usize, CounterInfo)>,
    /// Names of [`HOST_COUNTERS`] the catalogue lacks.
    pub missing: Vec<&'static str>,
}

impl Resolved {
    /// The table index of a counter id.
    pub fn index_of(&self, counter_id: i32) -> Option<usize> {
        self.counters
            .iter()
            .find(|(_, c)| c.key == counter_id)
            .map(|(i, _)| *i)
    }

    /// The resolved counter of a table index.
    pub fn info(&self, index: usize) -> Option<&CounterInfo> {
        self.counters
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, c)| c)
    }

    /// The ids of every resolved counter.
    pub fn ids(&self) -> HashSet<i32> {
        self.counters.iter().map(|(_, c)| c.key).collect()
    }
}

/// Resolves [`HOST_COUNTERS`] by name in a catalogue.
pub fn resolve(catalogue: &[CounterInfo]) -> Resolved {
    let by_name: HashMap<&str, &CounterInfo> =
        catalogue.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut out = Resolved::default();
    for (i, wanted) in HOST_COUNTERS.iter().enumerate() {
        match by_name.get(wanted.name) {
            Some(info) => out.counters.push((i, (*info).clone())),
            None => out.missing.push(wanted.name),
        }
    }
    out
}

/// Picks a host's metric ids among its available ones: per resolved counter, the instances its
/// [`Instances`] kind reads. Ordered by counter id, then instance.
pub fn host_metric_ids(resolved: &Resolved, available: &[MetricId]) -> Vec<MetricId> {
    let mut out: Vec<MetricId> = available
        .iter()
        .filter(|id| {
            resolved
                .index_of(id.counter_id)
                .is_some_and(|i| wanted_instance(HOST_COUNTERS[i].instances, &id.instance))
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

fn wanted_instance(kind: Instances, instance: &str) -> bool {
    match kind {
        Instances::Aggregate => instance.is_empty(),
        // vCenter lists these by device; `*` would be a wildcard, not an instance.
        Instances::Datastores | Instances::Nics | Instances::StorageAdapters => {
            !instance.is_empty() && instance != "*"
        }
    }
}

/// The instance id vCenter gives a datastore's `datastore.*` counters: the last path component of
/// its URL (`ds:///vmfs/volumes/5f0c6d1a-3e2b7c44-8a1e-0050569e1b2c/` → the volume id).
pub fn datastore_instance(url: &str) -> Option<&str> {
    url.trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
}

// ---- Envelopes ----

fn moref(tag: &str, r: &MoRef) -> String {
    format!(
        r#"<{tag} type="{}">{}</{tag}>"#,
        escape(r.kind.as_str()),
        escape(r.value.as_str())
    )
}

/// One `RetrievePropertiesEx` of what a session needs once: the PerformanceManager's
/// `perfCounter` catalogue and, when given, the vCenter settings (`setting` of its
/// OptionManager) that hold `config.vpxd.stats.maxQueryMetrics`. Settings rather than
/// `QueryOptions`: that answers an absent setting (the usual case) with a fault, and a user
/// without the right to read settings gets a `missingSet` here instead of a failed call.
pub fn retrieve_catalogue(
    collector: &MoRef,
    perf_manager: &MoRef,
    option_manager: Option<&MoRef>,
) -> String {
    let mut objects = vec![perf_manager.clone()];
    let mut props = vec![PropertySpec {
        kind: "PerformanceManager",
        paths: vec!["perfCounter"],
    }];
    if let Some(om) = option_manager {
        objects.push(om.clone());
        props.push(PropertySpec {
            kind: "OptionManager",
            paths: vec!["setting"],
        });
    }
    soap::retrieve_properties_of(collector, &objects, &props)
}

/// `QueryAvailablePerfMetric` of an entity at an interval.
pub fn query_available_perf_metric(perf_manager: &MoRef, entity: &MoRef, interval: u32) -> String {
    soap::envelope(&format!(
        r#"<QueryAvailablePerfMetric xmlns="{VIM25}">{}{}<intervalId>{interval}</intervalId></QueryAvailablePerfMetric>"#,
        moref("_this", perf_manager),
        moref("entity", entity),
    ))
}

/// One `PerfQuerySpec`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySpec<'a> {
    pub entity: &'a MoRef,
    /// Samples after this time (Unix seconds, exclusive), when set.
    pub start_time: Option<i64>,
    /// The newest samples to return at most; vCenter's simulator returns none without it.
    pub max_sample: u32,
    pub metric_ids: &'a [MetricId],
}

/// `QueryPerf` of real-time samples, in the normal format. Elements in WSDL order: entity,
/// startTime, endTime, maxSample, metricId, intervalId, format.
pub fn query_perf(perf_manager: &MoRef, specs: &[QuerySpec<'_>]) -> String {
    let mut body = format!(r#"<QueryPerf xmlns="{VIM25}">"#);
    body.push_str(&moref("_this", perf_manager));
    for spec in specs {
        body.push_str("<querySpec>");
        body.push_str(&moref("entity", spec.entity));
        if let Some(start) = spec.start_time.and_then(xsd_datetime) {
            body.push_str(&format!("<startTime>{start}</startTime>"));
        }
        body.push_str(&format!("<maxSample>{}</maxSample>", spec.max_sample));
        for id in spec.metric_ids {
            body.push_str(&format!(
                "<metricId><counterId>{}</counterId><instance>{}</instance></metricId>",
                id.counter_id,
                escape(id.instance.as_str())
            ));
        }
        body.push_str(&format!(
            "<intervalId>{REALTIME_INTERVAL_SECONDS}</intervalId></querySpec>"
        ));
    }
    body.push_str("</QueryPerf>");
    soap::envelope(&body)
}

/// Unix seconds as `xsd:dateTime` in UTC.
fn xsd_datetime(seconds: i64) -> Option<String> {
    jiff::Timestamp::from_second(seconds)
        .ok()
        .map(|t| t.to_string())
}

// ---- Parsers ----

/// Keeps of a `perfCounter` answer only what [`CounterInfo`] needs: the descriptions' keys, not
/// their labels and summaries (most of the bytes).
fn keep_counter_parts(open: &[Node], child: &Node) -> bool {
    let Some(parent) = open.last() else {
        return true;
    };
    match parent.name.as_str() {
        "nameInfo" | "groupInfo" | "unitInfo" => child.name == "key",
        _ => true,
    }
}

/// What a session reads once: the counter catalogue and the metric limit setting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    pub counters: Vec<CounterInfo>,
    /// Catalogue entries without a key, name, group or rollup, skipped.
    pub malformed: usize,
    /// `config.vpxd.stats.maxQueryMetrics` when the settings have it as a number.
    pub max_query_metrics: Option<i64>,
}

/// Reads the answer of [`retrieve_catalogue`].
pub fn parse_catalogue(input: &[u8]) -> Result<Catalogue, ParseError> {
    let mut out = Catalogue::default();
    xml::read_retrieve_result(input, &xml::Limits::default(), |cur| {
        let objects = cur.node_with(keep_counter_parts)?;
        for prop in objects.children_named("propSet") {
            let Some(val) = prop.child("val") else {
                continue;
            };
            match prop.text_of("name").map(str::trim) {
                Some("perfCounter") => {
                    for entry in &val.children {
                        match counter_info(entry) {
                            Some(c) => out.counters.push(c),
                            None => out.malformed += 1,
                        }
                    }
                }
                Some("setting") => {
                    let wanted = val
                        .children
                        .iter()
                        .find(|o| o.text_of("key").map(str::trim) == Some(MAX_QUERY_METRICS_KEY));
                    out.max_query_metrics = wanted
                        .and_then(|o| o.text_of("value"))
                        .and_then(|v| v.trim().parse().ok());
                }
                _ => {}
            }
        }
        Ok(())
    })?;
    Ok(out)
}

fn counter_info(entry: &Node) -> Option<CounterInfo> {
    let key = entry.text_of("key")?.trim().parse().ok()?;
    let description = |name: &str| {
        entry
            .child(name)
            .and_then(|d| d.text_of("key"))
            .map(str::trim)
            .filter(|k| !k.is_empty())
    };
    let rollup = entry.text_of("rollupType")?.trim();
    Some(CounterInfo {
        key,
        name: format!(
            "{}.{}.{rollup}",
            description("groupInfo")?,
            description("nameInfo")?
        ),
        unit: description("unitInfo").unwrap_or_default().to_string(),
    })
}

/// The metric limit to batch with, from the setting's value: a positive value is the limit; 0 or
/// a negative one means none, which is taken as [`MAX_ELEMENTS_PER_DOCUMENT`]'s share; absent,
/// vCenter's default.
pub fn limit_from_setting(value: Option<i64>) -> usize {
    match value {
        None => DEFAULT_MAX_QUERY_METRICS,
        Some(v) if v > 0 => usize::try_from(v).unwrap_or(usize::MAX),
        Some(_) => usize::MAX,
    }
}

/// Reads a `QueryAvailablePerfMetric` answer, keeping the ids whose counter `keep` accepts (a
/// host has about a thousand; a few dozen are read).
pub fn parse_available_metrics(
    input: &[u8],
    keep: impl Fn(i32) -> bool,
) -> Result<Vec<MetricId>, ParseError> {
    let mut reader = SoapReader::new(input);
    let (response, empty) = reader.enter_body()?;
    if response.name != "QueryAvailablePerfMetricResponse" {
        return Err(ParseError::Malformed(format!(
            "unexpected <{}> in the SOAP Body",
            response.name
        )));
    }
    let mut out = Vec::new();
    if empty {
        return Ok(out);
    }
    while let Some(rv) = reader.next_child()? {
        if rv.name != "returnval" {
            continue;
        }
        let id = metric_id(&rv)?;
        if keep(id.counter_id) {
            out.push(id);
        }
    }
    Ok(out)
}

fn metric_id(node: &Node) -> Result<MetricId, ParseError> {
    let counter_id = node
        .text_of("counterId")
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| ParseError::Malformed("PerfMetricId without a counterId".into()))?;
    Ok(MetricId {
        counter_id,
        instance: node.text_of("instance").unwrap_or_default().to_string(),
    })
}

/// `PerfEntityMetric`: one entity's samples.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityMetric {
    pub entity: MoRef,
    /// Each sample's time, Unix seconds.
    pub timestamps: Vec<i64>,
    pub series: Vec<Series>,
}

/// `PerfMetricIntSeries`: one metric's values, one per sample; vCenter sends -1 for a sample it
/// has no value for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub id: MetricId,
    pub values: Vec<i64>,
}

/// Reads a `QueryPerf` answer (normal format). An entity without samples has empty lists.
pub fn parse_query_perf(input: &[u8]) -> Result<Vec<EntityMetric>, ParseError> {
    let response = SoapReader::new(input).read_body()?;
    if response.name != "QueryPerfResponse" {
        return Err(ParseError::Malformed(format!(
            "unexpected <{}> in the SOAP Body",
            response.name
        )));
    }
    response
        .children_named("returnval")
        .map(entity_metric)
        .collect()
}

fn entity_metric(rv: &Node) -> Result<EntityMetric, ParseError> {
    if rv
        .xsi_type
        .as_deref()
        .is_some_and(|t| t != "PerfEntityMetric")
    {
        return Err(ParseError::Malformed(format!(
            "QueryPerf returned {} (only the normal format is asked for)",
            rv.xsi_type.as_deref().unwrap_or_default()
        )));
    }
    let entity = rv
        .child("entity")
        .and_then(Node::moref)
        .ok_or_else(|| ParseError::Malformed("PerfEntityMetric without an entity".into()))?;
    let timestamps = rv
        .children_named("sampleInfo")
        .map(|s| {
            s.text_of("timestamp")
                .and_then(|t| t.trim().parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_second())
                .ok_or_else(|| ParseError::Malformed("sampleInfo without a timestamp".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let series = rv
        .children_named("value")
        .map(|v| {
            let id = metric_id(v.child("id").ok_or_else(|| {
                ParseError::Malformed("PerfMetricIntSeries without an id".into())
            })?)?;
            let values = v
                .children_named("value")
                .map(|x| x.text.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ParseError::Malformed(format!("sample value: {e}")))?;
            Ok(Series { id, values })
        })
        .collect::<Result<Vec<_>, ParseError>>()?;
    Ok(EntityMetric {
        entity,
        timestamps,
        series,
    })
}

/// One cycle's window of a series reduced to one value; `None` when no sample has a value
/// (vCenter marks a missing sample with -1).
pub fn reduce(values: &[i64], how: Reduce) -> Option<f64> {
    let present = values.iter().copied().filter(|v| *v >= 0);
    match how {
        Reduce::Mean => {
            let (sum, n) = present.fold((0i128, 0u32), |(s, n), v| (s + i128::from(v), n + 1));
            (n > 0).then(|| sum as f64 / f64::from(n))
        }
        Reduce::Max => present.max().map(|v| v as f64),
        Reduce::Sum => {
            let mut any = false;
            let sum = present.fold(0i128, |s, v| {
                any = true;
                s + i128::from(v)
            });
            any.then_some(sum as f64)
        }
    }
}

// ---- Batching ----

/// One spec's share of a request: `metric_ids[range]` of entity `entity` (an index into the
/// work list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub entity: usize,
    pub range: std::ops::Range<usize>,
}

/// The metrics one request may carry: the vCenter's limit, and no more than keeps the answer
/// (each metric with `max_sample` values and its id) far under vCenter's element limit.
pub fn metrics_per_request(limit: usize, max_sample: u32) -> usize {
    let per_metric = usize::try_from(max_sample)
        .unwrap_or(usize::MAX)
        .saturating_add(4);
    let by_elements = (MAX_ELEMENTS_PER_DOCUMENT / per_metric).max(1);
    limit.clamp(1, by_elements)
}

/// Packs the metric ids of every entity (`counts[i]` ids for entity `i`) into requests of at most
/// `per_request` metrics, filling each request before starting the next and splitting an entity
/// across two requests where needed: `ceil(total / per_request)` requests, the fewest possible.
pub fn batches(counts: &[usize], per_request: usize) -> Vec<Vec<Part>> {
    let per_request = per_request.max(1);
    let mut out = Vec::new();
    let mut current: Vec<Part> = Vec::new();
    let mut room = per_request;
    for (entity, &count) in counts.iter().enumerate() {
        let mut start = 0;
        while start < count {
            let take = room.min(count - start);
            current.push(Part {
                entity,
                range: start..start + take,
            });
            start += take;
            room -= take;
            if room == 0 {
                out.push(std::mem::take(&mut current));
                room = per_request;
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

// ---- Calls ----

/// What the perf calls need of a session's ServiceContent.
fn managers(client: &Client, session: &Session) -> Result<(MoRef, Option<MoRef>), Error> {
    let content = &session.content;
    let perf = content.perf_manager.clone().ok_or_else(|| Error {
        vcenter: client.vcenter().to_string(),
        call: "RetrieveServiceContent",
        failure: CallError::Malformed("ServiceContent without perfManager".into()),
        sent: None,
    })?;
    Ok((perf, content.setting.clone()))
}

fn parse_error(client: &Client, call: &'static str, e: ParseError) -> Error {
    Error {
        vcenter: client.vcenter().to_string(),
        call,
        failure: e.into(),
        sent: None,
    }
}

/// The counter catalogue and the metric limit setting, in one call.
pub async fn fetch_catalogue(client: &Client, session: &Session) -> Result<Catalogue, Error> {
    let (perf, setting) = managers(client, session)?;
    let call = "RetrievePropertiesEx";
    let body = retrieve_catalogue(&session.content.property_collector, &perf, setting.as_ref());
    let bytes = client.call(call, session, body).await?;
    parse_catalogue(&bytes).map_err(|e| parse_error(client, call, e))
}

/// A host's available real-time metric ids whose counter `keep` accepts, and the size of the
/// answer in bytes (a host has about a thousand metric ids: the answer is 100 KB or so).
pub async fn available_metrics(
    client: &Client,
    session: &Session,
    host: &MoRef,
    keep: impl Fn(i32) -> bool,
) -> Result<(Vec<MetricId>, usize), Error> {
    let (perf, _) = managers(client, session)?;
    let call = "QueryAvailablePerfMetric";
    let body = query_available_perf_metric(&perf, host, REALTIME_INTERVAL_SECONDS);
    let bytes = client.call(call, session, body).await?;
    let ids = parse_available_metrics(&bytes, keep).map_err(|e| parse_error(client, call, e))?;
    Ok((ids, bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/vcenter/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn id(counter_id: i32, instance: &str) -> MetricId {
        MetricId {
            counter_id,
            instance: instance.into(),
        }
    }

    #[test]
    fn perf_counters_are_named_group_name_rollup_with_their_unit() {
        let catalogue = parse_catalogue(&fixture("perf_catalogue.xml")).unwrap();
        let (counters, malformed) = (catalogue.counters, catalogue.malformed);
        assert_eq!(malformed, 0);
        let names: Vec<(i32, &str, &str)> = counters
            .iter()
            .map(|c| (c.key, c.name.as_str(), c.unit.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (2, "cpu.usage.average", "percent"),
                (125, "disk.usage.average", "kiloBytesPerSecond"),
                (130, "disk.read.average", "kiloBytesPerSecond"),
                (133, "disk.maxTotalLatency.latest", "millisecond"),
                (188, "datastore.totalWriteLatency.average", "millisecond"),
                (531, "net.droppedRx.summation", "number"),
            ]
        );
    }

    #[test]
    fn a_counter_without_a_group_is_skipped_and_counted() {
        let xml = String::from_utf8(fixture("perf_catalogue.xml")).unwrap().replacen(
            r#"<groupInfo xsi:type="ElementDescription"><label>CPU</label><summary>CPU</summary><key>cpu</key></groupInfo>"#,
            "",
            1,
        );
        let catalogue = parse_catalogue(xml.as_bytes()).unwrap();
        let (counters, malformed) = (catalogue.counters, catalogue.malformed);
        assert_eq!((counters.len(), malformed), (5, 1));
        assert!(counters.iter().all(|c| c.key != 2));
    }

    #[test]
    fn resolving_by_name_uses_this_vcenters_ids_and_lists_the_missing() {
        let counters = parse_catalogue(&fixture("perf_catalogue.xml"))
            .unwrap()
            .counters;
        let resolved = resolve(&counters);
        let found: Vec<(&str, i32)> = resolved
            .counters
            .iter()
            .map(|(i, c)| (HOST_COUNTERS[*i].name, c.key))
            .collect();
        assert_eq!(
            found,
            [
                ("cpu.usage.average", 2),
                ("disk.read.average", 130),
                ("disk.maxTotalLatency.latest", 133),
                ("datastore.totalWriteLatency.average", 188),
                ("net.droppedRx.summation", 531),
            ]
        );
        assert_eq!(resolved.missing.len(), HOST_COUNTERS.len() - 5);
        assert!(resolved.missing.contains(&"disk.write.average"));
        assert_eq!(resolved.index_of(188), Some(5));
        assert_eq!(resolved.index_of(125), None);
    }

    #[test]
    fn host_metric_ids_take_totals_for_aggregates_and_devices_for_the_rest() {
        let counters = parse_catalogue(&fixture("perf_catalogue.xml"))
            .unwrap()
            .counters;
        let resolved = resolve(&counters);
        let ids = resolved.ids();
        let available = parse_available_metrics(&fixture("query_available_perf_metric.xml"), |c| {
            ids.contains(&c)
        })
        .unwrap();
        // 541 (not resolved) is dropped while parsing.
        assert!(available.iter().all(|m| m.counter_id != 541));
        assert_eq!(available.len(), 11);
        assert_eq!(
            host_metric_ids(&resolved, &available),
            [
                id(2, ""),
                id(130, ""),
                id(133, ""),
                id(188, "5f0c6d1a-3e2b7c44-8a1e-0050569e1b2c"),
                id(188, "61a8f3d2-9c4e1b70-2f6d-0050569e1b2c"),
                id(531, "vmnic0"),
                id(531, "vmnic1"),
            ]
        );
    }

    #[test]
    fn query_perf_answer_gives_each_entitys_times_and_series() {
        let got = parse_query_perf(&fixture("query_perf.xml")).unwrap();
        assert_eq!(got.len(), 2);
        let host = &got[0];
        assert_eq!(host.entity, MoRef::new("HostSystem", "host-29"));
        assert_eq!(host.timestamps, [1795607960, 1795607980, 1795608000]);
        assert_eq!(
            host.series,
            [
                Series {
                    id: id(130, ""),
                    values: vec![1200, 800, 1000]
                },
                Series {
                    id: id(188, "5f0c6d1a-3e2b7c44-8a1e-0050569e1b2c"),
                    values: vec![3, 41, -1]
                },
                Series {
                    id: id(531, "vmnic1"),
                    values: vec![0, 7, 5]
                },
            ]
        );
        assert_eq!(
            got[1],
            EntityMetric {
                entity: MoRef::new("HostSystem", "host-31"),
                ..Default::default()
            }
        );
    }

    #[test]
    fn query_perf_over_the_limit_is_vcenters_invalid_argument_fault() {
        let err = parse_query_perf(&fixture("query_perf_too_many_metrics.xml")).unwrap_err();
        let ParseError::Fault(f) = err else {
            panic!("want a fault, got {err:?}");
        };
        assert_eq!(f.kind, "InvalidArgument");
        assert!(f.message.contains("querySpec.size"), "{}", f.message);
    }

    #[test]
    fn bad_sample_values_and_csv_answers_are_malformed_not_panics() {
        let xml = String::from_utf8(fixture("query_perf.xml")).unwrap();
        for bad in [
            xml.replacen("<value>800</value>", "<value>8x0</value>", 1),
            xml.replacen(
                "<timestamp>2026-11-25T11:59:40Z</timestamp>",
                "<timestamp>soon</timestamp>",
                1,
            ),
            xml.replacen(
                r#"xsi:type="PerfEntityMetric""#,
                r#"xsi:type="PerfEntityMetricCSV""#,
                1,
            ),
            xml.replacen(r#"<entity type="HostSystem">host-31</entity>"#, "", 1),
        ] {
            assert!(
                matches!(
                    parse_query_perf(bad.as_bytes()),
                    Err(ParseError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn max_query_metrics_setting_is_read_as_a_number_and_absent_means_64() {
        let xml = String::from_utf8(fixture("perf_catalogue.xml")).unwrap();
        let value = parse_catalogue(xml.as_bytes()).unwrap().max_query_metrics;
        assert_eq!(value, Some(256));
        assert_eq!(limit_from_setting(value), 256);
        assert_eq!(limit_from_setting(None), 64);
        assert_eq!(limit_from_setting(Some(-1)), usize::MAX);
        // Absent, or not readable by this user (a missingSet instead of the property).
        let absent = xml.replace("config.vpxd.stats.maxQueryMetrics", "config.vpxd.other");
        assert_eq!(
            parse_catalogue(absent.as_bytes())
                .unwrap()
                .max_query_metrics,
            None
        );
        let start = xml.find("<propSet><name>setting</name>").unwrap();
        let end = xml[start..].find("</propSet>").unwrap() + start + "</propSet>".len();
        let denied = format!(
            "{}<missingSet><path>setting</path><fault><fault xsi:type=\"NoPermission\"><privilegeId>System.Read</privilegeId></fault></fault></missingSet>{}",
            &xml[..start],
            &xml[end..]
        );
        let catalogue = parse_catalogue(denied.as_bytes()).unwrap();
        assert_eq!(
            (catalogue.max_query_metrics, catalogue.counters.len()),
            (None, 6)
        );
    }

    #[test]
    fn window_reduction_skips_missing_samples() {
        assert_eq!(reduce(&[1200, 800, 1000], Reduce::Mean), Some(1000.0));
        assert_eq!(reduce(&[3, 41, -1], Reduce::Max), Some(41.0));
        assert_eq!(reduce(&[3, -1, 5], Reduce::Mean), Some(4.0));
        assert_eq!(reduce(&[0, 7, 5], Reduce::Sum), Some(12.0));
        assert_eq!(reduce(&[-1, -1], Reduce::Mean), None);
        assert_eq!(reduce(&[-1], Reduce::Sum), None);
        assert_eq!(reduce(&[], Reduce::Max), None);
        assert_eq!(reduce(&[0], Reduce::Sum), Some(0.0));
    }

    #[test]
    fn batches_fill_each_request_and_split_entities_so_the_count_is_minimal() {
        let counts = [30, 30, 30, 5, 0, 70];
        for per_request in [1, 7, 10, 64, 100, 1000] {
            let got = batches(&counts, per_request);
            let total: usize = counts.iter().sum();
            assert_eq!(got.len(), total.div_ceil(per_request), "{per_request}");
            let mut covered = vec![0usize; counts.len()];
            for batch in &got {
                let size: usize = batch.iter().map(|p| p.range.len()).sum();
                assert!(size <= per_request && size > 0);
                for p in batch {
                    assert_eq!(p.range.start, covered[p.entity], "parts in order");
                    covered[p.entity] = p.range.end;
                }
            }
            assert_eq!(covered, counts);
        }
        assert!(batches(&[0, 0], 64).is_empty());
    }

    #[test]
    fn metrics_per_request_keeps_answers_far_under_the_element_limit() {
        assert_eq!(metrics_per_request(64, 3), 64);
        assert_eq!(metrics_per_request(usize::MAX, 3), 50_000 / 7);
        assert_eq!(metrics_per_request(10_000, 180), 50_000 / 184);
        assert_eq!(metrics_per_request(0, 3), 1);
    }

    #[test]
    fn query_perf_envelope_has_the_wsdl_order_and_escapes_instances() {
        let host = MoRef::new("HostSystem", "host-29");
        let ids = [id(130, ""), id(188, "a<b")];
        let xml = query_perf(
            &MoRef::new("PerformanceManager", "PerfMgr"),
            &[QuerySpec {
                entity: &host,
                start_time: Some(1795607980),
                max_sample: 3,
                metric_ids: &ids,
            }],
        );
        let expected = concat!(
            r#"<QueryPerf xmlns="urn:vim25"><_this type="PerformanceManager">PerfMgr</_this>"#,
            r#"<querySpec><entity type="HostSystem">host-29</entity><startTime>2026-11-25T11:59:40Z</startTime><maxSample>3</maxSample>"#,
            "<metricId><counterId>130</counterId><instance></instance></metricId>",
            "<metricId><counterId>188</counterId><instance>a&lt;b</instance></metricId>",
            "<intervalId>20</intervalId></querySpec></QueryPerf>"
        );
        assert!(xml.contains(expected), "{xml}");
        // Well-formed: it reads back.
        SoapReader::new(xml.as_bytes()).read_body().unwrap();
    }

    #[test]
    fn available_and_catalogue_envelopes_name_their_objects() {
        let xml = query_available_perf_metric(
            &MoRef::new("PerformanceManager", "PerfMgr"),
            &MoRef::new("HostSystem", "host-29"),
            20,
        );
        assert!(xml.contains(r#"<QueryAvailablePerfMetric xmlns="urn:vim25"><_this type="PerformanceManager">PerfMgr</_this><entity type="HostSystem">host-29</entity><intervalId>20</intervalId></QueryAvailablePerfMetric>"#), "{xml}");
        let xml = retrieve_catalogue(
            &MoRef::new("PropertyCollector", "propertyCollector"),
            &MoRef::new("PerformanceManager", "PerfMgr"),
            Some(&MoRef::new("OptionManager", "VpxSettings")),
        );
        assert!(xml.contains(concat!(
            "<propSet><type>PerformanceManager</type><pathSet>perfCounter</pathSet></propSet>",
            "<propSet><type>OptionManager</type><pathSet>setting</pathSet></propSet>",
            r#"<objectSet><obj type="PerformanceManager">PerfMgr</obj><skip>false</skip></objectSet>"#,
            r#"<objectSet><obj type="OptionManager">VpxSettings</obj><skip>false</skip></objectSet>"#
        )), "{xml}");
    }

    #[test]
    fn datastore_instance_is_the_volume_id_of_the_url() {
        assert_eq!(
            datastore_instance("ds:///vmfs/volumes/5f0c6d1a-3e2b7c44-8a1e-0050569e1b2c/"),
            Some("5f0c6d1a-3e2b7c44-8a1e-0050569e1b2c")
        );
        assert_eq!(
            datastore_instance("ds:///vmfs/volumes/vsan:52a1b2c3d4e5f607-8192a3b4c5d6e7f8/"),
            Some("vsan:52a1b2c3d4e5f607-8192a3b4c5d6e7f8")
        );
        assert_eq!(datastore_instance("/"), None);
    }
}
