//! The service's own log (issue 14): written to a file it carries no terminal escape codes,
//! and `LIVEXEC_LOG_FORMAT=json` makes every line one JSON object, request lines with their
//! query string.

mod common;

use common::Server;

async fn logged_with(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), env).await;
    let r = s.http.get(s.url("/runtimes?probe=1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The request line is written after the answer; wait for it, not for a time.
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while !s.log_text().contains("/runtimes?probe=1") {
        assert!(std::time::Instant::now() < deadline, "{}", s.log_text());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    s.log_text()
}

#[tokio::test]
async fn text_log_in_a_file_has_no_escape_codes() {
    let log = logged_with(&[]).await;
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in the log file:\n{log}"
    );
    assert!(log.contains("path=/runtimes?probe=1 status=200"), "{log}");
}

#[tokio::test]
async fn json_log_is_one_object_per_line() {
    let log = logged_with(&[("LIVEXEC_LOG_FORMAT", "json")]).await;
    let mut requests = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        if v["fields"]["message"] == "request" && v["fields"]["path"] == "/runtimes?probe=1" {
            assert_eq!(v["fields"]["status"], 200);
            requests += 1;
        }
    }
    assert_eq!(requests, 1, "{log}");
}
