//! The error paths every endpoint shares: malformed and non-object JSON, the body limit,
//! non-UUID path ids, unknown routes and methods, odd input that must never crash the server,
//! and graceful shutdown of `launch`.

mod common;

use common::{error_body, start, start_with};
use livexec_api::{ApiConfig, ConnectionLimits, SandboxHealth};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const INVALID_UUID: &str = "Validation failed (uuid is expected)";

#[tokio::test]
async fn malformed_json_is_400_in_our_shape() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    for path in ["/code-sessions".to_owned(), format!("/code-sessions/{id}")] {
        for body in [
            &b"{"[..],
            b"{\"language\":}",
            b"{'a':1}",
            b"\xff\xfe\x00",
            b"{\"a\":1}}",
        ] {
            let req = if path == "/code-sessions" {
                s.client.post(s.url(&path))
            } else {
                s.client.patch(s.url(&path))
            };
            let res = req
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await
                .unwrap();
            let msg = error_body(res, StatusCode::BAD_REQUEST).await;
            assert!(
                msg.as_str().unwrap().starts_with("Malformed JSON"),
                "{path} {body:?} → {msg}"
            );
        }
    }
}

#[tokio::test]
async fn non_object_json_is_400() {
    let s = start().await;
    for body in [
        "[]",
        "[{\"language\":\"python\"}]",
        "\"python\"",
        "42",
        "null",
        "true",
    ] {
        let msg = error_body(
            s.post_raw("/code-sessions", body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(msg, "The request body must be a JSON object", "{body}");
    }
}

#[tokio::test]
async fn empty_body_reports_missing_fields() {
    let s = start().await;
    let msg = error_body(
        s.post_raw("/code-sessions", "").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(msg, json!([common::LANGUAGE_MESSAGE]));
}

#[tokio::test]
async fn body_over_limit_is_413() {
    let config = ApiConfig {
        max_body_bytes: 1024,
        ..ApiConfig::default()
    };
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    let big = "x".repeat(2048);
    let body = json!({"language":"python","templateCode":big});
    let msg = error_body(
        s.post_json("/code-sessions", &body).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(msg, "request entity too large");
    // Also without a content-length (chunked), and on PATCH.
    let id = s.create_session("python", None).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"source_code\":\"".to_vec()),
        Ok(vec![b'a'; 4096]),
        Ok(b"\"}".to_vec()),
    ];
    let res = s
        .client
        .patch(s.url(&format!("/code-sessions/{id}")))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_body(res, StatusCode::PAYLOAD_TOO_LARGE).await,
        "request entity too large"
    );
    // Just under the limit is fine.
    let small = json!({"language":"python","templateCode":"y".repeat(900)});
    assert_eq!(
        s.post_json("/code-sessions", &small).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn default_limit_is_one_mib() {
    let s = start().await;
    let at = json!({"language":"python","templateCode":"a".repeat(1024 * 1024 - 100)});
    assert_eq!(
        s.post_json("/code-sessions", &at).await.status(),
        StatusCode::CREATED
    );
    let over = json!({"language":"python","templateCode":"a".repeat(1024 * 1024 + 1)});
    let res = s.post_json("/code-sessions", &over).await;
    error_body(res, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn non_uuid_ids_are_400_on_every_id_route() {
    let s = start().await;
    let bad_ids = [
        "123",
        "not-a-uuid",
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
        "0190c0de0000700080000000000000aa",
        "%F0%9F%98%80",
        "%FF",
    ];
    for bad in bad_ids {
        let requests = [
            (Method::GET, format!("/code-sessions/{bad}")),
            (Method::PATCH, format!("/code-sessions/{bad}")),
            (Method::POST, format!("/code-sessions/{bad}/run")),
            (Method::GET, format!("/executions/{bad}")),
            (Method::GET, format!("/executions/sessions/{bad}")),
        ];
        for (method, path) in requests {
            let res = s
                .client
                .request(method.clone(), s.url(&path))
                .json(&json!({"source_code":"x"}))
                .send()
                .await
                .unwrap();
            let msg = error_body(res, StatusCode::BAD_REQUEST).await;
            assert_eq!(msg, INVALID_UUID, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let s = start().await;
    // `/` is the playground (issue 14); an unknown asset is a 404 like any unknown path.
    for path in [
        "/assets/nope.js",
        "/nope",
        "/code-sessions/",
        "/code-sessions/a/b/c",
    ] {
        let msg = error_body(s.get(path).await, StatusCode::NOT_FOUND).await;
        assert_eq!(msg, format!("Cannot GET {path}"));
    }
    let id = Uuid::now_v7();
    let wrong = [
        (Method::GET, "/code-sessions".to_owned()),
        (Method::PUT, format!("/code-sessions/{id}")),
        (Method::GET, format!("/code-sessions/{id}/run")),
        (Method::POST, format!("/executions/{id}")),
        (Method::PUT, "/health".to_owned()),
    ];
    for (method, path) in wrong {
        let res = s
            .client
            .request(method.clone(), s.url(&path))
            .send()
            .await
            .unwrap();
        assert!(res.headers().contains_key("allow"), "{method} {path}");
        let msg = error_body(res, StatusCode::METHOD_NOT_ALLOWED).await;
        assert!(msg.as_str().unwrap().contains(method.as_str()), "{msg}");
    }
}

#[tokio::test]
async fn odd_input_never_crashes_the_server() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let deep = format!("{{\"language\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        b"{\"language\":\"python\",\"language\":\"cobol\"}".to_vec(),
        b"{\"language\":\"\\u0000\"}".to_vec(),
        b"{\"language\":\"python\",\"templateCode\":\"\\ud800\"}".to_vec(),
        b"{\"language\":1e999999}".to_vec(),
        b"{\"language\":\"python\",\"templateCode\":\"a\\u0000b\"}".to_vec(),
        vec![0u8; 1000],
        "{\"language\":\"python\",\"templateCode\":\"h\u{e9}llo \u{1F600}\"}".into(),
    ];
    for body in bodies {
        for path in ["/code-sessions".to_owned(), format!("/code-sessions/{id}")] {
            let res = s
                .client
                .post(s.url(&path))
                .header("content-type", "text/plain")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = res.status();
            assert!(
                status.is_client_error() || status == StatusCode::CREATED,
                "{path}: {status}"
            );
            let _: Value = res.json().await.expect("JSON answer");
        }
    }
    // Odd and huge headers, odd idempotency keys, odd query strings.
    let long = "v".repeat(30_000);
    let res = s
        .client
        .post(s.url(&format!("/code-sessions/{id}/run")))
        .header("x-odd", long.as_str())
        .header("idempotency-key", long.as_str())
        .send()
        .await
        .unwrap();
    error_body(res, StatusCode::BAD_REQUEST).await;
    for query in [
        "?limit=%FF",
        "?limit=1&limit=2",
        "?before=%00",
        "?&&==&",
        "?limit=1%00",
    ] {
        let res = s.get(&format!("/executions/sessions/{id}{query}")).await;
        assert!(res.status().is_success() || res.status() == StatusCode::BAD_REQUEST);
        let _: Value = res.json().await.expect("JSON answer");
    }
    // Raw bytes that no client library would send.
    let raw = format!(
        "POST /code-sessions/{id}/run HTTP/1.1\r\nhost: x\r\nidempotency-key: caf\u{e9}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    );
    let answer = s.raw(raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = s
        .raw(b"GET /\xff\xfe HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    let answer = s.raw(b"\x00\x01garbage\r\n\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    // Still alive and well.
    let res = s.get(&format!("/code-sessions/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn launch_returns_after_shutdown() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    assert!(!id.is_empty());
    let base = s.base.clone();
    s.stop().await.expect("graceful shutdown returns Ok");
    let after = reqwest::get(format!("{base}/health")).await;
    assert!(after.is_err(), "server still answering after shutdown");
}

/// Slowloris: a client that sends a request's head and never finishes it loses the
/// connection at the header-read deadline (the server does not hold it, and its file
/// descriptor, for as long as the client likes); an idle keep-alive connection is closed the
/// same way, and a client that sends whole requests is served meanwhile.
#[tokio::test]
async fn a_request_head_never_finished_loses_its_connection() {
    let config = ApiConfig {
        header_read_timeout: std::time::Duration::from_millis(300),
        ..ApiConfig::default()
    };
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    // Served meanwhile.
    let res = s.get("/health").await;
    assert_eq!(res.status(), StatusCode::OK);
    for (what, conn) in [
        ("an unfinished head", &mut slow),
        ("an idle connection", &mut idle),
    ] {
        // A guard, not a timing assertion: with no deadline the read would never end.
        let mut buf = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            conn.read_to_end(&mut buf),
        )
        .await;
        let closed = matches!(read, Ok(Ok(_)) | Ok(Err(_)));
        assert!(closed, "the server still holds {what} after 60 s");
        let head = String::from_utf8_lossy(&buf);
        assert!(!head.contains("200 OK"), "{what} was answered: {head}");
    }
}

/// A slow body: the head arrives, the body never does (nor with `Expect: 100-continue`). The
/// request is refused at the body deadline and the connection closed, instead of being held
/// for as long as the client likes.
#[tokio::test]
async fn a_request_body_never_finished_loses_its_connection() {
    let config = ApiConfig {
        body_read_timeout: std::time::Duration::from_millis(300),
        ..ApiConfig::default()
    };
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    for (path, extra) in [
        ("/code-sessions", ""),
        ("/api/v2/execute", ""),
        ("/mcp", "Expect: 100-continue\r\n"),
    ] {
        let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{extra}Content-Length: 100\r\n\r\n{{"
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        // A guard, not a timing assertion: without the deadline the read would never end.
        let mut buf = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            conn.read_to_end(&mut buf),
        )
        .await;
        let text = String::from_utf8_lossy(&buf);
        assert!(
            read.is_ok(),
            "{path}: the server still holds the request after 60 s: {text}"
        );
        let status = text
            .lines()
            .rev()
            .find(|l| l.starts_with("HTTP/1.1 ") && !l.starts_with("HTTP/1.1 100"))
            .unwrap_or_default()
            .to_owned();
        assert!(
            status.starts_with("HTTP/1.1 4"),
            "{path}: refused as a bad request: {text}"
        );
    }
    // Served meanwhile and after.
    assert_eq!(s.get("/health").await.status(), StatusCode::OK);
}

/// A whole answer read off a raw connection.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not).
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends one `GET path` with `Connection: close` on `conn` and reads the whole answer.
async fn raw_request(conn: &mut tokio::net::TcpStream, path: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    conn.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A connection from `from` (a loopback address) to the server.
async fn connect_from(from: &str, to: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// One client address cannot hold more than `per_address` connections: the next one gets a
/// 429 in the shape of the API it asked (native, Judge0, Piston) and is closed, while
/// another address is served; once one of its connections closes, it is served again.
#[tokio::test]
async fn a_client_address_over_its_connection_limit_gets_429_in_its_apis_shape() {
    let config = ApiConfig {
        connections: ConnectionLimits {
            total: 64,
            per_address: 2,
        },
        ..ApiConfig::default()
    };
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    // The metrics recorder is installed by the first scrape: the refusals below are counted.
    let a = raw_request(&mut connect_from("127.0.0.9", s.addr).await, "/metrics").await;
    assert_eq!(a.status, 200, "{}", a.head);
    // Two idle connections: accepted in order, before the ones below.
    let mut held = vec![
        connect_from("127.0.0.1", s.addr).await,
        connect_from("127.0.0.1", s.addr).await,
    ];
    let mut third = connect_from("127.0.0.1", s.addr).await;
    let a = raw_request(&mut third, "/health").await;
    let (status, body, head) = (a.status, a.json(), a.head);
    assert_eq!(status, 429, "{head}");
    assert_eq!(body["statusCode"], 429, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("LIVEXEC_MAX_CONNECTIONS_PER_ADDRESS") && message.contains("127.0.0.1"),
        "{body}"
    );
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    // A refused POST with a body gets its 429 too.
    let mut post = connect_from("127.0.0.1", s.addr).await;
    let body = format!("{{\"source_code\":\"{}\"}}", "x".repeat(32 * 1024));
    let request = format!(
        "POST /api/v2/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    post.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    post.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    for (path, field) in [("/languages", "error"), ("/api/v2/runtimes", "message")] {
        let mut conn = connect_from("127.0.0.1", s.addr).await;
        let a = raw_request(&mut conn, path).await;
        let (status, body, head) = (a.status, a.json(), a.head);
        assert_eq!(status, 429, "{path}: {head}");
        assert!(
            body[field]
                .as_str()
                .is_some_and(|m| m.contains("too many open connections")),
            "{path}: {body}"
        );
    }
    // Another client is not held back.
    let mut other = connect_from("127.0.0.2", s.addr).await;
    let a = raw_request(&mut other, "/health").await;
    assert_eq!(a.status, 200, "{}", a.head);
    // The refusals are counted (process-wide: at least this test's three).
    let text = raw_request(&mut connect_from("127.0.0.3", s.addr).await, "/metrics")
        .await
        .body;
    let refused: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("livexec_http_connections_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no refusal counter in {text}"));
    assert!(refused >= 3.0, "{refused}");
    // One connection closed: the address is served again (once the server has seen the close).
    drop(held.pop());
    let mut served = false;
    for _ in 0..200 {
        let mut conn = connect_from("127.0.0.1", s.addr).await;
        if raw_request(&mut conn, "/health").await.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        served,
        "still refused 10 s after one of its connections closed"
    );
}

/// At the total limit the server accepts nothing more until a connection closes: the next
/// client waits (in the kernel's backlog) and is then served, rather than the server running
/// out of file descriptors.
#[tokio::test]
async fn at_the_total_connection_limit_the_next_client_waits_for_a_free_one() {
    let config = ApiConfig {
        connections: ConnectionLimits {
            total: 2,
            per_address: 0,
        },
        ..ApiConfig::default()
    };
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    let mut held = vec![
        connect_from("127.0.0.1", s.addr).await,
        connect_from("127.0.0.2", s.addr).await,
    ];
    let mut waiting = connect_from("127.0.0.3", s.addr).await;
    waiting
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // A guard, not a timing assertion: an accepted request would be answered within it.
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        waiting.read_to_end(&mut buf),
    )
    .await;
    assert!(
        early.is_err(),
        "answered over the limit: {:?}",
        String::from_utf8_lossy(&buf)
    );
    drop(held.pop());
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        waiting.read_to_end(&mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "still not served 60 s after a connection closed"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}
