//! Run options (issue 11): session files, the options of a run and the session files it
//! snapshots, and what a finished run gave (limits, test results, output files), with NUL,
//! invalid UTF-8 and every control character in every stored text or byte string.

use crate::harness::Backend;
use crate::util::{execution, result, session};
use livexec_core::{
    Compare, EffectiveLimits, LimitOverrides, NewExecution, NewOneShot, RunOptions, SessionPatch,
    SourceFile, Status, StoreError, TestCase, TestResult, Verdict,
};
use std::collections::BTreeMap;

/// Every byte value once: NUL, controls, invalid UTF-8 (0x80–0xff alone).
fn all_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

/// Text with NUL, controls, a replacement character and astral characters.
const ODD: &str = "a\0b\u{1}\u{7f}\r\n\t\u{fffd}é🚀\u{2028}\"\\";

fn file(name: &str, content: &[u8]) -> SourceFile {
    SourceFile {
        name: name.into(),
        content: content.to_vec(),
    }
}

fn options() -> RunOptions {
    RunOptions {
        stdin: Some(ODD.into()),
        args: vec!["--x".into(), ODD.into(), String::new()],
        env: BTreeMap::from([("MODE".into(), ODD.into())]),
        files: vec![file("req/data.bin", &all_bytes())],
        limits: LimitOverrides {
            time_ms: Some(1500),
            memory_mb: Some(64),
            pids: Some(8),
            ..Default::default()
        },
        tests: vec![
            TestCase {
                stdin: ODD.into(),
                expected_stdout: Some(ODD.into()),
                args: Some(vec!["1".into()]),
            },
            TestCase {
                stdin: String::new(),
                expected_stdout: None,
                args: None,
            },
        ],
        compare: Compare::Exact,
        stop_on_failure: true,
        return_files: vec!["*.png".into(), "out.txt".into()],
        stderr_to_stdout: true,
    }
}

pub async fn session_files_round_trip_and_patch_replaces_them_whole(b: Backend) {
    let store = b.store();
    let files = vec![
        file("pkg/__init__.py", b""),
        file("odd\0name", &all_bytes()),
    ];
    let s = store
        .create_session_with_files("python", "print(1)", &files, None)
        .await
        .unwrap();
    assert_eq!(s.files, files);
    assert_eq!(store.get_session(s.id).await.unwrap().unwrap(), s);

    // Code only: the files stay.
    let code = store
        .update_session(s.id, "print(2)", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (code.source_code.as_str(), &code.files),
        ("print(2)", &files)
    );

    // Files only: the code stays, the set is replaced whole.
    let replaced = vec![file("b.txt", ODD.as_bytes())];
    let patch = SessionPatch {
        files: Some(replaced.clone()),
        ..Default::default()
    };
    let p = store.patch_session(s.id, &patch).await.unwrap().unwrap();
    assert_eq!((p.source_code.as_str(), &p.files), ("print(2)", &replaced));
    assert_eq!(store.get_session(s.id).await.unwrap().unwrap(), p);

    // An empty set removes them; everything at once works too.
    let all = SessionPatch {
        source_code: Some("x = 1".into()),
        language: Some("javascript".into()),
        files: Some(Vec::new()),
    };
    let p = store.patch_session(s.id, &all).await.unwrap().unwrap();
    assert_eq!(
        (p.language.as_str(), p.source_code.as_str()),
        ("javascript", "x = 1")
    );
    assert!(p.files.is_empty());
    assert_eq!(store.get_session(s.id).await.unwrap().unwrap(), p);
    let missing = uuid::Uuid::now_v7();
    assert_eq!(store.patch_session(missing, &all).await.unwrap(), None);
}

