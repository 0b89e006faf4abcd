//! Live output (issue 5) on the real binary and the real sandbox: `GET /executions/:id/events`
//! (Server-Sent Events) and `POST /code-sessions/:id/run?wait=true`, first on the embedded
//! default (SQLite, in-process bus), then the same checks with the API and the worker in
//! separate processes on PostgreSQL and Redis.

mod common;

use common::scaled::{refs, scaled};
use common::sse::{self, assert_ids_increase, gap, output, SseEvent};
use common::Server;
use serde_json::Value;
use std::time::Duration;

/// Limits of every server here: 5 s, 1000 bytes of output per stream.
const LIMITS: &[(&str, &str)] = &[
    ("LIVEXEC_TIMEOUT_MS", "5000"),
    ("LIVEXEC_OUTPUT_LIMIT_BYTES", "1000"),
];

async fn embedded() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), LIMITS).await;
    (dir, server)
}

fn events_url(s: &Server, id: &str) -> String {
    s.url(&format!("/executions/{id}/events"))
}

/// `POST /code-sessions/:id/run?<query>` with an optional key: status, `Location`, body.
async fn run_query(
    s: &Server,
    session: &str,
    query: &str,
    key: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut req = s
        .http
        .post(s.url(&format!("/code-sessions/{session}/run?{query}")));
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, location, res.json().await.unwrap())
}

/// Every event of execution `id` from the start until the stream ends, which must not be an
/// interruption.
async fn watch(s: &Server, id: &str) -> Vec<SseEvent> {
    let events = sse::connect(&s.http, &events_url(s, id), None)
        .await
        .all()
        .await;
    assert_no_interruption(&events);
    events
}

fn assert_no_interruption(events: &[SseEvent]) {
    assert!(
        events.iter().all(|e| e.event != "interrupted"),
        "stream was interrupted: {events:#?}"
    );
}

/// A line, 500 ms of sleep, another line: two `stdout` events at least ~400 ms apart, both
/// before the `result`, with `RUNNING` and `COMPLETED` status events.
async fn check_two_lines_arrive_apart(s: &Server) {
    let code =
        "import time\nprint('first', flush=True)\ntime.sleep(0.5)\nprint('second', flush=True)";
    let id = s.submit("python", code).await;
    let events = watch(s, &id).await;
    assert_ids_increase(&events);
    let result = sse::result(&events);
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["stdout"], "first\nsecond\n");
    assert_eq!(output(&events, "stdout"), "first\nsecond\n", "{events:#?}");
    let first = events
        .iter()
        .position(|e| e.event == "stdout" && e.chunk().contains("first"))
        .expect("an event with the first line");
    let second = events
        .iter()
        .position(|e| e.event == "stdout" && e.chunk().contains("second"))
        .expect("an event with the second line");
    assert!(first < second, "{events:#?}");
    assert!(
        !events[first].chunk().contains("second"),
        "both lines came in one event: {events:#?}"
    );
    let apart = gap(&events[first], &events[second]);
    assert!(
        apart >= Duration::from_millis(400),
        "the lines arrived {apart:?} apart: not live"
    );
    let statuses: Vec<String> = events
        .iter()
        .filter(|e| e.event == "status")
        .map(|e| e.json()["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(statuses.contains(&"RUNNING".to_owned()), "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("COMPLETED"));
    let running = events
        .iter()
        .position(|e| e.event == "status" && e.data.contains("RUNNING"))
        .unwrap_or(usize::MAX);
    assert!(running < first, "RUNNING must come before the output");
}

/// A client that connects while the program runs gets the status and the output so far, then
/// the rest, each byte once; one that connects after the end gets the `result` at once.
async fn check_late_subscriber(s: &Server) {
    let code =
        "import time\nprint('early', flush=True)\ntime.sleep(0.8)\nprint('late', flush=True)";
    let id = s.submit("python", code).await;
    let mut early = sse::connect(&s.http, &events_url(s, &id), None).await;
    let mut seen = early.until(|e| e.event == "stdout").await;
    // The first line is out and the program sleeps: subscribe now.
    let late = watch(s, &id).await;
    assert_ids_increase(&late);
    assert_eq!(output(&late, "stdout"), "early\nlate\n", "{late:#?}");
    assert_eq!(late[0].event, "status", "{late:#?}");
    assert_eq!(late[0].json()["status"], "RUNNING");
    assert_eq!(sse::result(&late)["stdout"], "early\nlate\n");
    seen.extend(early.all().await);
    assert_eq!(output(&seen, "stdout"), "early\nlate\n");

    let after = sse::connect(&s.http, &events_url(s, &id), None)
        .await
        .all()
        .await;
    assert_eq!(
        after.len(),
        1,
        "a finished execution answers only its result: {after:#?}"
    );
    let result = sse::result(&after);
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["execution_id"], id.as_str());
    assert_eq!(result["stdout"], "early\nlate\n");
}

