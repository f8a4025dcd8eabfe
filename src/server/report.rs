//! `/report`, `/report.csv`, `/report.json` (each with an optional `?target=`): every snapshot of
//! every vCenter, read from the mirrors, rendered off the async workers ([`Reports`]).
//!
//! A report of 40,000 VMs takes tens of milliseconds of a core to build and render, and every
//! request asked for one (HEAD too), so a few hundred parallel requests pinned the CPUs. Now:
//! - a rendered report is kept per format and target, with the key of what it was made from
//!   (each vCenter's status, inventory and event ledger, and the configuration: see
//!   [`InputsKey`]); a request for the same report and the same versions gets the render under
//!   way, or the one made less than [`REUSE`] ago (its ages then at most that much older), so a
//!   burst costs one render;
//! - at most [`Limits::max_renders`] renders run at once, each holding its permit inside its
//!   blocking thread (a client that hangs up does not free it early); at most
//!   [`Limits::max_render_waiters`] requests wait for a permit, and one more is answered 503 at
//!   once;
//! - a rendered report is forgotten [`REUSE`] after it was made, when it can no longer be
//!   served, so that a big one is not held until the next request.
//!
//! It does not build rows nor render them (see [`crate::report`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Response;
use hyper::StatusCode;
use hyper::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, HeaderValue, RETRY_AFTER, VARY,
};
use hyper::http::request::Parts;
use tokio::sync::{OnceCell, Semaphore};

use super::body::Chunks;
use super::handler::{target_param, text, unknown_target, with_type};
use super::limits::{Limits, Throttled};
use super::negotiate::accepts_gzip;
use crate::collector::shards::gzip;
use crate::exporter::Exporter;
use crate::report::{self, Format, InputsKey, Links};

/// How long a rendered report is served again to equal requests.
pub(super) const REUSE: Duration = Duration::from_secs(1);
/// How long a report waits for a mirror still on its first full retrieval, as a scrape does.
const REPORT_WAIT: Duration = Duration::from_secs(10);

/// The rendered reports and the bounds on rendering them.
pub(super) struct Reports {
    slots: Mutex<HashMap<SlotId, Slot>>,
    /// One permit per render that may run at once.
    pub(super) renders: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiters: usize,
    #[cfg(test)]
    pub(super) counts: Arc<TestCounts>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports")
            .field("renders_free", &self.renders.available_permits())
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Which report: its format and `?target=`.
type SlotId = (Format, Option<String>);

/// One report: what it is made from, and its render (under way, or done).
struct Slot {
    key: InputsKey,
    cell: Arc<OnceCell<Arc<Rendered>>>,
}

/// A rendered report, plain and gzipped.
struct Rendered {
    plain: Bytes,
    gzip: Bytes,
    /// When its inputs were read.
    made: Instant,
}

/// Why a request gets no report.
enum Failure {
    /// Too many requests wait for a render: 503.
    Busy,
    /// A renderer failed (a bug): 500.
    Render,
}

/// What the tests watch of the renders.
#[cfg(test)]
#[derive(Default)]
pub(super) struct TestCounts {
    pub(super) renders: AtomicUsize,
    pub(super) running: AtomicUsize,
    pub(super) most_at_once: AtomicUsize,
    /// Requests that reached the cache (their inputs read).
    pub(super) asked: AtomicUsize,
}

#[cfg(test)]
impl TestCounts {
    /// Counts a render until the guard drops.
    fn enter(&self) -> impl Drop + '_ {
        self.renders.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        Waiting(&self.running)
    }
}

/// Logged when report requests are turned away.
static RENDERS_REFUSED: Throttled = Throttled::new();

impl Reports {
    pub(super) fn new(limits: &Limits) -> Arc<Reports> {
        Arc::new(Reports {
            slots: Mutex::new(HashMap::new()),
            renders: Arc::new(Semaphore::new(limits.max_renders.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiters: limits.max_render_waiters,
            #[cfg(test)]
            counts: Arc::default(),
        })
    }

    /// How many requests wait for a render permit.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Answers a report request: 400 when the target is no configured vCenter, 503 when too
    /// many wait for a render.
    pub(super) async fn respond(
        self: &Arc<Self>,
        exporter: &Exporter,
        request: &Parts,
        format: Format,
    ) -> Response<Chunks> {
        let target = match target_param(request.uri.query().unwrap_or("")) {
            Ok(target) => target,
            Err(message) => return text(StatusCode::BAD_REQUEST, message),
        };
        let Some(inputs) = report::Report::inputs(exporter, target.as_deref(), REPORT_WAIT).await
        else {
            return unknown_target(target.as_deref().unwrap_or(""));
        };
        let links = links(target.as_deref());
        let id = (format, target);
        let cell = self.slot(&id, inputs.key());
        #[cfg(test)]
        self.counts.asked.fetch_add(1, Ordering::SeqCst);
        let rendered_here = AtomicBool::new(false);
        let rendered = cell
            .get_or_try_init(|| {
                rendered_here.store(true, Ordering::Relaxed);
                self.render(inputs, format, links)
            })
            .await;
        let rendered = match rendered {
            Ok(rendered) => Arc::clone(rendered),
            Err(Failure::Busy) => return busy(self.max_waiters),
            Err(Failure::Render) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Cannot render the report\n",
                );
            }
        };
        if rendered_here.load(Ordering::Relaxed) {
            self.forget_when_stale(id, &cell);
        }
        response(&rendered, format, accepts_gzip(&request.headers))
    }

