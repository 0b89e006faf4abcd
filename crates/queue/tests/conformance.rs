//! The `JobQueue` conformance suite: every case is written once (in `cases`) and run against
//! the SQLite, PostgreSQL and Redis queues (the `backends!` invocation at the bottom).
//!
//! `cargo test -p livexec-queue --test conformance` — PostgreSQL and Redis cases need
//! `DATABASE_URL` / `REDIS_URL`.

mod support;

use std::time::Duration;
use support::Harness;

/// A lease that outlives any test.
const LONG: Duration = Duration::from_secs(60);
/// A lease short enough to run out during a test.
const SHORT: Duration = Duration::from_millis(300);
/// Sleeping this long lets a [`SHORT`] lease run out.
const PAST_SHORT: Duration = Duration::from_millis(600);

mod cases {
    use super::*;
    use livexec_core::Lease;
    use std::collections::HashSet;

    pub async fn enqueue_claim_ack(h: Harness) {
        let id = h.new_job().await;
        assert!(h.queue.contains(id).await.unwrap());
        let lease = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        assert_eq!(lease.job.execution_id, id);
        assert_eq!(lease.job.attempt, 1);
        assert!(!lease.token.is_empty());
        h.queue.ack(&lease).await.unwrap();
        assert!(!h.queue.contains(id).await.unwrap());
        assert_eq!(h.queue.claim("w1", LONG).await.unwrap(), None);
    }

    pub async fn claim_on_empty_is_none(h: Harness) {
        assert_eq!(h.queue.claim("w1", LONG).await.unwrap(), None);
        h.queue.ping().await.unwrap();
    }

    pub async fn leased_job_is_not_claimed_again(h: Harness) {
        let id = h.new_job().await;
        let lease = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        assert_eq!(lease.job.execution_id, id);
        assert_eq!(h.queue.claim("w2", LONG).await.unwrap(), None);
        assert_eq!(h.queue.claim("w1", LONG).await.unwrap(), None);
    }

    pub async fn jobs_are_claimed_in_order(h: Harness) {
        let first = h.new_job().await;
        let second = h.new_job().await;
        let a = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        let b = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        assert_eq!((a.job.execution_id, b.job.execution_id), (first, second));
        assert_ne!(a.token, b.token);
    }

    /// Claim a job with a short lease as `w1`, let it run out, take it over as `w2`.
    async fn taken_over(h: &Harness) -> (Lease, Lease) {
        let id = h.new_job().await;
        let old = h.queue.claim("w1", SHORT).await.unwrap().expect("a job");
        tokio::time::sleep(PAST_SHORT).await;
        let new = h
            .queue
            .claim("w2", LONG)
            .await
            .unwrap()
            .expect("the expired job");
        assert_eq!(new.job.execution_id, id);
        (old, new)
    }

    pub async fn expired_lease_is_taken_over_with_next_attempt(h: Harness) {
        let (old, new) = taken_over(&h).await;
        assert_eq!(old.job.attempt, 1);
        assert_eq!(new.job.attempt, 2);
        assert_ne!(old.token, new.token);
        assert_eq!(h.queue.claim("w3", LONG).await.unwrap(), None);
    }

    pub async fn same_worker_name_taking_over_gets_a_new_token(h: Harness) {
        // A restarted worker may reuse its name: its old lease must still be stale.
        let id = h.new_job().await;
        let old = h.queue.claim("w1", SHORT).await.unwrap().expect("a job");
        tokio::time::sleep(PAST_SHORT).await;
        let new = h
            .queue
            .claim("w1", LONG)
            .await
            .unwrap()
            .expect("the expired job");
        assert_eq!(new.job.execution_id, id);
        assert_ne!(old.token, new.token);
        assert!(!h.queue.extend(&old, LONG).await.unwrap());
        h.queue.ack(&old).await.unwrap();
        assert!(h.queue.contains(id).await.unwrap());
        assert!(h.queue.extend(&new, LONG).await.unwrap());
    }