/// A broken stream resumes with `Last-Event-ID`: nothing lost, nothing repeated.
async fn check_resume(s: &Server) {
    let code = "import time\nfor i in range(6):\n    print(i, flush=True)\n    time.sleep(0.15)";
    let id = s.submit("python", code).await;
    let mut first = sse::connect(&s.http, &events_url(s, &id), None).await;
    let mut seen = first.until(|e| e.event == "stdout").await;
    seen.extend(first.until(|e| e.event == "stdout").await);
    drop(first);
    let last = seen.iter().filter_map(|e| e.id).max().expect("an id");
    let rest = sse::connect(&s.http, &events_url(s, &id), Some(last))
        .await
        .all()
        .await;
    assert_no_interruption(&rest);
    assert!(
        rest.iter().filter_map(|e| e.id).all(|i| i >= last),
        "resume repeated events before {last}: {rest:#?}"
    );
    assert!(
        rest.iter()
            .filter(|e| e.event != "result")
            .filter_map(|e| e.id)
            .all(|i| i > last),
        "{rest:#?}"
    );
    let mut all = seen.clone();
    all.extend(rest.iter().cloned());
    assert_ids_increase(&all);
    let expected = "0\n1\n2\n3\n4\n5\n";
    assert_eq!(output(&all, "stdout"), expected, "{all:#?}");
    assert_eq!(sse::result(&rest)["stdout"], expected);

    // The same through `?last_event_id=` (clients that cannot set headers).
    let url = format!("{}?last_event_id={last}", events_url(s, &id));
    let again = sse::connect(&s.http, &url, None).await.all().await;
    assert_eq!(again.len(), 1, "finished: only the result: {again:#?}");
}

/// 50 clients on one execution all see the same events in the same order.
async fn check_fifty_subscribers(s: &Server) {
    let code = "import time\ntime.sleep(1.5)\nfor i in range(10):\n    print('line', i, flush=True)\n    time.sleep(0.05)";
    let id = s.submit("python", code).await;
    let mut readers = Vec::new();
    for _ in 0..50 {
        readers.push(sse::connect(&s.http, &events_url(s, &id), None).await);
    }
    // Every client is subscribed (the answer's headers come after the subscription).
    let state = s.execution(&id).await;
    assert!(
        !common::is_terminal(&state),
        "the program ended before all 50 clients connected; the check proves nothing: {state}"
    );
    let mut tasks = tokio::task::JoinSet::new();
    for r in readers {
        tasks.spawn(r.all());
    }
    let mut seqs = Vec::new();
    while let Some(events) = tasks.join_next().await {
        let events = events.unwrap();
        assert_no_interruption(&events);
        // The QUEUED greeting (no id) depends on when the client came; the rest may not.
        let keyed: Vec<_> = events
            .iter()
            .filter(|e| e.id.is_some())
            .map(SseEvent::key)
            .collect();
        seqs.push((keyed, output(&events, "stdout")));
    }
    assert_eq!(seqs.len(), 50);
    let expected: String = (0..10).map(|i| format!("line {i}\n")).collect();
    for (keyed, out) in &seqs {
        assert_eq!(out, &expected);
        assert_eq!(keyed, &seqs[0].0, "subscribers saw different sequences");
    }
    assert!(seqs[0].0.iter().any(|(name, _, _)| name == "result"));
}

/// `?wait=true`: 200 with the finished execution; 202 with the execution as it stands when
/// the wait runs out; idempotency the same with and without `wait`; bad values are 400 and
/// create nothing.
async fn check_wait(s: &Server) {
    let session = s.session("python", "print('Hello World')").await;
    let (status, location, body) = run_query(s, &session, "wait=true", Some("k-wait")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "COMPLETED", "{body}");
    assert_eq!(body["stdout"], "Hello World\n");
    assert_eq!(body["session_id"], session.as_str());
    let id = body["execution_id"].as_str().unwrap().to_owned();
    assert_eq!(
        location.as_deref(),
        Some(format!("/executions/{id}").as_str())
    );
    // The same key without wait: the same execution, its current status.
    let (status, _, plain) = run_query(s, &session, "", Some("k-wait")).await;
    assert_eq!(status, 200);
    assert_eq!(plain["execution_id"], id.as_str());
    assert_eq!(plain["status"], "COMPLETED");
    // And with wait again: the same execution, at once.
    let (status, _, again) = run_query(s, &session, "wait=true", Some("k-wait")).await;
    assert_eq!(status, 200);
    assert_eq!(again["execution_id"], id.as_str());

    let slow = s
        .session("python", "import time\ntime.sleep(1.5)\nprint('done')")
        .await;
    let (status, location, body) =
        run_query(s, &slow, "wait=true&timeout_ms=300", Some("k-slow")).await;
    assert_eq!(status, 202, "{body}");
    let slow_id = body["execution_id"].as_str().unwrap().to_owned();
    assert!(
        matches!(body["status"].as_str(), Some("QUEUED" | "RUNNING")),
        "{body}"
    );
    assert_eq!(
        location.as_deref(),
        Some(format!("/executions/{slow_id}").as_str())
    );
    // A retry with the key and a long enough wait gets the same execution, finished.
    let (status, _, body) = run_query(s, &slow, "wait=true", Some("k-slow")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["execution_id"], slow_id.as_str());
    assert_eq!(body["stdout"], "done\n");

    let fresh = s.session("python", "print(1)").await;
    for (query, message) in [
        ("wait=maybe", "wait must be true or false"),
        (
            "wait=true&timeout_ms=-5",
            "timeout_ms must be a non-negative integer (milliseconds)",
        ),
        (
            "timeout_ms=100",
            "timeout_ms is only allowed with wait=true",
        ),
    ] {
        let (status, _, body) = run_query(s, &fresh, query, None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["message"], serde_json::json!([message]), "{query}");
    }
    let history = s.history(&fresh).await;
    assert_eq!(
        history,
        serde_json::json!([]),
        "a refused run created an execution"
    );
}

