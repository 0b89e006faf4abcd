//! The store conformance suite: every case runs against SQLite and PostgreSQL alike.
//!
//! Cases are plain async fns taking a [`harness::Backend`]; the `conformance!` macro makes one
//! `#[tokio::test]` per case and backend (`sqlite::<case>`, `postgres::<case>`).

mod executions;
mod harness;
mod history;
mod idempotency;
mod lifecycle;
mod options;
mod sessions;
mod transitions;

macro_rules! conformance {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::harness::run_sqlite(crate::$module::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[ignore = "needs PostgreSQL (DATABASE_URL, default 127.0.0.1:5432)"]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::harness::run_postgres(crate::$module::$case).await;
                }
            )*
        }
    };
}

conformance!(
    lifecycle::deletes_are_guarded_and_remove_rows,
    lifecycle::usage_adds_up_finished_runs_and_survives_deletion,
    lifecycle::retention_empties_old_data_in_batches_and_keeps_metrics,
    sessions::session_create_get_update,
    sessions::latest_execution_id_is_newest,
    sessions::ping_answers,
    executions::execution_snapshots_session,
    executions::unknown_session_is_not_found,
    executions::enqueue_job_inserts_one_job_row,
    executions::output_bytes_round_trip_exactly,
    executions::bad_stored_status_is_an_error,
    idempotency::repeat_returns_same_execution_and_current_status,
    idempotency::race_of_20_creates_exactly_one,
    idempotency::same_key_other_session_conflicts,
    idempotency::no_key_creates_new_each_time,
    idempotency::without_a_job_the_same_rules_hold,
    history::history_is_newest_first_and_pages,
    history::history_sizes_list_the_page_and_count_its_bytes,
    history::list_unfinished_is_oldest_first,
    transitions::start_is_guarded,
    transitions::finish_is_guarded_and_refuses_stale_attempts,
    transitions::requeue_is_guarded,
    transitions::fail_moves_any_unfinished_to_internal_error,
    transitions::terminal_states_never_change,
    transitions::finish_rejects_non_terminal_result,
    options::session_files_round_trip_and_patch_replaces_them_whole,
    options::run_options_are_stored_with_the_session_files_in_front,
    options::finish_stores_limits_tests_and_output_files,
    options::same_key_with_other_options_is_a_reused_key_never_a_replay,
    options::one_shot_runs_have_no_session_and_their_own_key_rules,
    options::racing_bodies_under_one_key_make_one_execution,
);

/// Small builders shared by the cases.
pub mod util {
    use livexec_core::{
        ErrorType, Execution, NewExecution, RunReport, RunResult, Session, Status, Store,
    };

    /// A new python session.
    pub async fn session(store: &dyn Store, code: &str) -> Session {
        store.create_session("python", code).await.unwrap()
    }

    /// A new execution of `session`, without a key, with its job.
    pub async fn execution(store: &dyn Store, session: &Session) -> Execution {
        keyed(store, session, None).await
    }

    /// A new (or idempotent) execution of `session` with this key, with its job.
    pub async fn keyed(store: &dyn Store, session: &Session, key: Option<&str>) -> Execution {
        store
            .create_execution(NewExecution {
                owner: None,
                session_id: session.id,
                idempotency_key: key.map(str::to_owned),
                enqueue_job: true,
                options: Default::default(),
            })
            .await
            .unwrap()
            .execution
    }

    /// A result with every field set.
    pub fn result(status: Status) -> RunResult {
        RunResult {
            status,
            report: RunReport {
                stdout: b"out\n".to_vec(),
                stderr: b"err\n".to_vec(),
                execution_time_ms: 42,
                error_message: (status != Status::Completed).then(|| "it broke".to_owned()),
                error_type: (status != Status::Completed).then_some(ErrorType::RuntimeError),
                exit_code: Some(if status == Status::Completed { 0 } else { 1 }),
                signal: (status == Status::Timeout).then_some(9),
                cpu_time_ms: Some(7),
                memory_kb: Some(2048),
                ..RunReport::default()
            },
        }
    }
}
