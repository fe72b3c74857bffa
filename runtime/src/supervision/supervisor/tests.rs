use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::START_WINDOW;
use crate::{Service, ServiceContext, ServiceSpec};

/// Counts the instances made (factory called) and started, and the most
/// that were made but not yet started when one started.
#[derive(Default)]
struct Starts {
    made: AtomicUsize,
    started: AtomicUsize,
    most_in_flight: AtomicUsize,
}

struct Probe(Arc<Starts>);

impl Service for Probe {
    fn started(&mut self, _: &mut ServiceContext<'_, Self>) {
        let s = &self.0;
        let before = s.started.fetch_add(1, Ordering::SeqCst);
        let in_flight = s.made.load(Ordering::SeqCst) - before;
        s.most_in_flight.fetch_max(in_flight, Ordering::SeqCst);
    }
}

/// A service's instances start all at once, but at most `START_WINDOW` of
/// them are starting at a time: on a local node each launch makes its
/// instance at once, so without the window all of them were made before
/// the first one started.
#[test]
fn instances_start_at_most_a_window_at_a_time() {
    let instances = 3 * START_WINDOW + 5;
    let starts = Arc::new(Starts::default());
    let s = starts.clone();
    actix_rt::System::new().block_on(async move {
        let node = crate::Node::builder()
            .name("window")
            .start_local()
            .expect("a local node");
        let factory = move || {
            s.made.fetch_add(1, Ordering::SeqCst);
            Probe(s.clone())
        };
        node.spawn(ServiceSpec::new("probes", factory).instances(instances))
            .await
            .expect("spawned");
        assert_eq!(node.instances("probes").len(), instances);
        node.shutdown(std::time::Duration::from_secs(5))
            .await
            .expect("stopped");
    });
    assert_eq!(starts.made.load(Ordering::SeqCst), instances);
    assert_eq!(starts.started.load(Ordering::SeqCst), instances);
    let most = starts.most_in_flight.load(Ordering::SeqCst);
    assert!(
        (1..=START_WINDOW).contains(&most),
        "{most} instances were made and not yet started at once (window {START_WINDOW})"
    );
}
