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
    use livexec_core::{ExecutionId, Lease};
    use std::collections::{HashMap, HashSet};
    use uuid::Uuid;

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

    /// Claim and ack with one worker until the queue is empty; the claimed ids in order.
    async fn drain(h: &Harness) -> Vec<ExecutionId> {
        let mut order = Vec::new();
        while let Some(lease) = h.queue.claim("w1", LONG).await.unwrap() {
            order.push(lease.job.execution_id);
            h.queue.ack(&lease).await.unwrap();
        }
        order
    }

    /// The jobs of `owner` in `order`, in the order they were claimed.
    fn of(order: &[ExecutionId], jobs: &[ExecutionId]) -> Vec<ExecutionId> {
        order
            .iter()
            .copied()
            .filter(|id| jobs.contains(id))
            .collect()
    }

    pub async fn a_burst_does_not_starve_another_owner(h: Harness) {
        let (a, b) = (Some(Uuid::new_v4()), Some(Uuid::new_v4()));
        let mut burst = Vec::new();
        for _ in 0..1000 {
            burst.push(h.new_job_for(a).await);
        }
        let single = h.new_job_for(b).await;
        let order = drain(&h).await;
        assert_eq!(order.len(), 1001);
        let at = order.iter().position(|id| *id == single).unwrap();
        assert!(at < 2, "B's job was claim {} after A's burst", at + 1);
        assert_eq!(of(&order, &burst), burst, "A's jobs left their order");
    }

    pub async fn owners_take_turns(h: Harness) {
        let owners = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
        let mut jobs: HashMap<Uuid, Vec<ExecutionId>> = HashMap::new();
        // Interleaved unevenly: the owners' jobs are not in turns in the table.
        for (owner, n) in [(0, 3), (1, 1), (0, 1), (2, 4), (1, 3)] {
            for _ in 0..n {
                let id = h.new_job_for(Some(owners[owner])).await;
                jobs.entry(owners[owner]).or_default().push(id);
            }
        }
        let order = drain(&h).await;
        let owner_of = |id: &ExecutionId| {
            *jobs
                .iter()
                .find(|(_, ids)| ids.contains(id))
                .expect("a job of ours")
                .0
        };
        let turns: Vec<Uuid> = order.iter().map(owner_of).collect();
        // 4 jobs each: 4 rounds in which every owner gets one.
        assert_eq!(order.len(), 12);
        for round in turns.chunks(3) {
            let distinct: HashSet<_> = round.iter().collect();
            assert_eq!(distinct.len(), 3, "not in turns: {turns:?}");
        }
        for (owner, ids) in &jobs {
            assert_eq!(
                &of(&order, ids),
                ids,
                "owner {owner}'s jobs left their order"
            );
        }
    }

    pub async fn a_retried_job_keeps_its_owner(h: Harness) {
        let (a, b) = (Some(Uuid::new_v4()), Some(Uuid::new_v4()));
        let a1 = h.new_job_for(a).await;
        let a2 = h.new_job_for(a).await;
        let first = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        assert_eq!(first.job.execution_id, a1);
        let mut bs = Vec::new();
        for _ in 0..4 {
            bs.push(h.new_job_for(b).await);
        }
        h.queue.retry(&first, Duration::ZERO).await.unwrap();
        // B was never served, then the owners alternate; a1 is behind a2 in A's turns.
        let mut claimed = Vec::new();
        while let Some(lease) = h.queue.claim("w1", LONG).await.unwrap() {
            claimed.push((lease.job.execution_id, lease.job.attempt));
            h.queue.ack(&lease).await.unwrap();
        }
        assert_eq!(
            claimed,
            vec![
                (bs[0], 1),
                (a2, 1),
                (bs[1], 1),
                (a1, 2),
                (bs[2], 1),
                (bs[3], 1)
            ]
        );
    }

    pub async fn a_released_job_keeps_its_owner(h: Harness) {
        let (a, b) = (Some(Uuid::new_v4()), Some(Uuid::new_v4()));
        let a1 = h.new_job_for(a).await;
        let a2 = h.new_job_for(a).await;
        let first = h.queue.claim("w1", LONG).await.unwrap().expect("a job");
        assert_eq!(first.job.execution_id, a1);
        let mut bs = Vec::new();
        for _ in 0..3 {
            bs.push(h.new_job_for(b).await);
        }
        h.queue.release(&first).await.unwrap();
        let order = drain(&h).await;
        assert_eq!(order, vec![bs[0], a2, bs[1], a1, bs[2]]);
    }

    pub async fn jobs_without_an_owner_are_a_group_of_their_own(h: Harness) {
        let a = Some(Uuid::new_v4());
        let mut anonymous = Vec::new();
        for _ in 0..20 {
            anonymous.push(h.new_job_for(None).await);
        }
        let keyed = h.new_job_for(a).await;
        let order = drain(&h).await;
        let at = order.iter().position(|id| *id == keyed).unwrap();
        assert!(
            at < 2,
            "the keyed job was claim {} after 20 without owner",
            at + 1
        );
        assert_eq!(of(&order, &anonymous), anonymous);
        // And the other way round.
        let mut burst = Vec::new();
        for _ in 0..20 {
            burst.push(h.new_job_for(a).await);
        }
        let lone = h.new_job_for(None).await;
        let order = drain(&h).await;
        let at = order.iter().position(|id| *id == lone).unwrap();
        assert!(
            at < 2,
            "the job without owner was claim {} after 20 keyed",
            at + 1
        );
        assert_eq!(of(&order, &burst), burst);
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
                   cases::$case(Harness::sqlite().await).await
               } )*
        }
        mod postgres {
            use super::*;
            $( #[ignore = "needs PostgreSQL (DATABASE_URL, default 127.0.0.1:5432)"]
               #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
               async fn $case() {
                   cases::$case(Harness::postgres().await).await
               } )*
        }
        mod redis {
            use super::*;
            $( #[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
               #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
               async fn $case() {
                   cases::$case(Harness::redis().await).await
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
    a_burst_does_not_starve_another_owner,
    owners_take_turns,
    a_retried_job_keeps_its_owner,
    a_released_job_keeps_its_owner,
    jobs_without_an_owner_are_a_group_of_their_own,
);
