//! Prometheus metrics (issue 14) on the real binary and the real sandbox: `GET /metrics`
//! parses as the Prometheus text format, and its series move when real programs run, a
//! stream is open and a job waits in the queue. No user-supplied string becomes a label.

mod common;

use common::sse;
use common::Server;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One scrape: every sample by its series (`name{labels}` as printed, labels sorted).
struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    /// The value of `name` with exactly these labels; panics with the text when absent.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = series_key(name, labels);
        *self
            .samples
            .get(&key)
            .unwrap_or_else(|| panic!("no series {key} in:\n{}", self.text))
    }

    /// The value, or 0 when the series does not exist yet (a counter never incremented).
    fn get_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(&series_key(name, labels))
            .copied()
            .unwrap_or(0.0)
    }
}

fn series_key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<_> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    labels.sort();
    if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

/// Parses the text exposition format strictly enough to fail on anything malformed: every
/// line is a comment (`# HELP`/`# TYPE` with a known type) or `name{k="v",…} value`, every
/// sample's family has a `# TYPE`, and no series appears twice.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line has a type");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "unknown type in {line:?}"
            );
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let mut labels: Vec<String> = Vec::new();
                for pair in split_labels(body) {
                    let (k, v) = pair.split_once('=').expect("label is k=v");
                    assert!(
                        k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "label name {k:?}"
                    );
                    assert!(v.starts_with('"') && v.ends_with('"'), "label value {v:?}");
                    labels.push(format!("{k}={v}"));
                }
                labels.sort();
                (name, labels)
            }
            None => (series, Vec::new()),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name {name:?}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "{name} has no # TYPE");
        let key = if labels.is_empty() {
            name.to_owned()
        } else {
            format!("{name}{{{}}}", labels.join(","))
        };
        assert!(samples.insert(key, value).is_none(), "{line:?} twice");
    }
    samples
}

/// `a="x",b="y,z"` → `["a=\"x\"", "b=\"y,z\""]` (commas inside quotes stay).
fn split_labels(body: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in body.chars() {
        match c {
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => {
                if c == '"' && !escaped {
                    quoted = !quoted;
                }
                escaped = c == '\\' && !escaped;
                cur.push(c);
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

async fn scrape(s: &Server) -> Scrape {
    let r = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().await.unwrap();
    Scrape {
        samples: parse(&text),
        text,
    }
}

/// Scrape until `done` holds (a gauge that follows an event the test cannot await).
async fn scrape_until(s: &Server, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + common::PATIENCE;
    loop {
        let m = scrape(s).await;
        if done(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never got there:\n{}",
            m.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const PY: &[(&str, &str)] = &[("language", "python")];

#[tokio::test]
async fn metrics_move_with_real_runs_streams_and_queue() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("LIVEXEC_WORKERS", "1")]).await;
    // The worker loop starts beside the API: its gauge appears once it runs.
    let before = scrape_until(&s, |m| m.get_or_zero("livexec_worker_slots", &[]) == 1.0).await;
    let ok = [
        ("language", "python"),
        ("status", "COMPLETED"),
        ("error_type", "none"),
    ];
    let failed = [
        ("language", "python"),
        ("status", "FAILED"),
        ("error_type", "RuntimeError"),
    ];

    // One program that completes and one that fails, run to their ends.
    let good = s.submit("python", "print('hi')").await;
    s.wait(&good).await;
    let bad = s.submit("python", "import sys; sys.exit(3)").await;
    assert_eq!(s.wait(&bad).await["status"], "FAILED");
    let after = scrape(&s).await;
    assert_eq!(after.get("livexec_executions_total", &ok), 1.0);
    assert_eq!(after.get("livexec_executions_total", &failed), 1.0);
    for h in [
        "livexec_queue_wait_seconds_count",
        "livexec_run_seconds_count",
        "livexec_end_to_end_seconds_count",
    ] {
        assert_eq!(after.get(h, PY), 2.0, "{h}");
    }
    assert!(after.get("livexec_run_seconds_sum", PY) > 0.0);
    assert_eq!(
        after.get("livexec_sandbox_startup_seconds_count", &[]),
        2.0,
        "one start-up per run"
    );
    let run_route = [
        ("method", "POST"),
        ("route", "/code-sessions/{id}/run"),
        ("status", "200"),
    ];
    assert_eq!(
        after.get("livexec_http_requests_total", &run_route)
            - before.get_or_zero("livexec_http_requests_total", &run_route),
        2.0
    );
    let missing = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    let r = s.http.get(s.url("/no/such/thing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let m = scrape(&s).await;
    assert_eq!(m.get("livexec_http_requests_total", &missing), 1.0);
    for secret in [&good, &bad, "/no/such/thing"] {
        assert!(!m.text.contains(secret), "{secret} leaked into labels");
    }

    // A program that holds the only worker slot while a second one waits and a client
    // watches the first: busy slot, queue depth and open stream show; all fall back after.
    let slow = s
        .submit(
            "python",
            "import time\nprint('ready', flush=True)\ntime.sleep(4)",
        )
        .await;
    let mut stream =
        sse::connect(&s.http, &s.url(&format!("/executions/{slow}/events")), None).await;
    stream.until(|e| e.event == "stdout").await;
    let waiting = s.submit("python", "print('next')").await;
    let busy = scrape(&s).await;
    assert_eq!(busy.get("livexec_event_streams", &[]), 1.0, "{}", busy.text);
    // The event stream's connection and the scrape's, at least.
    assert!(
        busy.get("livexec_http_connections", &[]) >= 2.0,
        "{}",
        busy.text
    );
    assert_eq!(busy.get("livexec_worker_busy_slots", &[]), 1.0);
    assert_eq!(busy.get("livexec_queue_depth", &[]), 1.0);
    assert!(busy.get("livexec_queue_oldest_age_seconds", &[]) >= 0.0);
    let events = stream.all().await;
    assert_eq!(sse::result(&events)["status"], "COMPLETED");
    s.wait(&waiting).await;
    let idle = scrape_until(&s, |m| {
        m.get_or_zero("livexec_event_streams", &[]) == 0.0
            && m.get_or_zero("livexec_worker_busy_slots", &[]) == 0.0
    })
    .await;
    assert_eq!(idle.get("livexec_queue_depth", &[]), 0.0);
    assert_eq!(idle.get("livexec_queue_oldest_age_seconds", &[]), 0.0);
    assert_eq!(idle.get("livexec_executions_total", &ok), 3.0);
}

/// `--role worker` serves its own metrics on its health port, beside `/health`.
#[tokio::test]
async fn worker_role_serves_metrics_on_its_health_port() {
    let dir = tempfile::tempdir().unwrap();
    // The harness points LIVEXEC_HEALTH_BIND at the server's port and waits for /health.
    let w = Server::start(
        dir.path(),
        &[("LIVEXEC_ROLE", "worker"), ("LIVEXEC_WORKERS", "2")],
    )
    .await;
    let m = scrape_until(&w, |m| m.get_or_zero("livexec_worker_slots", &[]) == 2.0).await;
    assert_eq!(m.get("livexec_queue_depth", &[]), 0.0);
}
