//! Issue 12: the drop-in Judge0 CE 1.13.1 API, driven by the REAL official `judge0` Python
//! SDK and by raw HTTP (Judge0's exact shapes and errors), against the real binary over
//! loopback. The SDK comes from scripts/install-clients.sh.

mod common;

use common::{clients, Server};
use serde_json::{json, Value};
use std::collections::BTreeSet;

async fn server(dir: &std::path::Path) -> Server {
    Server::start(dir, &[("LIVEXEC_WORKERS", "4")]).await
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

/// Every key of a `fields=*` submission (Judge0 1.13.1's columns).
const ALL_FIELDS: &[&str] = &[
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

const DEFAULT_FIELDS: &[&str] = &[
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
];

#[tokio::test]
async fn judge0_sdk_runs_hello_world_and_reads_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let info = clients::judge0(&s.base, "info").await;
    assert_eq!(info["version"], "1.13.1");
    assert_eq!(info["statuses"], 14);
    assert_eq!(info["batch"], 20);
    let r = clients::judge0(&s.base, "hello").await;
    assert_eq!(r["stdout"], "hello, world\n", "{r}");
    assert_eq!(r["status"], 3, "{r}");
    assert!(
        r["time"].as_f64().is_some() && r["memory"].as_i64().is_some(),
        "{r}"
    );
}

/// Needs the engine to run `stdin` and `expected_output` (issue 11's run options).
#[tokio::test]
async fn judge0_sdk_runs_cpp_test_cases_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = clients::judge0(&s.base, "cpp_tests").await;
    let statuses: Vec<_> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(3), json!(3), json!(4)], "{r}");
    assert_eq!(r[1]["stdout"], "42\n", "{r}");
    let r = clients::judge0(&s.base, "stdin").await;
    assert_eq!(r["stdout"], "cba\n", "{r}");
}