    pub async fn stale_token_cannot_extend_ack_retry_or_release(h: Harness) {
        let (old, new) = taken_over(&h).await;
        let id = new.job.execution_id;
        assert!(!h.queue.extend(&old, LONG).await.unwrap());
        h.queue.ack(&old).await.unwrap();
        assert!(
            h.queue.contains(id).await.unwrap(),
            "a stale ack removed the job"
        );
        h.queue.retry(&old, Duration::ZERO).await.unwrap();
        h.queue.release(&old).await.unwrap();
        // The new holder still has it, and nobody else can claim it.
        assert_eq!(h.queue.claim("w3", LONG).await.unwrap(), None);
        assert!(h.queue.extend(&new, LONG).await.unwrap());
        h.queue.ack(&new).await.unwrap();
        assert!(!h.queue.contains(id).await.unwrap());
    }

    pub async fn extend_keeps_the_lease(h: Harness) {
        let id = h.new_job().await;
        let lease = h.queue.claim("w1", SHORT).await.unwrap().expect("a job");
        assert!(h.queue.extend(&lease, LONG).await.unwrap());
        tokio::time::sleep(PAST_SHORT).await;
        assert_eq!(h.queue.claim("w2", SHORT).await.unwrap(), None);
        assert!(h.queue.extend(&lease, LONG).await.unwrap());
        h.queue.ack(&lease).await.unwrap();
        assert!(!h.queue.contains(id).await.unwrap());
    }

    pub async fn short_extension_runs_out_too(h: Harness) {
        let lease = {
            h.new_job().await;
            h.queue.claim("w1", LONG).await.unwrap().expect("a job")
        };
        assert!(h.queue.extend(&lease, SHORT).await.unwrap());
        tokio::time::sleep(PAST_SHORT).await;
        let next = h
            .queue
            .claim("w2", LONG)
            .await
            .unwrap()
            .expect("the expired job");
        assert_eq!(next.job.attempt, 2);
        assert!(!h.queue.extend(&lease, LONG).await.unwrap());
    }

    pub async fn expired_but_not_taken_over_can_still_extend(h: Harness) {
        h.new_job().await;
        let lease = h.queue.claim("w1", SHORT).await.unwrap().expect("a job");
        tokio::time::sleep(PAST_SHORT).await;
        assert!(h.queue.extend(&lease, LONG).await.unwrap());
        assert_eq!(h.queue.claim("w2", LONG).await.unwrap(), None);
    }

    pub async fn retry_waits_for_its_delay_and_counts_the_attempt(h: Harness) {
        let id = h.new_job().await;
        let lease = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        h.queue
            .retry(&lease, Duration::from_millis(1500))
            .await
            .unwrap();
        assert!(h.queue.contains(id).await.unwrap());
        assert_eq!(h.queue.claim("w2", LONG).await.unwrap(), None);
        tokio::time::sleep(Duration::from_millis(1800)).await;
        let again = h
            .queue
            .claim("w2", LONG)
            .await
            .unwrap()
            .expect("the retried job");
        assert_eq!(again.job.execution_id, id);
        assert_eq!(again.job.attempt, 2);
        assert_ne!(again.token, lease.token);
        assert!(!h.queue.extend(&lease, LONG).await.unwrap());
    }

    pub async fn retry_without_delay_is_claimable_at_once(h: Harness) {
        let id = h.new_job().await;
        let lease = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        h.queue.retry(&lease, Duration::ZERO).await.unwrap();
        let again = h
            .queue
            .claim("w1", LONG)
            .await
            .unwrap()
            .expect("the retried job");
        assert_eq!((again.job.execution_id, again.job.attempt), (id, 2));
    }

    pub async fn release_is_claimable_at_once_and_not_counted(h: Harness) {
        let id = h.new_job().await;
        let lease = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        h.queue.release(&lease).await.unwrap();
        assert!(h.queue.contains(id).await.unwrap());
        let again = h
            .queue
            .claim("w2", LONG)
            .await
            .unwrap()
            .expect("the released job");
        assert_eq!((again.job.execution_id, again.job.attempt), (id, 1));
        assert!(!h.queue.extend(&lease, LONG).await.unwrap());
        // A later takeover counts from there.
        h.queue.retry(&again, Duration::ZERO).await.unwrap();
        let third = h
            .queue
            .claim("w3", LONG)
            .await
            .unwrap()
            .expect("the retried job");
        assert_eq!(third.job.attempt, 2);
    }

