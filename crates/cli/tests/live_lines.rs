//! Live output arrives in lines, not in write()-sized fragments (issue 14): under the real
//! binary and sandbox, `print("tick", i)` — four writes in unbuffered Python — is one `stdout`
//! event per line, as the README's example shows.

mod common;

use common::{sse, Server};

#[tokio::test]
async fn each_print_is_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let id = s
        .submit(
            "python",
            "import time\nfor i in range(3):\n    print(\"tick\", i)\n    time.sleep(0.2)\n",
        )
        .await;
    let events = sse::connect(&s.http, &s.url(&format!("/executions/{id}/events")), None)
        .await
        .all()
        .await;
    let chunks: Vec<String> = events
        .iter()
        .filter(|e| e.event == "stdout")
        .map(|e| e.chunk())
        .collect();
    assert_eq!(chunks, ["tick 0\n", "tick 1\n", "tick 2\n"], "{events:?}");
}
