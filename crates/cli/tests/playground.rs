//! The playground (issue 14) in headless Chromium, driven over WebDriver (chromedriver, both
//! from Debian: `scripts/install-browser.sh`), against the real binary and sandbox: type a
//! program, run it with Ctrl+Enter, watch its lines arrive one by one, see HTML printed by a
//! program shown as text, reload the URL and find the history. A screenshot is saved and its
//! path printed. The tests are `#[ignore]`d with the reason (they need the browser):
//! `cargo test -- --include-ignored` runs them, and without chromedriver they fail saying so.

mod common;

use common::{free_port, Server, PATIENCE};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process, killed on drop (only the one this test started).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> (Driver, Client) {
    assert!(
        std::path::Path::new(CHROMEDRIVER).exists(),
        "this test needs chromium and {CHROMEDRIVER}: run scripts/install-browser.sh"
    );
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,900"] }),
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => assert!(Instant::now() < deadline, "chromedriver: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Evaluate `js` (a function body) in the page.
async fn eval(c: &Client, js: &str) -> Value {
    c.execute(js, vec![]).await.expect("script runs")
}

/// Poll `js` until it returns a truthy value; that value.
async fn until(c: &Client, what: &str, js: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v = eval(c, js).await;
        if !(v.is_null() || v == json!(false) || v == json!("")) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never happened; page says {}",
            eval(c, "return document.body.innerText").await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const OUTPUT: &str = "return document.getElementById('output').textContent";
const VERDICT: &str = "return document.getElementById('verdict').textContent";

/// Replace the editor's text by typing `code` into it (as a person would), then Ctrl+Enter.
async fn type_and_run(c: &Client, code: &str) {
    let content = c.find(Locator::Css(".cm-content")).await.unwrap();
    content.click().await.unwrap();
    let select_all = format!("{}a{}", char::from(Key::Control), char::from(Key::Null));
    content.send_keys(&select_all).await.unwrap();
    content
        .send_keys(&char::from(Key::Backspace).to_string())
        .await
        .unwrap();
    // One line at a time, each ended by Escape (closes a completion popup, which would
    // take the Enter) and Enter; no line is indented, so auto-indentation adds nothing.
    let end = format!("{}{}", char::from(Key::Escape), char::from(Key::Enter));
    for line in code.lines() {
        content.send_keys(line).await.unwrap();
        content.send_keys(&end).await.unwrap();
    }
    let typed = eval(c, "return document.querySelector('.cm-content').innerText").await;
    for line in code.lines() {
        assert!(
            typed.as_str().unwrap().contains(line),
            "typed {typed}, missing {line}"
        );
    }
    let run = format!(
        "{}{}{}",
        char::from(Key::Control),
        char::from(Key::Enter),
        char::from(Key::Null)
    );
    content.send_keys(&run).await.unwrap();
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver (scripts/install-browser.sh); run with --include-ignored"]
async fn playground_runs_typed_code_live_and_keeps_history() {
    let (_driver, c) = browser().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    c.goto(&s.url("/")).await.unwrap();
    // The runtimes fill the picker and a fresh session goes into the URL.
    until(
        &c,
        "runtimes listed",
        "return document.querySelectorAll('#language option').length > 1",
    )
    .await;
    let url = until(
        &c,
        "session in URL",
        "return location.search.includes('session=') && location.href",
    )
    .await;
    assert_eq!(
        eval(&c, "return document.getElementById('language').value").await,
        "python"
    );

    // Three lines with pauses: the page shows the first before the last exists.
    type_and_run(
        &c,
        "import time\nprint('one', flush=True)\ntime.sleep(1)\nprint('two', flush=True)\ntime.sleep(1)\nprint('three', flush=True)",
    )
    .await;
    let first = until(
        &c,
        "first line",
        &format!("const t = (function(){{{OUTPUT}}})(); return t.includes('one') && t"),
    )
    .await;
    assert!(
        !first.as_str().unwrap().contains("three"),
        "lines arrived at once: {first}"
    );
    until(&c, "second line alone", &format!("const t = (function(){{{OUTPUT}}})(); return t.includes('two') && !t.includes('three')")).await;
    until(
        &c,
        "COMPLETED",
        &format!("return (function(){{{VERDICT}}})().startsWith('COMPLETED')"),
    )
    .await;
    assert_eq!(eval(&c, OUTPUT).await, "one\ntwo\nthree\n");
    let verdict = eval(&c, VERDICT).await;
    assert!(
        verdict.as_str().unwrap().contains(" ms"),
        "time shown: {verdict}"
    );

    // HTML printed by a program is text: no element is made of it, no script runs.
    eval(
        &c,
        "window.__alerted = false; window.alert = () => { window.__alerted = true; }; return true",
    )
    .await;
    type_and_run(
        &c,
        "print('<img src=x onerror=alert(1)><b>bold</b>\\x1b[31mred\\x1b[0m')",
    )
    .await;
    until(
        &c,
        "second run done",
        &format!("return (function(){{{OUTPUT}}})().includes('<img')"),
    )
    .await;
    until(
        &c,
        "COMPLETED again",
        &format!("return (function(){{{VERDICT}}})().startsWith('COMPLETED')"),
    )
    .await;
    assert_eq!(
        eval(&c, OUTPUT).await,
        "<img src=x onerror=alert(1)><b>bold</b>red\n",
        "shown as text, escape codes dropped"
    );
    assert_eq!(
        eval(
            &c,
            "return document.querySelectorAll('#output img, #output b').length"
        )
        .await,
        0
    );
    assert_eq!(eval(&c, "return window.__alerted").await, false);

    let png = c.screenshot().await.unwrap();
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("playground.png");
    std::fs::write(&shot, png).unwrap();
    println!("screenshot: {}", shot.display());

    // The URL reopens the session: its code and both runs in the history.
    c.goto(url.as_str().unwrap()).await.unwrap();
    until(
        &c,
        "history",
        "return document.querySelectorAll('#history li').length === 2",
    )
    .await;
    let code = eval(&c, "return document.querySelector('.cm-content').innerText").await;
    assert!(
        code.as_str().unwrap().contains("<img"),
        "the session's code: {code}"
    );

    // An API error is shown as its message, not a blank page.
    c.goto(&s.url("/?session=00000000-0000-0000-0000-000000000000"))
        .await
        .unwrap();
    let err = until(
        &c,
        "error shown",
        "const e = document.getElementById('error'); return !e.hidden && e.textContent",
    )
    .await;
    assert!(err.as_str().unwrap().contains("Session not found"), "{err}");
    c.close().await.unwrap();
}

/// Output a page must survive: a megabyte, invalid UTF-8 (shown as U+FFFD), control bytes.
#[tokio::test]
#[ignore = "needs Chromium and chromedriver (scripts/install-browser.sh); run with --include-ignored"]
async fn playground_survives_a_megabyte_and_invalid_utf8() {
    let (_driver, c) = browser().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    c.goto(&s.url("/")).await.unwrap();
    until(
        &c,
        "session in URL",
        "return location.search.includes('session=')",
    )
    .await;
    type_and_run(
        &c,
        "import sys\nsys.stdout.write('x' * 1000000)\nsys.stdout.flush()\nsys.stdout.buffer.write(b'\\n\\xff\\xfe\\x00 end\\n')",
    )
    .await;
    until(
        &c,
        "COMPLETED",
        &format!("return (function(){{{VERDICT}}})().startsWith('COMPLETED')"),
    )
    .await;
    let len = until(
        &c,
        "all output shown",
        &format!("const t = (function(){{{OUTPUT}}})(); return t.endsWith(' end\\n') && t.length"),
    )
    .await;
    assert!(len.as_u64().unwrap() > 1_000_000, "{len}");
    let tail = eval(
        &c,
        &format!("const t = (function(){{{OUTPUT}}})(); return t.slice(-10)"),
    )
    .await;
    assert!(tail.as_str().unwrap().contains('\u{FFFD}'), "{tail}");
    // The page still answers (a megabyte of text did not hang it).
    assert_eq!(
        eval(&c, "return document.getElementById('run').disabled").await,
        false
    );
    c.close().await.unwrap();
}

/// A test case whose expected output differs shows its verdict (the run body of issue 11).
#[tokio::test]
#[ignore = "needs Chromium and chromedriver (scripts/install-browser.sh); run with --include-ignored"]
async fn playground_shows_a_wrong_answer_verdict() {
    let (_driver, c) = browser().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    c.goto(&s.url("/")).await.unwrap();
    until(
        &c,
        "session in URL",
        "return location.search.includes('session=')",
    )
    .await;
    c.find(Locator::Id("add-test"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("add-test"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let inputs = c
        .find_all(Locator::Css("#tests .test-stdin"))
        .await
        .unwrap();
    let expected = c
        .find_all(Locator::Css("#tests .test-expected"))
        .await
        .unwrap();
    inputs[0].send_keys("2").await.unwrap();
    expected[0].send_keys("4").await.unwrap();
    inputs[1].send_keys("3").await.unwrap();
    expected[1].send_keys("7").await.unwrap();
    type_and_run(&c, "n = int(input())\nprint(n * 2)").await;
    until(
        &c,
        "verdicts",
        "return document.querySelectorAll('#test-results .test-result').length === 2",
    )
    .await;
    let verdicts = eval(
        &c,
        "return [...document.querySelectorAll('#test-results .test-result td:nth-child(2)')].map(t => t.textContent)",
    )
    .await;
    assert_eq!(verdicts, json!(["ACCEPTED", "WRONG_ANSWER"]));
    c.close().await.unwrap();
}

/// A program that fails shows its error and the line of the user's code it points at.
#[tokio::test]
#[ignore = "needs Chromium and chromedriver (scripts/install-browser.sh); run with --include-ignored"]
async fn playground_shows_the_error_and_its_line() {
    let (_driver, c) = browser().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    c.goto(&s.url("/")).await.unwrap();
    until(
        &c,
        "session in URL",
        "return location.search.includes('session=')",
    )
    .await;
    type_and_run(&c, "x = 1\nprint(x / 0)").await;
    let verdict = until(
        &c,
        "FAILED",
        &format!("const v = (function(){{{VERDICT}}})(); return v.startsWith('FAILED') && v"),
    )
    .await;
    let verdict = verdict.as_str().unwrap_or_default();
    assert!(
        verdict.contains("ZeroDivisionError: division by zero (line 2)"),
        "error and line shown: {verdict}"
    );
    c.close().await.unwrap();
}

/// A C session whose code does not compile: the compiler's error appears in the output pane
/// (from the live `compile_stderr` events, styled apart from the program's output) with the
/// `CompilationError` verdict, and again when the execution is picked from the history.
#[tokio::test]
#[ignore = "needs Chromium and chromedriver (scripts/install-browser.sh); run with --include-ignored"]
async fn playground_shows_the_compilers_output() {
    let (_driver, c) = browser().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let session = s.session("c", "int main(void) { return nope; }\n").await;
    c.goto(&s.url(&format!("/?session={session}")))
        .await
        .unwrap();
    until(
        &c,
        "the C session loaded",
        "return document.getElementById('language').value === 'c'",
    )
    .await;
    c.find(Locator::Id("run"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let verdict = until(
        &c,
        "FAILED",
        &format!("const v = (function(){{{VERDICT}}})(); return v.startsWith('FAILED') && v"),
    )
    .await;
    assert!(
        verdict
            .as_str()
            .unwrap_or_default()
            .contains("CompilationError"),
        "{verdict}"
    );
    const COMPILER: &str = "return Array.from(document.querySelectorAll('#output .compile')).map((e) => e.textContent).join('')";
    let shown = until(
        &c,
        "the compiler's error",
        &format!("const t = (function(){{{COMPILER}}})(); return t.includes('nope') && t"),
    )
    .await;
    assert!(
        shown.as_str().unwrap_or_default().contains("error:"),
        "{shown}"
    );
    // From the history: the same, from the execution's `compile` object.
    until(
        &c,
        "the run in the history",
        "return document.querySelectorAll('#history li').length === 1",
    )
    .await;
    c.find(Locator::Css("#history li"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let again = until(
        &c,
        "the compiler's error from the history",
        &format!("const t = (function(){{{COMPILER}}})(); return t.includes('nope') && t"),
    )
    .await;
    assert_eq!(again, shown);
    c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver (scripts/install-browser.sh); run with --include-ignored"]
async fn playground_asks_for_a_key_and_runs_live_with_it() {
    let (_driver, c) = browser().await;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::BIN)
        .args(["keys", "create", "--name", "browser"])
        .env_remove("REDIS_URL")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite", dir.path().display()),
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .unwrap()
        .trim()
        .to_owned();
    let s = Server::start(dir.path(), &[]).await;
    c.goto(&s.url("/")).await.unwrap();
    // The API answers 401: the page says so and offers the key field.
    let message = until(
        &c,
        "key field shown",
        "const b = document.getElementById('key-box'); return !b.hidden && document.getElementById('key-message').textContent",
    )
    .await;
    assert!(
        message.as_str().unwrap().contains("API key"),
        "message: {message}"
    );
    let field = c.find(Locator::Css("#key")).await.unwrap();
    field.send_keys(&token).await.unwrap();
    c.find(Locator::Css("#key-box button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "runtimes listed with the key",
        "return document.querySelectorAll('#language option').length > 1",
    )
    .await;
    assert_eq!(
        eval(&c, "return localStorage.getItem('livexec.apiKey')").await,
        json!(token)
    );
    assert_eq!(
        eval(&c, "return document.getElementById('key-box').hidden").await,
        true
    );
    // Live output through the keyed stream.
    type_and_run(&c, "print('keyed', flush=True)").await;
    until(
        &c,
        "COMPLETED with the key",
        &format!("return (function(){{{VERDICT}}})().startsWith('COMPLETED')"),
    )
    .await;
    assert_eq!(eval(&c, OUTPUT).await, "keyed\n");
}
