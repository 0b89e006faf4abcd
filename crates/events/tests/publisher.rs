//! `Publisher` over the real `MemoryBus`: numbering, ordering, coalescing, the UTF-8 rule that
//! makes decoded chunks add up to the stored output, and the byte cap of its queue.

mod common;

use common::{collect, new_id};
use livexec_core::{Event, EventBus, EventKind, OutputStream, Status};
use livexec_events::{MemoryBus, Publisher, PublisherConfig};
use std::sync::Arc;

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Output mixing ASCII, 2/3/4-byte characters, and (when `invalid`) stray and truncated bytes.
fn output(rng: &mut Rng, len: usize, invalid: bool) -> Vec<u8> {
    let pieces: [&[u8]; 8] = [
        b"hello ",
        "é".as_bytes(),
        "€".as_bytes(),
        "😀".as_bytes(),
        b"\n",
        b"\0",
        &[0xFF],
        &[0xE2, 0x82],
    ];
    let usable = if invalid { pieces.len() } else { 6 };
    let mut out = Vec::new();
    while out.len() < len {
        out.extend_from_slice(pieces[rng.below(usable as u64) as usize]);
    }
    out
}

fn stdout_of(events: &[Event]) -> (Vec<u8>, String) {
    let mut raw = Vec::new();
    let mut text = String::new();
    for e in events {
        if let EventKind::Stdout(b) = &e.kind {
            raw.extend_from_slice(b);
            text.push_str(&String::from_utf8_lossy(b));
        }
    }
    (raw, text)
}