pub async fn run_options_are_stored_with_the_session_files_in_front(b: Backend) {
    let store = b.store();
    let session_files = vec![file("lib.h", b"#define X 1\n"), file("z.bin", &[0, 0xff])];
    let s = store
        .create_session_with_files("c", "int main(){}", &session_files, None)
        .await
        .unwrap();
    let asked = options();
    let created = store
        .create_execution(NewExecution {
            owner: None,
            session_id: s.id,
            idempotency_key: Some("opts-key".into()),
            enqueue_job: true,
            options: asked.clone(),
        })
        .await
        .unwrap();
    assert!(created.created);
    let e = created.execution;
    let mut expected = asked.clone();
    expected.files = [session_files.clone(), asked.files.clone()].concat();
    assert_eq!(e.options, expected);

    // The session's files change afterwards: the run keeps its snapshot.
    let patch = SessionPatch {
        files: Some(vec![file("other", b"o")]),
        ..Default::default()
    };
    store.patch_session(s.id, &patch).await.unwrap();
    assert_eq!(store.get_execution(e.id).await.unwrap().unwrap(), e);
    let listed = store.list_executions(s.id, 10, None).await.unwrap();
    assert_eq!(listed, vec![e.clone()]);
    let started = store.start_execution(e.id, 1).await.unwrap().unwrap();
    assert_eq!(
        started.options, expected,
        "a worker gets the options to run"
    );

    // The next run snapshots the new set; a bodiless run stores no options at all.
    let next = execution(store, &s).await;
    assert_eq!(next.options.files, vec![file("other", b"o")]);
    let bare = execution(store, &session(store, "print(1)").await).await;
    assert!(bare.options.is_default());
    let nulls = "executions WHERE options IS NULL AND session_files IS NULL AND limits IS NULL \
                 AND tests IS NULL AND output_files IS NULL";
    assert_eq!(
        b.count(nulls).await,
        1,
        "only the bodiless run of a file-less session"
    );
}

pub async fn finish_stores_limits_tests_and_output_files(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let e = execution(store, &s).await;
    store.start_execution(e.id, 1).await.unwrap().unwrap();
    let mut r = result(Status::Failed);
    r.report.limits = Some(EffectiveLimits {
        time_ms: 2000,
        cpu_time_ms: None,
        memory_mb: 128,
        pids: 50,
        output_bytes: 1 << 20,
        compile_time_ms: Some(10_000),
        compile_memory_mb: Some(512),
    });
    r.report.tests = vec![
        TestResult {
            verdict: Verdict::WrongAnswer,
            stdout: ODD.into(),
            stderr: ODD.into(),
            exit_code: Some(0),
            signal: None,
            time_ms: 3,
            cpu_time_ms: Some(2),
            memory_kb: Some(900),
            message: Some(ODD.into()),
        },
        TestResult {
            verdict: Verdict::Skipped,
            stdout: String::new(),
            stderr: String::new(),
            exit_code: None,
            signal: None,
            time_ms: 0,
            cpu_time_ms: None,
            memory_kb: None,
            message: None,
        },
    ];
    r.report.output_files = vec![file("plot.png", &all_bytes()), file("empty", b"")];
    assert!(store.finish_execution(e.id, 1, &r).await.unwrap());
    let done = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!(done.status, Status::Failed);
    assert_eq!(done.report.limits, r.report.limits);
    assert_eq!(done.report.tests, r.report.tests);
    assert_eq!(done.report.output_files, r.report.output_files);
}

pub async fn same_key_with_other_options_is_a_reused_key_never_a_replay(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let new = |options: RunOptions| NewExecution {
        owner: None,
        session_id: s.id,
        idempotency_key: Some("body-key".into()),
        enqueue_job: true,
        options,
    };
    let first = store.create_execution(new(options())).await.unwrap();
    assert!(first.created);
    // The session's files change: the same request still replays.
    let patch = SessionPatch {
        files: Some(vec![file("late", b"l")]),
        ..Default::default()
    };
    store.patch_session(s.id, &patch).await.unwrap();
    let again = store.create_execution(new(options())).await.unwrap();
    assert_eq!(
        (again.created, again.execution.id),
        (false, first.execution.id)
    );
    let mut other = options();
    other.stdin = Some("something else".into());
    for asked in [other, RunOptions::default()] {
        let err = store.create_execution(new(asked)).await.unwrap_err();
        assert!(matches!(err, StoreError::IdempotencyKeyReused), "{err:?}");
    }
    assert_eq!(b.count("executions").await, 1);
}

