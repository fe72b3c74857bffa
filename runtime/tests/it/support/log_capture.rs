//! Captures what one test logs while the other tests of its binary run
//! beside it.
//!
//! A node logs on its own threads (its actix system and arbiters), which do
//! not inherit a test's thread-local default subscriber, so the capture
//! cannot be scoped by `tracing::subscriber::set_default`. Instead one
//! process-wide subscriber, installed on first use, hands each event to the
//! captures whose key it carries: a field of the event or of a span around
//! it, such as the `node` name on a traced call's span or the `supervisor`
//! name on a restart's span. A test keys its capture on a name no other test
//! uses, and reads only its own lines. While no capture is open the
//! subscriber turns every event away at the first check.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The lines logged, up to a level, with `field=value` on the event or on a
/// span around it. Stops capturing when dropped.
#[derive(Debug)]
pub(crate) struct LogCapture(Arc<Route>);

#[derive(Debug)]
struct Route {
    field: &'static str,
    value: String,
    level: Level,
    lines: Mutex<Vec<String>>,
}

/// The open captures.
static ROUTES: Mutex<Vec<Arc<Route>>> = Mutex::new(Vec::new());
/// The most verbose level an open capture takes (0: none open, 1: ERROR ..
/// 5: TRACE): the cheap first check of every event.
static MAX_LEVEL: AtomicUsize = AtomicUsize::new(0);

fn rank(level: Level) -> usize {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn routes() -> std::sync::MutexGuard<'static, Vec<Arc<Route>>> {
    ROUTES.lock().unwrap_or_else(PoisonError::into_inner)
}

fn update_max_level(routes: &[Arc<Route>]) {
    let max = routes.iter().map(|r| rank(r.level)).max().unwrap_or(0);
    MAX_LEVEL.store(max, Ordering::Release);
}

impl LogCapture {
    /// Captures the events up to `level` that carry `field=value`, on
    /// themselves or on a span around them (the span must start after this
    /// call).
    pub(crate) fn keyed(field: &'static str, value: impl Into<String>, level: Level) -> Self {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Router))
                .expect("no other global subscriber in the test binary");
        });
        let route = Arc::new(Route {
            field,
            value: value.into(),
            level,
            lines: Mutex::new(Vec::new()),
        });
        let mut routes = routes();
        routes.push(route.clone());
        update_max_level(&routes);
        LogCapture(route)
    }

    /// Everything captured so far, one event a line.
    pub(crate) fn text(&self) -> String {
        let lines = self.0.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().fold(String::new(), |mut out, l| {
            out.push_str(l);
            out.push('\n');
            out
        })
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        let mut routes = routes();
        routes.retain(|r| !Arc::ptr_eq(r, &self.0));
        update_max_level(&routes);
    }
}

/// The fields of an event or span: rendered `k=v` and kept for matching.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(&'static str, String)>,
}

impl Fields {
    fn has(&self, field: &str, value: &str) -> bool {
        self.pairs.iter().any(|(f, v)| *f == field && v == value)
    }

    fn render(&self, out: &mut String) {
        for (i, (f, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{f}={v}");
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.pairs.push((field.name(), value));
        }
    }
}

/// The layer that routes events to the open captures.
struct Router;

impl<S> Layer<S> for Router
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Asked again at every event: captures open and close.
        Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        rank(*meta.level()) <= MAX_LEVEL.load(Ordering::Acquire)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let routes: Vec<Arc<Route>> = routes()
            .iter()
            .filter(|r| *event.metadata().level() <= r.level)
            .cloned()
            .collect();
        if routes.is_empty() {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let scope: Vec<_> = ctx
            .event_scope(event)
            .map(|s| s.from_root().collect())
            .unwrap_or_default();
        let carries = |r: &Route| {
            fields.has(r.field, &r.value)
                || scope.iter().any(|span| {
                    span.extensions()
                        .get::<Fields>()
                        .is_some_and(|f| f.has(r.field, &r.value))
                })
        };
        let to: Vec<&Arc<Route>> = routes.iter().filter(|r| carries(r)).collect();
        if to.is_empty() {
            return;
        }
        // `LEVEL span{k=v}:span{k=v}: target: message k=v`, as the fmt
        // subscriber writes it.
        let meta = event.metadata();
        let mut line = format!("{:>5} ", meta.level());
        for span in &scope {
            line.push_str(span.name());
            if let Some(f) = span.extensions().get::<Fields>() {
                if !f.pairs.is_empty() {
                    line.push('{');
                    f.render(&mut line);
                    line.push('}');
                }
            }
            line.push(':');
        }
        if !scope.is_empty() {
            line.push(' ');
        }
        let _ = write!(line, "{}: ", meta.target());
        if let Some(m) = &fields.message {
            line.push_str(m);
            if !fields.pairs.is_empty() {
                line.push(' ');
            }
        }
        fields.render(&mut line);
        for r in to {
            r.lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line.clone());
        }
    }
}
