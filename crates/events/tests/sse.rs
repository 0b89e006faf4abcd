//! The SSE glue served by a real axum server on 127.0.0.1:0 with a real SQLite store, read
//! with reqwest and parsed as `text/event-stream`: against `MemoryBus` and, with `REDIS_URL`,
//! `RedisBus`.

mod common;

use common::server::{next, open, rest, Server};
use livexec_core::{EventBus, EventKind, Status};
use livexec_events::{MemoryBus, MemoryBusConfig, Publisher};
use std::sync::Arc;

/// The whole life of an execution watched from before it starts.
async fn live_run(bus: Arc<dyn EventBus>) {
    let server = Server::start(bus).await;
    let execution = server.queued_execution().await;
    let id = execution.id;
    let (status, mut frames) = open(&server.events_url(id), None).await;
    assert_eq!(status, 200);
    let queued = next(&mut frames).await.unwrap();
    assert_eq!(queued.name(), "status");
    assert_eq!(queued.id, None);
    assert_eq!(queued.json()["status"], "QUEUED");
    assert_eq!(queued.json()["execution_id"], id.to_string());

    // The worker's side.
    assert!(server.store.start_execution(id, 1).await.unwrap().is_some());
    let publisher = Publisher::start(Arc::clone(&server.bus), id);
    let out = publisher.handle();
    out.status(Status::Running);
    let stdout: &[u8] = "hello\nwörld €\n".as_bytes();
    let (a, b) = stdout.split_at(9); // inside "ö"'s neighbourhood: splits a character
    out.stdout(a);
    out.stderr(b"careful\n");
    out.stdout(b);
    server
        .record(id, Status::Completed, stdout, b"careful\n")
        .await;
    publisher.finish(Status::Completed).await;

    let frames = rest(&mut frames).await;
    let names: Vec<&str> = frames.iter().map(|f| f.name()).collect();
    assert_eq!(names.first(), Some(&"status"));
    assert_eq!(frames[0].json()["status"], "RUNNING");
    assert_eq!(&names[names.len() - 2..], ["status", "result"]);
    // Every event but the last two has its seq as id, growing by one.
    for (i, f) in frames[..frames.len() - 2].iter().enumerate() {
        assert_eq!(f.id.as_deref(), Some((i + 1).to_string().as_str()), "{f:?}");
        assert_eq!(f.json()["seq"], i as u64 + 1);
    }
    let text = |name: &str| -> String {
        frames
            .iter()
            .filter(|f| f.name() == name)
            .map(|f| f.json()["data"].as_str().unwrap().to_owned())
            .collect()
    };
    let result = frames.last().unwrap().json();
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["execution_id"], id.to_string());
    assert_eq!(text("stdout"), result["stdout"].as_str().unwrap());
    assert_eq!(text("stdout"), "hello\nwörld €\n");
    assert_eq!(text("stderr"), "careful\n");
    let finished = &frames[frames.len() - 2];
    assert_eq!(finished.json()["status"], "COMPLETED");
    assert_eq!(frames.last().unwrap().id, finished.id);
}

/// A client that reconnects with Last-Event-ID gets exactly what it had not seen.
async fn resume_with_last_event_id(bus: Arc<dyn EventBus>) {
    let server = Server::start(bus).await;
    let id = server.queued_execution().await.id;
    assert!(server.store.start_execution(id, 1).await.unwrap().is_some());
    // Explicit events (a Publisher could coalesce the lines into fewer events).
    let mut kinds = vec![EventKind::Status(Status::Running)];
    let mut stdout = Vec::new();
    for i in 0..4 {
        let line = format!("line {i}\n");
        stdout.extend_from_slice(line.as_bytes());
        kinds.push(EventKind::Stdout(line.into_bytes()));
    }
    kinds.push(EventKind::Finished(Status::Completed));
    let events = common::number(id, &kinds);
    for e in &events[..5] {
        server.bus.publish(e.clone()).await.unwrap();
    }
    // First connection: read up to event 3, then drop it.
    let (_, mut first) = open(&server.events_url(id), None).await;
    let seen: Vec<_> = [
        next(&mut first).await.unwrap(),
        next(&mut first).await.unwrap(),
        next(&mut first).await.unwrap(),
    ]
    .to_vec();
    assert_eq!(seen[2].id.as_deref(), Some("3"));
    drop(first);
    let (status, mut second) = open(&server.events_url(id), Some("3")).await;
    assert_eq!(status, 200);
    server.record(id, Status::Completed, &stdout, b"").await;
    server.bus.publish(events[5].clone()).await.unwrap();
    let frames = rest(&mut second).await;
    let ids: Vec<_> = frames.iter().map(|f| f.id.clone().unwrap()).collect();
    assert_eq!(ids, ["4", "5", "6", "6"]);
    let mut text: String = seen[1..]
        .iter()
        .map(|f| f.json()["data"].as_str().unwrap().to_owned())
        .collect();
    for f in frames.iter().filter(|f| f.name() == "stdout") {
        text.push_str(f.json()["data"].as_str().unwrap());
    }
    assert_eq!(text, String::from_utf8(stdout).unwrap());
    assert_eq!(frames.last().unwrap().name(), "result");
}

/// A finished execution answers with its result at once.
async fn finished_execution_answers_with_result(bus: Arc<dyn EventBus>) {
    let server = Server::start(bus).await;
    let id = server.queued_execution().await.id;
    assert!(server.store.start_execution(id, 1).await.unwrap().is_some());
    server.record(id, Status::Completed, b"done\n", b"").await;
    let (status, mut frames) = open(&server.events_url(id), Some("17")).await;
    assert_eq!(status, 200);
    let frames = rest(&mut frames).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].name(), "result");
    assert_eq!(frames[0].json()["stdout"], "done\n");
}

macro_rules! both_buses {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(livexec_events::MemoryBus::default())).await;
                }
            )*
        }
        mod redis {
            use super::common::RedisHarness;
            $(
                #[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = RedisHarness::new().await;
                    super::$name(std::sync::Arc::new(h.bus.clone())).await;
                    h.cleanup().await;
                }
            )*
        }
    };
}

both_buses!(
    live_run,
    resume_with_last_event_id,
    finished_execution_answers_with_result
);

#[tokio::test]
async fn bad_last_event_id_is_400_and_unknown_execution_is_404() {
    let server = Server::start(Arc::new(MemoryBus::default())).await;
    let id = server.queued_execution().await.id;
    let (status, _) = open(&server.events_url(id), Some("abc")).await;
    assert_eq!(status, 400);
    let (status, _) = open(&server.events_url(id), Some("-1")).await;
    assert_eq!(status, 400);
    let (status, _) = open(&server.events_url(uuid::Uuid::now_v7()), None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_far_behind_is_told_to_resume() {
    let bus = MemoryBus::new(MemoryBusConfig {
        max_log_bytes: 4096,
        ..MemoryBusConfig::default()
    });
    let server = Server::start(Arc::new(bus)).await;
    let id = server.queued_execution().await.id;
    assert!(server.store.start_execution(id, 1).await.unwrap().is_some());
    // Published directly (the Publisher would coalesce them into one event).
    for seq in 1..=200u64 {
        let event = livexec_core::Event {
            execution_id: id,
            seq,
            kind: livexec_core::EventKind::Stdout(format!("{seq:>99}\n").into_bytes()),
        };
        server.bus.publish(event).await.unwrap();
    }
    let (status, mut frames) = open(&server.events_url(id), None).await;
    assert_eq!(status, 200);
    let frames = rest(&mut frames).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].name(), "interrupted");
    assert_eq!(frames[0].json()["last_event_id"], 0);
}