    /// The render of report `id` to wait for: the one under way or still fresh for the same
    /// inputs, else a new one in place of the old.
    fn slot(&self, id: &SlotId, key: InputsKey) -> Arc<OnceCell<Arc<Rendered>>> {
        let mut slots = lock(&self.slots);
        // Reports of a configuration a reload replaced can never be asked for again.
        slots.retain(|_, slot| !slot.key.is_gone());
        if let Some(slot) = slots.get(id) {
            let fresh = slot
                .cell
                .get()
                .is_none_or(|rendered| rendered.made.elapsed() < REUSE);
            if fresh && slot.key.same_as(&key) {
                return Arc::clone(&slot.cell);
            }
        }
        let cell = Arc::new(OnceCell::new());
        let slot = Slot {
            key,
            cell: Arc::clone(&cell),
        };
        slots.insert(id.clone(), slot);
        cell
    }

    /// Renders on a blocking thread once a permit is free; [`Failure::Busy`] at once when too
    /// many requests wait for one already.
    async fn render(
        &self,
        inputs: report::Inputs,
        format: Format,
        links: Links,
    ) -> Result<Arc<Rendered>, Failure> {
        let permit = match Arc::clone(&self.renders).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let Some(_waiting) = Waiting::enter(&self.waiting, self.max_waiters) else {
                    return Err(Failure::Busy);
                };
                Arc::clone(&self.renders)
                    .acquire_owned()
                    .await
                    .map_err(|_| Failure::Render)?
            }
        };
        let made = Instant::now();
        #[cfg(test)]
        let counts = Arc::clone(&self.counts);
        // Building, rendering and compressing tens of thousands of rows is CPU work: off the
        // async workers, the permit held to the end even if the request is gone.
        let rendered = tokio::task::spawn_blocking(move || {
            let _one_of_few = permit;
            #[cfg(test)]
            let _running = counts.enter();
            render(&inputs, format, links).map(|body| {
                let gzip = gzip(&[&body]);
                (body, gzip)
            })
        })
        .await;
        match rendered {
            Ok(Ok((body, gzip))) => Ok(Arc::new(Rendered {
                gzip,
                plain: Bytes::from(body),
                made,
            })),
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot render the report");
                Err(Failure::Render)
            }
            Err(error) => {
                tracing::error!(%error, "the report task failed");
                Err(Failure::Render)
            }
        }
    }

    /// Forgets report `id` once it can no longer be served (unless a newer one replaced it).
    fn forget_when_stale(self: &Arc<Self>, id: SlotId, cell: &Arc<OnceCell<Arc<Rendered>>>) {
        let reports = Arc::downgrade(self);
        let cell = Arc::downgrade(cell);
        tokio::spawn(async move {
            tokio::time::sleep(REUSE).await;
            let Some(reports) = reports.upgrade() else {
                return;
            };
            let mut slots = lock(&reports.slots);
            let same = slots
                .get(&id)
                .is_some_and(|slot| Weak::ptr_eq(&Arc::downgrade(&slot.cell), &cell));
            if same {
                slots.remove(&id);
            }
        });
    }
}

/// The blocking render: build the rows, then the page in `format`.
fn render(
    inputs: &report::Inputs,
    format: Format,
    links: Links,
) -> Result<Vec<u8>, report::RenderError> {
    let report = inputs.build();
    match format {
        Format::Html => report.render_html_page(links),
        other => report.render(other),
    }
}

/// The CSV and JSON links of the HTML page, with the same `?target=`.
fn links(target: Option<&str>) -> Links {
    let query = target
        .map(|t| {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("target", t)
                .finish();
            format!("?{query}")
        })
        .unwrap_or_default();
    Links {
        csv: format!("/report.csv{query}"),
        json: format!("/report.json{query}"),
    }
}

fn response(rendered: &Rendered, format: Format, gzip: bool) -> Response<Chunks> {
    let body = if gzip {
        rendered.gzip.clone()
    } else {
        rendered.plain.clone()
    };
    let mut response = with_type(StatusCode::OK, format.content_type(), body);
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if format == Format::Html {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(report::content_security_policy()),
        );
    }
    response
}

/// 503 at once: too many requests wait for a render.
fn busy(max_waiters: usize) -> Response<Chunks> {
    if let Some(refused) = RENDERS_REFUSED.due() {
        tracing::warn!(
            refused,
            limit = max_waiters,
            "too many report requests waiting for a render; answering 503"
        );
    }
    let mut response = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many reports being rendered; try again\n",
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// One request counted among those waiting for a permit, until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    /// Counts one more waiter, or `None` when `max` wait already.
    fn enter(waiting: &'a AtomicUsize, max: usize) -> Option<Waiting<'a>> {
        let before = waiting.fetch_add(1, Ordering::SeqCst);
        if before >= max {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Waiting(waiting))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A std mutex guard, poisoned or not (what it guards is replaced whole, never half-written).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