    pub async fn contains_follows_the_job(h: Harness) {
        assert!(!h.queue.contains(uuid::Uuid::now_v7()).await.unwrap());
        let id = h.new_job().await;
        assert!(h.queue.contains(id).await.unwrap(), "runnable");
        let lease = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        assert!(h.queue.contains(id).await.unwrap(), "leased");
        h.queue.retry(&lease, LONG).await.unwrap();
        assert!(h.queue.contains(id).await.unwrap(), "delayed");
        h.queue.enqueue(id, None).await.unwrap();
        assert_eq!(
            h.queue.claim("w1", LONG).await.unwrap(),
            None,
            "still delayed"
        );
        let other = h.new_job().await;
        let lease = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        assert_eq!(lease.job.execution_id, other);
        h.queue.ack(&lease).await.unwrap();
        assert!(!h.queue.contains(other).await.unwrap(), "acked");
        assert!(h.queue.contains(id).await.unwrap(), "the delayed one stays");
    }

    pub async fn enqueue_is_idempotent(h: Harness) {
        let id = h.new_job().await;
        h.queue.enqueue(id, None).await.unwrap();
        h.queue.enqueue(id, None).await.unwrap();
        let lease = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        assert_eq!(lease.job.execution_id, id);
        h.queue.enqueue(id, None).await.unwrap();
        assert_eq!(
            h.queue.claim("w2", LONG).await.unwrap(),
            None,
            "no second job"
        );
        h.queue.ack(&lease).await.unwrap();
        assert_eq!(h.queue.claim("w2", LONG).await.unwrap(), None);
        // After the ack a reconciler may enqueue it again: that is a new job.
        h.queue.enqueue(id, None).await.unwrap();
        assert!(h.queue.contains(id).await.unwrap());
    }

    pub async fn concurrent_claimers_take_each_job_once(h: Harness) {
        const JOBS: usize = 100;
        const WORKERS: usize = 8;
        let mut ids = HashSet::new();
        for _ in 0..JOBS {
            ids.insert(h.new_job().await);
        }
        let mut tasks = Vec::new();
        for w in 0..WORKERS {
            let queue = h.queue.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                let worker = format!("w{w}");
                while let Some(lease) = queue.claim(&worker, LONG).await.unwrap() {
                    got.push(lease.job.execution_id);
                    queue.ack(&lease).await.unwrap();
                }
                got
            }));
        }
        let mut claimed = Vec::new();
        for task in tasks {
            claimed.extend(task.await.unwrap());
        }
        let unique: HashSet<_> = claimed.iter().copied().collect();
        assert_eq!(claimed.len(), JOBS, "a job was claimed twice or lost");
        assert_eq!(unique, ids);
        assert_eq!(h.queue.claim("w0", LONG).await.unwrap(), None);
    }
}

/// Instantiate every case for every backend, as `<backend>::<case>`.
macro_rules! backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
               async fn $case() {
                   if let Some(h) = Harness::sqlite().await { cases::$case(h).await }
               } )*
        }
        mod postgres {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
               async fn $case() {
                   if let Some(h) = Harness::postgres().await { cases::$case(h).await }
               } )*
        }
        mod redis {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
               async fn $case() {
                   if let Some(h) = Harness::redis().await { cases::$case(h).await }
               } )*
        }
    };
}

backends!(
    enqueue_claim_ack,
    claim_on_empty_is_none,
    leased_job_is_not_claimed_again,
    jobs_are_claimed_in_order,
    expired_lease_is_taken_over_with_next_attempt,
    same_worker_name_taking_over_gets_a_new_token,
    stale_token_cannot_extend_ack_retry_or_release,
    extend_keeps_the_lease,
    short_extension_runs_out_too,
    expired_but_not_taken_over_can_still_extend,
    retry_waits_for_its_delay_and_counts_the_attempt,
    retry_without_delay_is_claimable_at_once,
    release_is_claimable_at_once_and_not_counted,
    contains_follows_the_job,
    enqueue_is_idempotent,
    concurrent_claimers_take_each_job_once,
);