#[tokio::test]
async fn judge0_raw_http_wait_fields_base64_batch_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    // wait=true, base64_encoded=false, a trailing slash: the default fields, exactly.
    let (code, v) = s
        .post_raw(
            "/submissions/?base64_encoded=false&wait=true",
            json!({"source_code": "print('hi')", "language_id": 71}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(keys(&v), set(DEFAULT_FIELDS), "{v}");
    assert_eq!(v["stdout"], "hi\n");
    assert_eq!(v["status"], json!({"id": 3, "description": "Accepted"}));
    let token = v["token"].as_str().unwrap().to_owned();
    // fields=* (URL-encoded) in base64: every column, strict base64, Judge0's timestamps.
    let (code, v) = s
        .get_json(&format!(
            "/submissions/{token}?base64_encoded=true&fields=%2A"
        ))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(keys(&v), set(ALL_FIELDS), "{v}");
    assert_eq!(v["stdout"], "aGkK");
    assert_eq!(v["source_code"], "cHJpbnQoJ2hpJyk=");
    assert_eq!(v["language_id"], 71);
    assert_eq!(v["language"]["id"], 71);
    for t in ["created_at", "finished_at"] {
        let t = v[t].as_str().unwrap();
        assert!(
            t.len() == 24 && t.ends_with('Z') && &t[19..20] == ".",
            "{t}"
        );
    }
    assert!(v["time"].as_str().unwrap().parse::<f64>().is_ok(), "{v}");
    // fields= selection.
    let (_, v) = s
        .get_json(&format!("/submissions/{token}?fields=stdout,status_id"))
        .await;
    assert_eq!(v, json!({"stdout": "hi\n", "status_id": 3}));
    let (code, v) = s
        .get_json(&format!("/submissions/{token}?fields=stdout,bogus"))
        .await;
    assert_eq!(
        (code, v),
        (400, json!({"error": "invalid fields: [bogus]"}))
    );
    // Compiled: every C++ id maps to our toolchain; a non-zero exit is NZEC.
    for id in [52, 53, 54] {
        let (code, v) = s
            .post_raw(
                "/submissions?wait=true&fields=status,exit_code,compile_output",
                json!({"source_code": "int main(){return 3;}", "language_id": id}),
            )
            .await;
        assert_eq!(code, 201, "{v}");
        assert_eq!(v["status"]["id"], 11, "{v}");
        assert_eq!(v["exit_code"], 3, "{v}");
    }
    let (code, v) = s
        .post_raw(
            "/submissions?wait=true&fields=status,compile_output",
            json!({"source_code": "int main({", "language_id": 50}),
        )
        .await;
    assert_eq!((code, v["status"]["id"].clone()), (201, json!(6)), "{v}");
    assert!(
        v["compile_output"].as_str().unwrap().contains("error"),
        "{v}"
    );
    // Batch create and get, in order; an unknown token is null.
    let subs: Vec<Value> = (1..=3)
        .map(|i| json!({"source_code": format!("print({i})"), "language_id": 71}))
        .collect();
    let (code, created) = s
        .post_raw("/submissions/batch", json!({"submissions": subs}))
        .await;
    assert_eq!(code, 201, "{created}");
    let tokens: Vec<&str> = created
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    let list = format!("{}%2C{}", tokens.join(","), uuid::Uuid::new_v4());
    let done = loop {
        let (code, v) = s
            .get_json(&format!(
                "/submissions/batch?tokens={list}&fields=stdout,status"
            ))
            .await;
        assert_eq!(code, 200, "{v}");
        let subs = v["submissions"].as_array().unwrap().clone();
        if subs[..3]
            .iter()
            .all(|x| x["status"]["id"].as_i64().unwrap() > 2)
        {
            break subs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let outs: Vec<_> = done.iter().map(|x| x["stdout"].clone()).collect();
    assert_eq!(
        outs,
        [json!("1\n"), json!("2\n"), json!("3\n"), Value::Null]
    );
    // Errors in Judge0's shapes.
    let (code, v) = s
        .post_raw(
            "/submissions",
            json!({"source_code": "x", "language_id": 9999}),
        )
        .await;
    assert_eq!(
        (code, v),
        (
            422,
            json!({"language_id": ["language with id 9999 doesn't exist"]})
        )
    );
    let (code, v) = s
        .post_raw(
            "/submissions?base64_encoded=true",
            json!({"source_code": "%%%", "language_id": 71}),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].is_string(), "{v}");
    let many: Vec<Value> = (0..21)
        .map(|_| json!({"source_code": "1", "language_id": 71}))
        .collect();
    let (code, v) = s
        .post_raw("/submissions/batch", json!({"submissions": many}))
        .await;
    assert_eq!(
        (code, v),
        (
            400,
            json!({"error": "number of submissions in a batch should be less than or equal to 20"})
        )
    );
    let (code, _) = s
        .get_json(&format!("/submissions/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(code, 404);
    // The informational documents.
    let (_, statuses) = s.get_json("/statuses").await;
    assert_eq!(
        statuses[10],
        json!({"id": 11, "description": "Runtime Error (NZEC)"})
    );
    let (_, langs) = s.get_json("/languages/").await;
    let ids: Vec<i64> = langs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    for id in [46, 48, 49, 50, 52, 53, 54, 60, 62, 63, 68, 71, 72, 73, 74] {
        assert!(ids.contains(&id), "language {id} missing from {langs}");
    }
    let (code, v) = s.get_json("/languages/71").await;
    assert_eq!(code, 200);
    assert!(v["name"].as_str().unwrap().starts_with("Python ("), "{v}");
    let (_, about) = s.get_json("/about").await;
    assert_eq!(about["version"], "1.13.1");
    for path in ["/config_info", "/system_info", "/workers"] {
        assert_eq!(s.get_json(path).await.0, 200, "{path}");
    }
}

/// Needs the engine to run `expected_output`.
#[tokio::test]
async fn judge0_wrong_answer_is_status_4() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let (code, v) = s
        .post_raw(
            "/submissions?wait=true",
            json!({"source_code": "print(input())", "language_id": 71, "stdin": "1", "expected_output": "2"}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        v["status"],
        json!({"id": 4, "description": "Wrong Answer"}),
        "{v}"
    );
    assert_eq!(v["stdout"], "1\n", "{v}");
}

#[tokio::test]
async fn judge0_limits_and_arguments_reach_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let (code, v) = s
        .post_raw(
            "/submissions?wait=true&fields=stdout,status",
            json!({"source_code": "import sys; print(sys.argv[1:])", "language_id": 71,
                   "command_line_arguments": "a 'b c'"}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["stdout"], "['a', 'b c']\n", "{v}");
    let (code, v) = s
        .post_raw(
            "/submissions?wait=true&fields=status,time",
            json!({"source_code": "while True: pass", "language_id": 71,
                   "cpu_time_limit": 0.3, "wall_time_limit": 2}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["status"]["id"], 5, "{v}");
    // Past the service's own limits: Judge0's validation error, every field at once.
    let (code, v) = s
        .post_raw(
            "/submissions",
            json!({"source_code": "1", "language_id": 71, "wall_time_limit": 9999,
                   "memory_limit": 99_999_999, "callback_url": "http://x"}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(
        keys(&v),
        set(&["wall_time_limit", "memory_limit", "callback_url"]),
        "{v}"
    );
    assert_eq!(
        v["wall_time_limit"],
        json!(["must be less than or equal to 60"])
    );
}

/// A zip made by Python's `zipfile` (what Judge0 users script with), base64 as Judge0 wants.
fn zip_b64(entries: &[(&str, &str)]) -> String {
    let spec = serde_json::to_string(entries).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import base64, io, json, sys, zipfile\n\
             b = io.BytesIO()\n\
             with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:\n\
             \x20   for name, text in json.loads(sys.argv[1]): z.writestr(name, text)\n\
             print(base64.b64encode(b.getvalue()).decode())",
        )
        .arg(spec)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `additional_files`: a base64 zip whose files sit beside the source, before compiling; an
/// entry that escapes the working dir or is not a zip is Judge0's 422 on that field.
#[tokio::test]
async fn judge0_additional_files_sit_beside_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let zip = zip_b64(&[("data/input.txt", "21\n")]);
    let (code, v) = s
        .post_raw(
            "/submissions?wait=true&fields=stdout,status",
            json!({"source_code": "print(2 * int(open('data/input.txt').read()))",
                   "language_id": 71, "additional_files": zip}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["stdout"], "42\n", "{v}");
    // A header the C compiler includes from the zip.
    let zip = zip_b64(&[("answer.h", "#define ANSWER 42\n")]);
    let (code, v) = s
        .post_raw(
            "/submissions?wait=true&fields=stdout,status",
            json!({"source_code": "#include <stdio.h>\n#include \"answer.h\"\nint main(void){printf(\"%d\\n\", ANSWER);return 0;}\n",
                   "language_id": 50, "additional_files": zip}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["stdout"], "42\n", "{v}");
    for bad in [
        zip_b64(&[("../escape.txt", "x")]),
        "bm90IGEgemlw".to_owned(),
    ] {
        let (code, v) = s
            .post_raw(
                "/submissions",
                json!({"source_code": "print(1)", "language_id": 71, "additional_files": bad}),
            )
            .await;
        assert_eq!(code, 422, "{v}");
        assert_eq!(keys(&v), set(&["additional_files"]), "{v}");
    }
}

/// `redirect_stderr_to_stdout`: one stream, in the order the program wrote it.
#[tokio::test]
async fn judge0_redirects_stderr_into_stdout_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let code = "import sys\nprint('out 1', flush=True)\nprint('err 2', file=sys.stderr, flush=True)\nprint('out 3', flush=True)\n";
    let (status, v) = s
        .post_raw(
            "/submissions?base64_encoded=false&wait=true&fields=stdout,stderr,status",
            json!({"source_code": code, "language_id": 71, "redirect_stderr_to_stdout": true}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["stdout"], "out 1\nerr 2\nout 3\n", "{v}");
    assert_eq!(v["stderr"], Value::Null, "{v}");
    assert_eq!(v["status"]["id"], 3, "{v}");
    let (_, v) = s
        .post_raw(
            "/submissions?base64_encoded=false&wait=true&fields=stdout,stderr",
            json!({"source_code": code, "language_id": 71}),
        )
        .await;
    assert_eq!(v["stdout"], "out 1\nout 3\n", "{v}");
    assert_eq!(v["stderr"], "err 2\n", "{v}");
}