async fn run_through(chunks: Vec<Vec<u8>>) -> Vec<Event> {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let id = new_id();
    let reader = tokio::spawn(collect(bus.subscribe(id, 0).await.unwrap()));
    let publisher = Publisher::start(Arc::clone(&bus), id);
    let handle = publisher.handle();
    tokio::task::spawn_blocking(move || {
        handle.status(Status::Running);
        for chunk in chunks {
            handle.stdout(&chunk);
            handle.stderr(b"e");
        }
    })
    .await
    .unwrap();
    publisher.finish(Status::Completed).await;
    reader.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoded_chunks_add_up_to_the_lossy_decoding_of_the_whole_output() {
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let all = output(&mut rng, 5000, seed % 2 == 0);
        let mut chunks = Vec::new();
        let mut rest = &all[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(9) as usize).min(rest.len());
            chunks.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        let events = run_through(chunks).await;
        let (raw, text) = stdout_of(&events);
        assert_eq!(raw, all, "seed {seed}: bytes");
        assert_eq!(text, String::from_utf8_lossy(&all), "seed {seed}: text");
        if seed % 2 == 1 {
            // Valid UTF-8 output: every chunk is valid on its own.
            for e in &events {
                if let EventKind::Stdout(b) = &e.kind {
                    assert!(std::str::from_utf8(b).is_ok(), "seed {seed}: split char");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqs_are_contiguous_and_finished_is_last() {
    let chunks = (0..500).map(|i| format!("{i}\n").into_bytes()).collect();
    let events = run_through(chunks).await;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
    assert_eq!(events[0].kind, EventKind::Status(Status::Running));
    assert_eq!(
        events.last().unwrap().kind,
        EventKind::Finished(Status::Completed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_character_at_the_very_end_is_flushed_by_finish() {
    let events = run_through(vec![b"ab\xE2\x82".to_vec()]).await;
    let (raw, text) = stdout_of(&events);
    assert_eq!(raw, b"ab\xE2\x82");
    assert_eq!(text, "ab\u{FFFD}");
}

// A current-thread runtime runs the pump only when the test yields, so everything sent
// before `finish` is queued at once: deterministic coalescing and queue-cap checks.
#[tokio::test(flavor = "current_thread")]
async fn queued_chunks_of_one_stream_are_coalesced() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let id = new_id();
    let stream = bus.subscribe(id, 0).await.unwrap();
    let publisher = Publisher::start(Arc::clone(&bus), id);
    for i in 0..1000 {
        publisher.send(EventKind::Stdout(format!("{i}\n").into_bytes()));
    }
    publisher.send(EventKind::Finished(Status::Failed)); // refused: only finish() ends
    let stats = publisher.finish(Status::Completed).await;
    let events = collect(stream).await;
    assert!(events.len() <= 6, "{} events", events.len());
    assert_eq!(stats.published, events.len() as u64);
    let expected: String = (0..1000).map(|i| format!("{i}\n")).collect();
    assert_eq!(stdout_of(&events).1, expected);
    assert_eq!(
        events.last().unwrap().kind,
        EventKind::Finished(Status::Completed)
    );
}

/// The compiler's streams and the program's are four streams: queued chunks merge only within
/// one, and each holds back its own incomplete character (`é` split across two writes of each
/// stream, interleaved).
#[tokio::test(flavor = "current_thread")]
async fn each_stream_coalesces_and_carries_on_its_own() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let id = new_id();
    let stream = bus.subscribe(id, 0).await.unwrap();
    let publisher = Publisher::start(Arc::clone(&bus), id);
    let handle = publisher.handle();
    for s in OutputStream::ALL {
        handle.output(s, format!("{}: caf", s.name()).as_bytes());
        handle.output(s, &[0xc3]);
    }
    for s in OutputStream::ALL {
        handle.output(s, &[0xa9]);
        handle.output(s, b"\n");
    }
    publisher.finish(Status::Completed).await;
    let events = collect(stream).await;
    for s in OutputStream::ALL {
        let chunks: Vec<String> = events
            .iter()
            .filter_map(|e| e.kind.output())
            .filter(|(of, _)| *of == s)
            .map(|(_, b)| String::from_utf8(b.to_vec()).expect("a chunk decodes on its own"))
            .collect();
        assert_eq!(
            chunks.concat(),
            format!("{}: café\n", s.name()),
            "{events:#?}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn past_the_queue_cap_events_are_dropped_and_counted() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let id = new_id();
    let config = PublisherConfig {
        max_queued_bytes: 100,
        ..PublisherConfig::default()
    };
    let publisher = Publisher::with_config(Arc::clone(&bus), id, 1, config);
    for _ in 0..10 {
        publisher.send(EventKind::Stdout(vec![b'x'; 50]));
    }
    let stats = publisher.finish(Status::Completed).await;
    assert_eq!(stats.dropped, 8);
    let events = collect(bus.subscribe(id, 0).await.unwrap()).await;
    assert_eq!(stdout_of(&events).0, vec![b'x'; 100]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_without_finished() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let id = new_id();
    let publisher = Publisher::start(Arc::clone(&bus), id);
    publisher.send(EventKind::Status(Status::Running));
    publisher.send(EventKind::Stdout(b"partial \xF0\x9F".to_vec()));
    publisher.send(EventKind::Status(Status::Queued));
    let stats = publisher.close().await;
    assert_eq!(stats.published, 4);
    let mut stream = bus.subscribe(id, 0).await.unwrap();
    let got = common::take(&mut stream, 4).await;
    let kinds: Vec<_> = got.into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Status(Status::Running),
            EventKind::Stdout(b"partial ".to_vec()),
            EventKind::Status(Status::Queued),
            EventKind::Stdout(b"\xF0\x9F".to_vec()),
        ]
    );
}

/// A burst of writes (Python's `print("tick", 0)` is four) becomes one event; output written
/// after the linger (5 ms) is a new one. Paused time: the test advances the clock itself.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_burst_within_the_linger_is_one_event() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let id = new_id();
    let publisher = Publisher::start(Arc::clone(&bus), id);
    for part in ["tick", " ", "0", "\n"] {
        publisher.send(EventKind::Stdout(part.as_bytes().to_vec()));
        // Let the pump run between writes, 1 ms apart: inside the linger.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    publisher.send(EventKind::Stdout(b"tick 1\n".to_vec()));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    publisher.finish(Status::Completed).await;
    let events = collect(bus.subscribe(id, 0).await.unwrap()).await;
    let chunks: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Stdout(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(chunks, ["tick 0\n", "tick 1\n"]);
}

/// A line stalled mid-way (a CPU quota can pause a program between two writes) is still one
/// event when its end comes within the line linger (25 ms); a finished line is not held that
/// long.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_line_stalled_within_the_line_linger_is_one_event() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let id = new_id();
    let publisher = Publisher::start(Arc::clone(&bus), id);
    let ms = std::time::Duration::from_millis;
    publisher.send(EventKind::Stdout(b"tick".to_vec()));
    tokio::time::sleep(ms(15)).await;
    publisher.send(EventKind::Stdout(b" 0\n".to_vec()));
    tokio::time::sleep(ms(15)).await;
    // A complete line: only the short linger applies, so this 10 ms later write is apart.
    publisher.send(EventKind::Stdout(b"tick 1\n".to_vec()));
    tokio::time::sleep(ms(10)).await;
    publisher.send(EventKind::Stdout(b"tick 2\n".to_vec()));
    tokio::time::sleep(ms(50)).await;
    publisher.finish(Status::Completed).await;
    let events = collect(bus.subscribe(id, 0).await.unwrap()).await;
    let chunks: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Stdout(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(chunks, ["tick 0\n", "tick 1\n", "tick 2\n"]);
}