pub async fn one_shot_runs_have_no_session_and_their_own_key_rules(b: Backend) {
    let store = b.store();
    let new = |key: Option<&str>, code: &str| NewOneShot {
        owner: None,
        language: "python".into(),
        source_code: code.into(),
        idempotency_key: key.map(str::to_owned),
        enqueue_job: true,
        options: options(),
    };
    let first = store
        .create_one_shot(new(Some("one"), "print(1)"))
        .await
        .unwrap();
    assert!(first.created);
    let e = first.execution;
    assert_eq!((e.session_id, e.status), (None, Status::Queued));
    assert_eq!(e.options, options());
    assert_eq!(store.get_execution(e.id).await.unwrap().unwrap(), e);
    assert_eq!(b.job_rows(e.id).await.len(), 1);
    // The same request replays; another body, or the key of a session's run, is refused.
    let again = store
        .create_one_shot(new(Some("one"), "print(1)"))
        .await
        .unwrap();
    assert_eq!((again.created, again.execution.id), (false, e.id));
    let err = store
        .create_one_shot(new(Some("one"), "print(2)"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::IdempotencyKeyReused), "{err:?}");
    let s = session(store, "print(1)").await;
    let from_session = NewExecution {
        owner: None,
        session_id: s.id,
        idempotency_key: Some("one".into()),
        enqueue_job: true,
        options: options(),
    };
    let err = store.create_execution(from_session).await.unwrap_err();
    assert!(matches!(err, StoreError::IdempotencyKeyReused), "{err:?}");
    crate::util::keyed(store, &s, Some("two")).await;
    let err = store
        .create_one_shot(new(Some("two"), "print(1)"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::IdempotencyKeyReused), "{err:?}");
    // Without a key, a new one each time; it runs like any other.
    let other = store.create_one_shot(new(None, "print(1)")).await.unwrap();
    assert!(other.created && other.execution.id != e.id);
    let started = store.start_execution(e.id, 1).await.unwrap().unwrap();
    assert_eq!(started.session_id, None);
    assert!(store
        .finish_execution(e.id, 1, &result(Status::Completed))
        .await
        .unwrap());
    assert_eq!(b.count("executions WHERE session_id IS NULL").await, 2);
}

/// Twenty racing requests under one key, half of them with another body (ten one-shots,
/// ten session runs): one execution; every racer of its kind and body gets it, every other is
/// a reused key.
pub async fn racing_bodies_under_one_key_make_one_execution(b: Backend) {
    let s = session(b.store(), "print(1)").await;
    b.warm_pool(8).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = b.store.clone();
        let mut asked = options();
        if i % 2 == 1 {
            asked.stdin = Some("other".into());
        }
        tasks.push(tokio::spawn(async move {
            let out = if i % 4 < 2 {
                store
                    .create_execution(NewExecution {
                        owner: None,
                        session_id: s.id,
                        idempotency_key: Some("race-body".into()),
                        enqueue_job: true,
                        options: asked.clone(),
                    })
                    .await
            } else {
                store
                    .create_one_shot(NewOneShot {
                        owner: None,
                        language: "python".into(),
                        source_code: "print(1)".into(),
                        idempotency_key: Some("race-body".into()),
                        enqueue_job: true,
                        options: asked.clone(),
                    })
                    .await
            };
            (asked, out)
        }));
    }
    let mut winners = std::collections::HashSet::new();
    let (mut created, mut reused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (asked, Ok(out)) => {
                assert_eq!(out.execution.options.stdin, asked.stdin);
                created += usize::from(out.created);
                winners.insert(out.execution.id);
            }
            (_, Err(StoreError::IdempotencyKeyReused)) => reused += 1,
            (_, Err(err)) => panic!("{err:?}"),
        }
    }
    assert_eq!((created, winners.len()), (1, 1));
    assert_eq!(
        reused, 15,
        "only the five racers of the winner's kind and body share it"
    );
    assert_eq!(b.count("executions").await, 1);
    assert_eq!(b.count("jobs").await, 1);
}
