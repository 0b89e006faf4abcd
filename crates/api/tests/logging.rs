//! The request log: one info line per request with method, path, status and ms, never the
//! source code; server errors logged with their cause while the client gets no detail.

mod common;

use reqwest::StatusCode;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn one_info_line_per_request_without_code() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = common::start().await;
    let secret = "print('TOP-SECRET-CODE-1234')";
    let id = s.create_session("python", Some(secret)).await;
    let res = s
        .patch_json(
            &format!("/code-sessions/{id}"),
            &json!({"source_code": "print('OTHER-SECRET-5678')"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = s.run(&id, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.get("/nope").await.status(), StatusCode::NOT_FOUND);
    let paged = format!("/executions/sessions/{id}?limit=5");
    assert_eq!(s.get(&paged).await.status(), StatusCode::OK);
    s.store.pool().close().await;
    let res = s.get(&format!("/code-sessions/{id}")).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = res.text().await.unwrap();
    s.stop().await.unwrap();

    let log = capture.text();
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(": request method="))
        .collect();
    assert_eq!(requests.len(), 6, "{log}");
    for (method, path, status) in [
        ("POST", "/code-sessions".to_owned(), 201),
        ("PATCH", format!("/code-sessions/{id}"), 200),
        ("POST", format!("/code-sessions/{id}/run"), 200),
        ("GET", "/nope".to_owned(), 404),
        ("GET", paged.clone(), 200),
        ("GET", format!("/code-sessions/{id}"), 500),
    ] {
        let needle = format!("method={method} path={path} status={status} ms=");
        assert!(
            requests
                .iter()
                .any(|l| l.contains(" INFO ") && l.contains(&needle)),
            "no line with {needle} in\n{log}"
        );
    }
    assert!(log.contains("execution queued"), "{log}");
    assert!(!log.contains("TOP-SECRET"), "source code logged:\n{log}");
    assert!(!log.contains("OTHER-SECRET"), "source code logged:\n{log}");
    // The 500 is explained in the log, not to the client.
    assert!(
        log.contains(" ERROR ") && log.contains("request failed"),
        "{log}"
    );
    assert!(body.contains("Internal server error"));
    assert!(!body.to_lowercase().contains("pool"), "{body}");
}
