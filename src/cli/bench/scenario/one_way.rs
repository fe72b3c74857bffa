//! `tell` and `fan_in`: one-way throughput, from one or several sender tasks
//! that share the sink's thread.

use std::time::Instant;

use anyhow::{ensure, Context as _};

use super::super::services::YIELD_EVERY;
use super::{Body, Endpoint, Measurement};

/// `messages` tells, split evenly over `senders` tasks, then one ask for the
/// count. The clock runs from the first send until the count is confirmed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OneWay {
    pub(crate) messages: u64,
    /// 1 sends from the measuring task itself; more spawn that many tasks
    /// on the same thread (`actix_rt::spawn`).
    pub(crate) senders: u64,
}

async fn send_hits<E: Endpoint>(sink: &E, n: u64) -> anyhow::Result<()> {
    for i in 1..=n {
        sink.tell()?;
        if i % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

impl Body for OneWay {
    async fn run<E: Endpoint>(self, sink: E) -> anyhow::Result<Measurement> {
        let Self { messages, senders } = self;
        ensure!(senders >= 1, "at least one sender is needed");
        let start = Instant::now();
        if senders == 1 {
            send_hits(&sink, messages).await?;
        } else {
            let tasks: Vec<_> = (0..senders)
                .map(|i| {
                    let share = messages / senders + u64::from(i < messages % senders);
                    let sink = sink.clone();
                    actix_rt::spawn(async move { send_hits(&sink, share).await })
                })
                .collect();
            for t in tasks {
                t.await.context("a sender task failed")??;
            }
        }
        let counted = sink.count().await?;
        let elapsed = start.elapsed();
        ensure!(
            counted == messages,
            "the sink counted {counted} messages, {messages} were sent"
        );
        Ok(Measurement {
            messages,
            elapsed,
            latency_ns: None,
        })
    }
}