/// An output flood is capped in the stream exactly as in the stored result.
async fn check_flood_capped(s: &Server) {
    let code = "import sys\nprint('warming up', file=sys.stderr, flush=True)\nwhile True:\n    sys.stdout.write('y' * 100)";
    let id = s.submit("python", code).await;
    let events = watch(s, &id).await;
    let result = sse::result(&events);
    assert_eq!(result["status"], "FAILED", "{result}");
    assert_eq!(result["error_type"], "OutputLimitExceeded");
    let streamed = output(&events, "stdout");
    assert_eq!(streamed.len(), 1000);
    assert_eq!(streamed, result["stdout"].as_str().unwrap());
    assert_eq!(output(&events, "stderr"), "warming up\n");
    assert_eq!(result["stderr"], "warming up\n");
    let stored = s.execution(&id).await;
    assert_eq!(stored["stdout"].as_str(), Some(streamed.as_str()));
}

/// Errors of the event stream use the API's error shape.
async fn check_stream_errors(s: &Server) {
    let missing = uuid::Uuid::new_v4();
    let res = s
        .http
        .get(events_url(s, &missing.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["message"], "Execution not found");
    let res = s
        .http
        .get(events_url(s, "not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let id = s.submit("python", "print(1)").await;
    let res = s
        .http
        .get(events_url(s, &id))
        .header("last-event-id", "seven")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Last-Event-ID"),
        "{body}"
    );
}

/// A compiled runtime's compiler output streams as `compile_stderr` events before the
/// program's output, and their concatenation is the result's `compile.stderr`; a compile that
/// fails streams its errors the same way before its `result`.
async fn check_compile_output(s: &Server) {
    let code = "#warning \"mind the gap\"\n#include <stdio.h>\nint main(void) { puts(\"ran\"); return 0; }\n";
    let id = s.submit("c", code).await;
    let events = watch(s, &id).await;
    assert_ids_increase(&events);
    let result = sse::result(&events);
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let compiled = output(&events, "compile_stderr");
    assert!(compiled.contains("warning: #warning"), "{events:#?}");
    assert_eq!(result["compile"]["stderr"], compiled.as_str());
    assert_eq!(output(&events, "compile_stdout"), "");
    assert_eq!(output(&events, "stdout"), "ran\n");
    let last_compile = events
        .iter()
        .rposition(|e| e.event == "compile_stderr")
        .unwrap_or(usize::MAX);
    let first_out = events.iter().position(|e| e.event == "stdout");
    assert!(first_out.is_some_and(|o| last_compile < o), "{events:#?}");

    let id = s.submit("c", "int main(void) { return x; }\n").await;
    let events = watch(s, &id).await;
    let result = sse::result(&events);
    assert_eq!(result["error_type"], "CompilationError", "{result}");
    let compiled = output(&events, "compile_stderr");
    assert!(compiled.contains("error:"), "{events:#?}");
    assert_eq!(result["compile"]["stderr"], compiled.as_str());
    assert_eq!(output(&events, "stdout") + &output(&events, "stderr"), "");
}

/// One test per check on the embedded default, each on its own server.
macro_rules! embedded_tests {
    ($($name:ident => $check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (_dir, s) = embedded().await;
            $check(&s).await;
        }
    )*};
}

embedded_tests! {
    two_lines_arrive_as_two_events_apart => check_two_lines_arrive_apart,
    late_subscriber_gets_everything_once => check_late_subscriber,
    last_event_id_resumes_without_loss => check_resume,
    fifty_subscribers_see_the_same_sequence => check_fifty_subscribers,
    run_and_wait => check_wait,
    flood_is_capped_in_the_stream_as_in_the_result => check_flood_capped,
    stream_errors_have_the_error_shape => check_stream_errors,
    compile_output_streams_before_the_program => check_compile_output,
}

/// Past LIVEXEC_MAX_SUBSCRIPTIONS a new stream is refused with 503 in the error shape, a
/// `wait=true` still answers (by polling the store), and a closed stream frees its place.
#[tokio::test]
async fn subscriptions_past_the_cap_are_refused_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = LIMITS.to_vec();
    env.push(("LIVEXEC_MAX_SUBSCRIPTIONS", "2"));
    let s = Server::start(dir.path(), &env).await;
    let id = s
        .submit(
            "python",
            "import time\nprint('up', flush=True)\ntime.sleep(1.5)",
        )
        .await;
    let one = sse::connect(&s.http, &events_url(&s, &id), None).await;
    let two = sse::connect(&s.http, &events_url(&s, &id), None).await;
    let res = s.http.get(events_url(&s, &id)).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], 503);
    assert_eq!(body["error"], "Service Unavailable");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("poll GET /executions"),
        "{body}"
    );
    let hello = s.session("python", "print('hi')").await;
    let (status, _, waited) = run_query(&s, &hello, "wait=true", None).await;
    assert_eq!(status, 200, "{waited}");
    assert_eq!(waited["stdout"], "hi\n");
    drop(two);
    // A place frees once a stream ends (the server notices a gone client at its next write,
    // at the latest the next keep-alive or the end of the run); a new stream then gets in.
    let deadline = std::time::Instant::now() + common::PATIENCE;
    let three = loop {
        let res = s.http.get(events_url(&s, &id)).send().await.unwrap();
        if res.status() == 200 {
            break res;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped stream's place never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(three.text().await.unwrap().contains("up\\n"));
    let rest = one.all().await;
    assert_eq!(sse::result(&rest)["stdout"], "up\n");
}

/// SIGTERM does not wait for open streams or waits: a stream ends with `interrupted` (the
/// client resumes elsewhere), a `wait=true` answers 202, and the running programs still finish.
#[tokio::test]
async fn shutdown_ends_streams_and_waits_at_once() {
    let (_dir, mut s) = embedded().await;
    let code = "import time\nprint('up', flush=True)\ntime.sleep(2)\nprint('down')";
    let id = s.submit("python", code).await;
    let mut stream = sse::connect(&s.http, &events_url(&s, &id), None).await;
    let mut seen = stream.until(|e| e.event == "stdout").await;
    let session = s.session("python", "import time\ntime.sleep(2)").await;
    let url = s.url(&format!("/code-sessions/{session}/run?wait=true"));
    let http = s.http.clone();
    let waiter = tokio::spawn(async move {
        let res = http.post(url).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap())
    });
    // The wait is under way once its execution exists.
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        let list = s.history(&session).await;
        if list.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the wait=true run never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.signal(nix::sys::signal::Signal::SIGTERM);
    seen.extend(stream.all().await);
    let last = seen.last().unwrap();
    assert_eq!(last.event, "interrupted", "{seen:#?}");
    assert_eq!(last.json()["last_event_id"], last.id.unwrap_or_default());
    let (status, body) = waiter.await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert!(!common::is_terminal(&body), "{body}");
    let exit = s.wait_exit().await;
    assert!(exit.success(), "{exit}");
    // The program the stream was watching still finished, and its result is stored.
    s.restart().await;
    let done = s.wait(&id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["stdout"], "up\ndown\n");
}

/// Every check again with the API and the worker in separate processes on PostgreSQL and
/// Redis: output produced by the worker reaches clients of the API node through Redis.
#[tokio::test]
#[ignore = "needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; default on 127.0.0.1)"]
async fn live_output_through_redis_across_processes() {
    let sc = scaled().await;
    let (api_dir, worker_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let with = |extra: &[(&str, &str)]| {
        let mut env = sc.env();
        env.extend(
            LIMITS
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    };
    let api = Server::start(api_dir.path(), &refs(&with(&[("LIVEXEC_ROLE", "api")]))).await;
    let worker_env = with(&[
        ("LIVEXEC_ROLE", "worker"),
        ("LIVEXEC_WORKERS", "2"),
        ("LIVEXEC_IDLE_POLL_MS", "10"),
    ]);
    let worker = Server::start(worker_dir.path(), &refs(&worker_env)).await;
    check_two_lines_arrive_apart(&api).await;
    check_late_subscriber(&api).await;
    check_resume(&api).await;
    check_fifty_subscribers(&api).await;
    check_wait(&api).await;
    check_flood_capped(&api).await;
    check_stream_errors(&api).await;
    check_compile_output(&api).await;
    drop(worker);
    drop(api);
    sc.cleanup().await;
}
