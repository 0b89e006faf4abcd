//! Shared helpers of the integration tests: Redis buses with their own key prefix (found and
//! `#[ignore]`d with the reason by `livexec_testkit`'s rule), and event builders.
#![allow(dead_code)]

pub mod server;

use futures::StreamExt;
use livexec_core::{BoxStream, Event, EventBus, EventKind, ExecutionId, Status};
use livexec_events::{RedisBus, RedisBusConfig};
use std::sync::Arc;
use uuid::Uuid;

/// A Redis bus on a fresh key prefix; [`RedisHarness::cleanup`] deletes its keys.
pub struct RedisHarness {
    pub bus: RedisBus,
    pub url: String,
    pub prefix: String,
}

impl RedisHarness {
    pub async fn new() -> RedisHarness {
        Self::with_config(RedisBusConfig::default()).await
    }

    pub async fn with_config(config: RedisBusConfig) -> RedisHarness {
        let url = livexec_testkit::redis_url();
        let prefix = livexec_testkit::unique_name();
        let bus = RedisBus::connect_with(&url, &prefix, config)
            .await
            .unwrap_or_else(|e| panic!("this test needs Redis at {url} (REDIS_URL): {e}"));
        RedisHarness { bus, url, prefix }
    }

    /// Deletes every key under this harness's prefix.
    pub async fn cleanup(&self) {
        livexec_testkit::delete_keys(&self.url, &self.prefix).await;
    }
}

/// A fresh execution id.
pub fn new_id() -> ExecutionId {
    Uuid::now_v7()
}

/// The kinds of a typical run of a compiled program: RUNNING, the compiler's output on both
/// of its streams, `n` output chunks alternating streams, COMPLETED.
pub fn run_kinds(n: usize) -> Vec<EventKind> {
    let mut kinds = vec![
        EventKind::Status(Status::Running),
        EventKind::CompileStdout(b"compiling main.c\n".to_vec()),
        EventKind::CompileStderr("main.c:1:2: warning: ‘x’ unused\n".as_bytes().to_vec()),
    ];
    for i in 0..n {
        let text = format!("line {i} ünïcødé €\n").into_bytes();
        kinds.push(if i % 3 == 2 {
            EventKind::Stderr(text)
        } else {
            EventKind::Stdout(text)
        });
    }
    kinds.push(EventKind::Finished(Status::Completed));
    kinds
}

/// `n` short stdout chunks, no status and no `Finished`.
pub fn stdout_lines(n: usize) -> Vec<EventKind> {
    (0..n)
        .map(|i| EventKind::Stdout(format!("{i}\n").into_bytes()))
        .collect()
}

/// Numbers kinds from seq 1.
pub fn number(id: ExecutionId, kinds: &[EventKind]) -> Vec<Event> {
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| Event {
            execution_id: id,
            seq: i as u64 + 1,
            kind: kind.clone(),
        })
        .collect()
}

/// Publishes events in order.
pub async fn publish_all(bus: &Arc<dyn EventBus>, events: &[Event]) {
    for e in events {
        bus.publish(e.clone()).await.unwrap();
    }
}

/// Reads a stream to its end (a hang guard of 60 s turns a hang into a failure).
pub async fn collect(stream: BoxStream<Event>) -> Vec<Event> {
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stream.collect::<Vec<_>>(),
    )
    .await
    .expect("event stream did not end")
}

/// Takes exactly `n` events (hang guard of 60 s).
pub async fn take(stream: &mut BoxStream<Event>, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = tokio::time::timeout(std::time::Duration::from_secs(60), stream.next())
            .await
            .expect("event stream stalled");
        out.push(next.expect("event stream ended early"));
    }
    out
}
