//! [`LimitedBus`] over the real in-process bus: the cap refuses at once, a dropped stream
//! gives its permit back, publishing is never limited.

use futures::StreamExt;
use livexec_core::{Event, Status};
use livexec_events::{
    EventBus, EventKind, LimitedBus, MemoryBus, MemoryBusConfig, TooManySubscriptions,
};
use std::sync::Arc;
use uuid::Uuid;

fn event(execution_id: Uuid, seq: u64, kind: EventKind) -> Event {
    Event {
        execution_id,
        seq,
        kind,
    }
}

#[tokio::test]
async fn subscriptions_past_the_cap_are_refused_until_one_is_dropped() {
    let bus = LimitedBus::new(Arc::new(MemoryBus::new(MemoryBusConfig::default())), 2);
    let id = Uuid::now_v7();
    let first = bus.subscribe(id, 0).await.expect("first");
    let mut second = bus.subscribe(id, 0).await.expect("second");
    assert_eq!(bus.open(), 2);
    let refused = match bus.subscribe(id, 0).await {
        Ok(_) => panic!("a third subscription was allowed past a cap of 2"),
        Err(e) => e,
    };
    let cause = refused
        .source
        .downcast_ref::<TooManySubscriptions>()
        .expect("the refusal names the cap");
    assert_eq!(cause.max, 2);
    assert!(refused.to_string().contains("subscribe"), "{refused}");

    // Publishing is not limited, and the open streams still get everything.
    bus.publish(event(id, 1, EventKind::Stdout(b"hi".to_vec())))
        .await
        .expect("publish");
    bus.publish(event(id, 2, EventKind::Finished(Status::Completed)))
        .await
        .expect("publish");
    let got: Vec<Event> = (&mut second).collect().await;
    assert_eq!(got.len(), 2);

    drop(first);
    assert_eq!(bus.open(), 1, "a dropped stream gives its permit back");
    let again = bus.subscribe(id, 0).await;
    assert!(again.is_ok(), "a permit was freed");
    drop(second);
    drop(again);
    assert_eq!(bus.open(), 0);
}
