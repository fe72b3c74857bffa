//! The embedding app's own tasks on the node's arbiters: `Node::spawn_task`,
//! `Node::spawn_task_on`, `Node::run` (docs/runtime.md, "Same-thread asks").
//!
//! A task runs on an arbiter's thread beside the service instances placed
//! there, so an ask from it to a service that prefers local instances
//! (`ServiceSpec::prefer_local`) is served on the same thread: no wake-up of
//! another thread, no cross-thread queue. Its result comes back through a
//! oneshot channel ([`TaskHandle`]); a panic is caught and reported, and a
//! task still running when the node stops is dropped at its next await.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_util::FutureExt as _;
use tokio::sync::oneshot;

use super::{Exec, Node};
use crate::error::TaskError;
use crate::lifecycle::panic_message;

/// A task started with [`Node::spawn_task`]: await it for the task's output.
/// Dropping it does not stop the task.
#[derive(Debug)]
#[must_use = "a TaskHandle is how the task's output and failure are seen"]
pub struct TaskHandle<T> {
    state: HandleState<T>,
}

#[derive(Debug)]
enum HandleState<T> {
    Waiting(oneshot::Receiver<Result<T, TaskError>>),
    Failed(Option<TaskError>),
}

impl<T> TaskHandle<T> {
    fn failed(e: TaskError) -> Self {
        Self {
            state: HandleState::Failed(Some(e)),
        }
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            HandleState::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(TaskError::Stopped))),
            HandleState::Failed(e) => Poll::Ready(Err(e.take().unwrap_or(TaskError::Stopped))),
        }
    }
}

/// `future` with its output (or its panic) sent to the handle.
fn wrapped<F>(future: F) -> (impl Future<Output = ()>, TaskHandle<F::Output>)
where
    F: Future,
{
    let (tx, rx) = oneshot::channel();
    let task = async move {
        let out = AssertUnwindSafe(future)
            .catch_unwind()
            .await
            .map_err(|p| TaskError::Panicked(panic_message(&*p)));
        // The handle may have been dropped: nobody waits for the output.
        let _ = tx.send(out);
    };
    (
        task,
        TaskHandle {
            state: HandleState::Waiting(rx),
        },
    )
}

impl Node {
    /// Runs `future` as a task on one of the node's arbiters (round-robin
    /// over them), beside the service instances placed there: an ask from
    /// it to a service spawned with
    /// [`ServiceSpec::prefer_local`](crate::ServiceSpec::prefer_local) that
    /// has an instance on that arbiter is served on the same thread. On a
    /// local node (`start_local`) the task runs on the node's thread, and
    /// must be spawned from it.
    ///
    /// The handle yields the output, [`TaskError::Panicked`] if the task
    /// panicked, [`TaskError::Stopped`] if the node stopped first (the task
    /// is dropped at its next await), [`TaskError::ShuttingDown`] if the
    /// node was already shutting down.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let node = msa_runtime::Node::builder().arbiters(2).start().unwrap();
    /// let handle = node.spawn_task(async { 6 * 7 });
    /// assert_eq!(handle.await, Ok(42));
    /// node.shutdown(std::time::Duration::from_secs(1)).await.unwrap();
    /// # }
    /// ```
    pub fn spawn_task<F>(&self, future: F) -> TaskHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let n = self.arbiters().max(1);
        let index = self.inner.task_next.fetch_add(1, Ordering::Relaxed) % n;
        self.spawn_task_on(index, future)
    }

    /// [`spawn_task`](Self::spawn_task) on arbiter `index` (`0..arbiters()`;
    /// ignored on a local node), for an app that places its tasks itself.
    pub fn spawn_task_on<F>(&self, index: usize, future: F) -> TaskHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shared = self.shared();
        if shared.closing.load(Ordering::Acquire) {
            return TaskHandle::failed(TaskError::ShuttingDown);
        }
        let (task, handle) = wrapped(future);
        match &shared.exec {
            Exec::Arbiters { handles, .. } => match handles.get(index) {
                // `false`: the arbiter has stopped (the node is stopping).
                Some(h) if h.spawn(task) => handle,
                Some(_) => TaskHandle::failed(TaskError::Stopped),
                None => TaskHandle::failed(TaskError::NoSuchArbiter {
                    index,
                    arbiters: handles.len(),
                }),
            },
            Exec::Local => {
                let spawned = std::panic::catch_unwind(AssertUnwindSafe(move || {
                    drop(tokio::task::spawn_local(task));
                }));
                match spawned {
                    Ok(()) => handle,
                    Err(_) => TaskHandle::failed(TaskError::NotOnNodeThread),
                }
            }
        }
    }

    /// Runs `future` on one of the node's arbiters
    /// ([`spawn_task`](Self::spawn_task)) and waits for its output: the
    /// entry point of an embedding app whose calls should stay on the
    /// node's threads.
    ///
    /// # Errors
    /// As the handle of [`spawn_task`](Self::spawn_task).
    ///
    /// # Examples
    /// ```
    /// use msa_runtime::{Handler, Node, Reply, Service, ServiceContext, ServiceSpec};
    ///
    /// #[derive(actix::Message)]
    /// #[rtype(result = "u64")]
    /// struct Double(u64);
    ///
    /// #[derive(Default)]
    /// struct Doubler;
    /// impl Service for Doubler {}
    /// impl Handler<Double> for Doubler {
    ///     fn handle(&mut self, m: Double, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
    ///         Reply::ready(m.0 * 2)
    ///     }
    /// }
    ///
    /// # #[tokio::main] async fn main() {
    /// let node = Node::builder().arbiters(2).start().unwrap();
    /// // One instance per arbiter, each preferred by the callers beside it.
    /// let doubler = node
    ///     .spawn(
    ///         ServiceSpec::new("doubler", Doubler::default)
    ///             .handles_local::<Double>()
    ///             .instances(node.arbiters())
    ///             .prefer_local(),
    ///     )
    ///     .await
    ///     .unwrap();
    /// // The ask is served on the task's own thread.
    /// let out = node.run(async move { doubler.ask(Double(21)).await }).await;
    /// assert_eq!(out, Ok(Ok(42)));
    /// node.shutdown(std::time::Duration::from_secs(1)).await.unwrap();
    /// # }
    /// ```
    pub async fn run<F>(&self, future: F) -> Result<F::Output, TaskError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_task(future).await
    }
}
