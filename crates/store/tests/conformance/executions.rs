//! Executions: the snapshot, unknown sessions, the job row, byte-exact output, bad data.

use crate::harness::Backend;
use crate::util::{execution, session};
use livexec_core::{NewExecution, RunReport, RunResult, Status, StoreError};
use uuid::Uuid;

pub async fn execution_snapshots_session(b: Backend) {
    let store = b.store();
    let s = session(store, "print('before')").await;
    let e = execution(store, &s).await;
    assert_eq!(e.session_id, Some(s.id));
    assert_eq!(e.status, Status::Queued);
    assert_eq!(e.attempts, 0);
    assert_eq!(
        (e.language.as_str(), e.source_code.as_str()),
        ("python", "print('before')")
    );
    assert!(e.report.stdout.is_empty() && e.report.stderr.is_empty());
    assert_eq!(e.report.execution_time_ms, 0);
    assert_eq!((e.started_at, e.finished_at), (None, None));
    assert_eq!(e.id.get_version_num(), 7);

    // Changing the session afterwards does not change what was snapshotted.
    store
        .update_session(s.id, "console.log('after')", Some("javascript"))
        .await
        .unwrap();
    let stored = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!(
        stored, e,
        "stored execution equals the returned one, to the ms"
    );

    // The next execution snapshots the new code.
    let e2 = execution(store, &s).await;
    assert_eq!(e2.language, "javascript");
    assert_eq!(e2.source_code, "console.log('after')");
    assert_eq!(store.get_execution(Uuid::now_v7()).await.unwrap(), None);
}

pub async fn unknown_session_is_not_found(b: Backend) {
    let store = b.store();
    let missing = Uuid::now_v7();
    for key in [None, Some("k-missing".to_owned())] {
        let err = store
            .create_execution(NewExecution {
                owner: None,
                session_id: missing,
                idempotency_key: key,
                enqueue_job: true,
                options: Default::default(),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::SessionNotFound(id) if id == missing),
            "{err:?}"
        );
    }
    assert_eq!(b.count("executions").await, 0);
    assert_eq!(b.count("jobs").await, 0);
}

pub async fn enqueue_job_inserts_one_job_row(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let with_job = store
        .create_execution(NewExecution {
            owner: None,
            session_id: s.id,
            idempotency_key: Some("job-key".into()),
            enqueue_job: true,
            options: Default::default(),
        })
        .await
        .unwrap()
        .execution;
    let jobs = b.job_rows(with_job.id).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].attempts, 0);
    assert_eq!(jobs[0].run_at, with_job.queued_at.timestamp_millis());
    assert_eq!(
        (jobs[0].lease_until, jobs[0].lease_token.as_deref()),
        (None, None)
    );

    // An idempotent repeat makes no second job.
    let again = store
        .create_execution(NewExecution {
            owner: None,
            session_id: s.id,
            idempotency_key: Some("job-key".into()),
            enqueue_job: true,
            options: Default::default(),
        })
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(b.job_rows(with_job.id).await.len(), 1);

    // Without enqueue_job there is no job row (the scaled queue enqueues elsewhere).
    let without = store
        .create_execution(NewExecution {
            owner: None,
            session_id: s.id,
            idempotency_key: None,
            enqueue_job: false,
            options: Default::default(),
        })
        .await
        .unwrap()
        .execution;
    assert!(b.job_rows(without.id).await.is_empty());
    assert_eq!(b.count("jobs").await, 1);
}

pub async fn output_bytes_round_trip_exactly(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let e = execution(store, &s).await;
    let every_byte: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    let result = RunResult {
        status: Status::Failed,
        report: RunReport {
            stdout: b"a\0b\xff\xfe\xc3(\x00\n\x80end".to_vec(),
            stderr: every_byte.clone(),
            execution_time_ms: 5,
            error_message: Some("Process exited with code 1 \u{1F4A5}".into()),
            error_type: Some(livexec_core::ErrorType::RuntimeError),
            error_line: Some(7),
            exit_code: Some(1),
            signal: None,
            cpu_time_ms: Some(1),
            memory_kb: Some(1),
            // Compiler output with NUL, quotes and a non-ASCII character stores as it is.
            compile: Some(livexec_core::CompileReport {
                status: Status::Completed,
                stdout: "out\0\"q\"".into(),
                stderr: "main.c:1: warning: \u{1F4A5}\0\n".into(),
                exit_code: Some(0),
                time_ms: 321,
                memory_kb: Some(4096),
            }),
            limits: None,
            tests: Vec::new(),
            output_files: Vec::new(),
        },
    };
    assert!(store.start_execution(e.id, 1).await.unwrap().is_some());
    assert!(store.finish_execution(e.id, 1, &result).await.unwrap());
    let got = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!(got.report.stdout, result.report.stdout);
    assert_eq!(got.report.stderr, every_byte);
    assert_eq!(got.report.error_message, result.report.error_message);
    assert_eq!(got.report.compile, result.report.compile);
    // The line of the user's file the error points at.
    assert_eq!(got.report.error_line, Some(7));
    assert_eq!(got.report, result.report);

    // A message with NUL (a program's last stderr line can hold one) records on every backend.
    let e3 = execution(store, &s).await;
    let nul = RunResult {
        report: RunReport {
            error_message: Some("bad\0byte".into()),
            ..result.report.clone()
        },
        ..result.clone()
    };
    assert!(store.start_execution(e3.id, 1).await.unwrap().is_some());
    assert!(store.finish_execution(e3.id, 1, &nul).await.unwrap());
    let got = store.get_execution(e3.id).await.unwrap().unwrap();
    assert_eq!(got.report.error_message.as_deref(), Some("bad\u{FFFD}byte"));
    assert_eq!(got.status, Status::Failed);
    let e4 = execution(store, &s).await;
    assert!(store.fail_execution(e4.id, "platform\0x").await.unwrap());
    let got = store.get_execution(e4.id).await.unwrap().unwrap();
    assert_eq!(
        got.report.error_message.as_deref(),
        Some("platform\u{FFFD}x")
    );

    // Large output (1 MiB of NULs) stores too.
    let e2 = execution(store, &s).await;
    let big = RunResult {
        report: RunReport {
            stdout: vec![0u8; 1 << 20],
            stderr: Vec::new(),
            ..result.report
        },
        ..result
    };
    assert!(store.start_execution(e2.id, 1).await.unwrap().is_some());
    assert!(store.finish_execution(e2.id, 1, &big).await.unwrap());
    let got = store.get_execution(e2.id).await.unwrap().unwrap();
    assert_eq!(got.report.stdout, big.report.stdout);
    assert!(got.report.stderr.is_empty());
}

pub async fn bad_stored_status_is_an_error(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let e = execution(store, &s).await;
    b.corrupt_status(e.id, "BOGUS").await;
    for err in [
        store.get_execution(e.id).await.unwrap_err(),
        store.list_executions(s.id, 10, None).await.unwrap_err(),
    ] {
        match err {
            StoreError::Backend { op, source } => {
                assert!(
                    op.ends_with("execution") || op.ends_with("executions"),
                    "{op}"
                );
                assert!(source.to_string().contains("BOGUS"), "{source}");
            }
            other => panic!("expected a Backend error, got {other:?}"),
        }
    }
    // list_unfinished selects by status, so the bad row is simply not listed.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    assert!(store.list_unfinished(later, 10).await.unwrap().is_empty());
    // The guarded updates do not touch it either.
    assert!(store.start_execution(e.id, 1).await.unwrap().is_none());
    assert!(store.get_session(s.id).await.unwrap().is_some());
}
