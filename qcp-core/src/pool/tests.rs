use super::*;
use futures::FutureExt;

fn pool(servers: Vec<(usize, u32)>) -> Pool<&'static str> {
    let count = servers.iter().map(|(s, _)| s + 1).max().unwrap_or(0);
    let health = Arc::new(ServerHealth::new(count, Duration::from_secs(15)));
    Pool::new(
        PoolKey {
            database: "db".into(),
            user: "u".into(),
        },
        servers,
        health,
    )
}

fn now() -> Instant {
    Instant::now()
}

#[test]
fn opens_up_to_pool_size_then_queues() {
    let p = pool(vec![(0, 2)]);
    let t = now();
    assert!(matches!(
        p.checkout(t, None),
        Checkout::Now(Grant::Open { server: 0 })
    ));
    assert!(matches!(
        p.checkout(t, None),
        Checkout::Now(Grant::Open { server: 0 })
    ));
    let Checkout::Wait(mut w) = p.checkout(t, None) else {
        panic!("third client must wait")
    };
    assert!((&mut w).now_or_never().is_none());
    assert_eq!(
        p.stats(),
        PoolStats {
            open: 2,
            idle: 0,
            waiting: 1
        }
    );
    assert!(p.checkin("c1", 0, t, t).is_none());
    let Some(Ok(Grant::Idle { conn, .. })) = w.now_or_never() else {
        panic!("waiter served")
    };
    assert_eq!(conn, "c1");
}

#[test]
fn reuses_the_most_recent_idle_connection() {
    let p = pool(vec![(0, 5)]);
    let t = now();
    assert!(p.checkin("old", 0, t, t).is_none());
    assert!(p.checkin("new", 0, t, t).is_none());
    let Checkout::Now(Grant::Idle { conn, .. }) = p.checkout(t, None) else {
        panic!()
    };
    assert_eq!(conn, "new");
}

#[test]
fn waiters_are_first_come_first_served() {
    let p = pool(vec![(0, 1)]);
    let t = now();
    let _held = p.checkout(t, None);
    let Checkout::Wait(mut a) = p.checkout(t, None) else {
        panic!()
    };
    let Checkout::Wait(mut b) = p.checkout(t, None) else {
        panic!()
    };
    assert!(p.checkin("x", 0, t, t).is_none());
    assert!((&mut b).now_or_never().is_none());
    assert!(matches!(
        (&mut a).now_or_never(),
        Some(Ok(Grant::Idle { .. }))
    ));
}

#[test]
fn a_waiter_that_gave_up_is_skipped() {
    let p = pool(vec![(0, 1)]);
    let t = now();
    let _held = p.checkout(t, None);
    let Checkout::Wait(gone) = p.checkout(t, None) else {
        panic!()
    };
    let Checkout::Wait(mut next) = p.checkout(t, None) else {
        panic!()
    };
    drop(gone);
    assert!(p.checkin("x", 0, t, t).is_none());
    assert!(matches!(
        (&mut next).now_or_never(),
        Some(Ok(Grant::Idle { .. }))
    ));
    assert_eq!(p.stats().idle, 0);
}

#[test]
fn a_closed_connection_lets_a_waiter_open_a_new_one() {
    let p = pool(vec![(0, 1)]);
    let t = now();
    let _held = p.checkout(t, None);
    let Checkout::Wait(mut w) = p.checkout(t, None) else {
        panic!()
    };
    p.closed(0, t);
    assert!(matches!(
        (&mut w).now_or_never(),
        Some(Ok(Grant::Open { server: 0 }))
    ));
    assert_eq!(p.stats().open, 1);
}

#[test]
fn new_connections_go_to_the_least_loaded_server() {
    let p = pool(vec![(0, 5), (1, 5)]);
    let t = now();
    let servers: Vec<usize> = (0..4)
        .map(|_| match p.checkout(t, None) {
            Checkout::Now(Grant::Open { server }) => server,
            _ => panic!(),
        })
        .collect();
    assert_eq!(servers.iter().filter(|&&s| s == 0).count(), 2);
    assert_eq!(servers.iter().filter(|&&s| s == 1).count(), 2);
}

#[test]
fn a_server_in_back_off_is_avoided_but_not_abandoned() {
    let p = pool(vec![(0, 2), (1, 2)]);
    let t = now();
    p.health.failed(0, t);
    for _ in 0..2 {
        assert!(matches!(
            p.checkout(t, None),
            Checkout::Now(Grant::Open { server: 1 })
        ));
    }
    // Server 1 is full: server 0 is tried again rather than making the client wait.
    assert!(matches!(
        p.checkout(t, None),
        Checkout::Now(Grant::Open { server: 0 })
    ));
    // After the back-off it is an ordinary candidate.
    assert!(!p.health.backing_off(0, t + Duration::from_secs(16)));
}

#[test]
fn a_grant_given_back_is_not_lost() {
    let p = pool(vec![(0, 1)]);
    let t = now();
    let Checkout::Now(grant) = p.checkout(t, None) else {
        panic!()
    };
    assert!(p.give_back(grant, t).is_none());
    assert_eq!(p.stats().open, 0, "the Open slot is freed");
    // Counted nowhere, but the idle list takes it.
    assert!(p.checkin("c", 0, t, t).is_none());
    let Checkout::Now(idle) = p.checkout(t, None) else {
        panic!()
    };
    assert!(p.give_back(idle, t).is_none());
    assert_eq!(p.stats().idle, 1, "the idle connection is back");
}

#[test]
fn reap_closes_idle_and_old_connections() {
    let p = pool(vec![(0, 5)]);
    let t = now();
    // Two connections opened through the pool, then returned.
    for _ in 0..2 {
        assert!(matches!(
            p.checkout(t, None),
            Checkout::Now(Grant::Open { server: 0 })
        ));
    }
    assert_eq!(p.stats().open, 2);
    assert!(p.checkin("idle-long", 0, t, t).is_none());
    assert!(p
        .checkin("fresh", 0, t, t + Duration::from_secs(599))
        .is_none());
    let reaped = p.reap(
        t + Duration::from_secs(600),
        Duration::from_secs(600),
        Duration::ZERO,
    );
    assert_eq!(reaped, vec!["idle-long"]);
    let reaped = p.reap(
        t + Duration::from_secs(601),
        Duration::ZERO,
        Duration::from_secs(60),
    );
    assert_eq!(reaped, vec!["fresh"], "older than the lifetime");
    assert_eq!(
        p.stats().open,
        0,
        "slots freed... of connections that were counted"
    );
}

#[test]
fn expire_ends_waits_past_their_deadline_and_reports_the_next() {
    let p = pool(vec![(0, 1)]);
    let t = now();
    let second = Duration::from_secs(1);
    let _held = p.checkout(t, None);
    let Checkout::Wait(mut early) = p.checkout(t, Some(t + second)) else {
        panic!()
    };
    let Checkout::Wait(mut patient) = p.checkout(t, None) else {
        panic!()
    };
    let Checkout::Wait(mut late) = p.checkout(t, Some(t + 3 * second)) else {
        panic!()
    };
    assert_eq!(p.expire(t), Some(t + second), "nothing due yet");
    assert!((&mut early).now_or_never().is_none());

    assert_eq!(p.expire(t + second), Some(t + 3 * second));
    assert!(
        matches!((&mut early).now_or_never(), Some(Err(oneshot::Canceled))),
        "a wait at its deadline ends"
    );
    assert!((&mut late).now_or_never().is_none());
    assert_eq!(p.stats().waiting, 2);

    // The connection goes to the first waiter still there.
    assert!(p.checkin("x", 0, t, t).is_none());
    assert!(matches!(
        (&mut patient).now_or_never(),
        Some(Ok(Grant::Idle { .. }))
    ));
    assert_eq!(p.expire(t + 2 * second), Some(t + 3 * second));
    assert_eq!(p.expire(t + 3 * second), None, "no deadline left");
    assert!(matches!(
        (&mut late).now_or_never(),
        Some(Err(oneshot::Canceled))
    ));
    assert_eq!(p.stats().waiting, 0);
}

#[test]
fn checkout_on_takes_the_preferred_idle_connection_first() {
    let p = pool(vec![(0, 3)]);
    let t = now();
    for _ in 0..3 {
        let _ = p.checkout(t, None);
    }
    assert!(p.checkin("a", 0, t, t).is_none());
    assert!(p.checkin("b", 0, t, t).is_none());
    assert!(p.checkin("c", 0, t, t).is_none());
    let Checkout::Now(Grant::Idle { conn, .. }) = p.checkout_on(t, None, None, |c| *c == "a")
    else {
        panic!("an idle connection")
    };
    assert_eq!(conn, "a", "the preferred one, though not the most recent");
    let Checkout::Now(Grant::Idle { conn, .. }) = p.checkout_on(t, None, None, |c| *c == "a")
    else {
        panic!("an idle connection")
    };
    assert_eq!(conn, "c", "none preferred left: the most recently used");
}

#[test]
fn a_connection_returned_on_a_thread_goes_to_a_waiter_of_that_thread_first() {
    let p = pool(vec![(0, 1)]);
    let t = now();
    let _held = p.checkout(t, None);
    let Checkout::Wait(mut other) = p.checkout_on(t, None, Some(1), |_| true) else {
        panic!()
    };
    let Checkout::Wait(mut local) = p.checkout_on(t, None, Some(0), |_| true) else {
        panic!()
    };
    assert!(p.checkin_from("x", 0, t, t, Some(0)).is_none());
    assert!(
        matches!((&mut local).now_or_never(), Some(Ok(Grant::Idle { .. }))),
        "the waiter on the connection's thread, though second in line"
    );
    assert!((&mut other).now_or_never().is_none());
}

#[test]
fn the_first_in_line_is_passed_over_only_within_the_window() {
    let p = pool(vec![(0, 1)]);
    let t = now();
    let _held = p.checkout(t, None);
    let Checkout::Wait(mut other) = p.checkout_on(t, None, Some(1), |_| true) else {
        panic!()
    };
    let Checkout::Wait(mut local) = p.checkout_on(t, None, Some(0), |_| true) else {
        panic!()
    };
    let later = t + super::SAME_THREAD_WINDOW;
    assert!(p.checkin_from("x", 0, t, later, Some(0)).is_none());
    assert!(
        matches!((&mut other).now_or_never(), Some(Ok(Grant::Idle { .. }))),
        "the first in line has waited long enough: it gets it"
    );
    assert!((&mut local).now_or_never().is_none());
}

#[test]
fn the_console_sees_the_oldest_wait_and_the_idle_connections() {
    let p = pool(vec![(0, 1)]);
    let t = now();
    assert_eq!(p.oldest_wait(t), None);
    let Checkout::Now(Grant::Open { server }) = p.checkout(t, None) else {
        panic!("the first client opens a connection")
    };
    let Checkout::Wait(first) = p.checkout(t, None) else {
        panic!("the second waits")
    };
    let Checkout::Wait(second) = p.checkout(t + Duration::from_secs(2), None) else {
        panic!("the third waits")
    };
    let later = t + Duration::from_secs(5);
    assert_eq!(p.oldest_wait(later), Some(Duration::from_secs(5)));
    // A waiter that gave up is not waiting any more.
    drop(first);
    assert_eq!(p.oldest_wait(later), Some(Duration::from_secs(3)));
    drop(second);
    assert_eq!(p.oldest_wait(later), None);
    assert!(p.checkin("conn", server, t, later).is_none());
    assert_eq!(p.idle_view(|c| c.len()), vec![4]);
}

/// Opens `n` connections to whatever server the pool grants, returning their servers.
fn open_n(p: &Pool<&'static str>, n: usize, t: Instant) -> Vec<usize> {
    (0..n)
        .map(|_| match p.checkout(t, None) {
            Checkout::Now(Grant::Open { server }) => server,
            other => panic!("expected an open grant, got {other:?}"),
        })
        .collect()
}

#[test]
fn a_reload_retires_a_server_its_connections_close_as_they_come_back() {
    let p = pool(vec![(0, 2)]);
    let t = now();
    assert_eq!(open_n(&p, 2, t), [0, 0]);
    assert!(p.checkin("idle", 0, t, t).is_none());
    // Server 0 goes, server 1 comes.
    let closed = p.reconfigure(&[(1, 1)], t);
    assert_eq!(
        closed,
        ["idle"],
        "the idle connection to the old server closes now"
    );
    assert_eq!(p.stats().open, 1, "the one lent out is still counted");
    // New connections go to the new server only.
    assert_eq!(open_n(&p, 1, t), [1]);
    let Checkout::Wait(_waiting) = p.checkout(t, None) else {
        panic!("the new server is at its limit")
    };
    // The lent-out one comes back: handed back to be closed, never to the waiter.
    assert_eq!(p.checkin("lent", 0, t, t), Some("lent"));
    assert_eq!(p.stats().open, 1);
    assert_eq!(p.stats().waiting, 1);
}

#[test]
fn a_lowered_pool_size_closes_the_surplus_and_a_raised_one_serves_waiters() {
    let p = pool(vec![(0, 3)]);
    let t = now();
    open_n(&p, 3, t);
    assert!(p.checkin("a", 0, t, t).is_none());
    assert!(p.checkin("b", 0, t, t).is_none());
    // Down to 1 with 3 open: the idle ones close now, oldest first, as long as the count
    // (the one lent out included) is above the limit.
    assert_eq!(p.reconfigure(&[(0, 1)], t), ["a", "b"]);
    assert_eq!(p.stats().open, 1);
    assert!(p.checkin("c", 0, t, t).is_none(), "within the new limit");
    let Checkout::Now(Grant::Idle { conn: "c", .. }) = p.checkout(t, None) else {
        panic!("the kept connection is reused")
    };
    // Down to 1 with 2 open, both lent out: the first back is surplus.
    assert!(p.reconfigure(&[(0, 2)], t).is_empty());
    assert_eq!(open_n(&p, 1, t), [0]);
    assert!(
        p.reconfigure(&[(0, 1)], t).is_empty(),
        "nothing idle to close"
    );
    assert_eq!(p.checkin("d", 0, t, t), Some("d"), "above the new limit");
    assert!(p.checkin("c", 0, t, t).is_none());
    let Checkout::Now(Grant::Idle { conn: "c", .. }) = p.checkout(t, None) else {
        panic!()
    };
    let Checkout::Wait(mut waiting) = p.checkout(t, None) else {
        panic!("at the limit, a client waits")
    };
    // Up to 2: the waiter may open one at once.
    assert!(p.reconfigure(&[(0, 2)], t).is_empty());
    assert!(matches!(
        (&mut waiting).now_or_never(),
        Some(Ok(Grant::Open { server: 0 }))
    ));
}

#[test]
fn a_server_kept_by_a_reload_keeps_its_connections() {
    let p = pool(vec![(0, 2), (1, 2)]);
    let t = now();
    open_n(&p, 2, t);
    assert!(p.checkin("x", 0, t, t).is_none());
    assert!(p.checkin("y", 1, t, t).is_none());
    let closed = p.reconfigure(&[(1, 2)], t);
    assert_eq!(closed, ["x"]);
    assert_eq!(p.stats().open, 1);
    let Checkout::Now(Grant::Idle { conn: "y", .. }) = p.checkout(t, None) else {
        panic!("the kept server's connection is still pooled")
    };
}

#[test]
fn a_paused_pool_hands_nothing_out_until_resumed() {
    let p = pool(vec![(0, 2)]);
    let t = now();
    open_n(&p, 2, t);
    assert!(p.checkin("idle", 0, t, t).is_none());
    assert!(p.pause());
    assert!(!p.pause(), "paused already");
    assert_eq!(p.in_use(), 1);
    // Neither the idle connection nor a new one is handed out: the client queues.
    let Checkout::Wait(mut first) = p.checkout(t, None) else {
        panic!("a paused pool queues")
    };
    // The lent one comes back: it stays idle, the queue waits.
    assert!(p.checkin("lent", 0, t, t).is_none());
    assert!((&mut first).now_or_never().is_none());
    assert_eq!(p.in_use(), 0, "what PAUSE waits for");
    assert_eq!(p.stats().idle, 2);
    assert!(p.resume(t));
    assert!(matches!(
        (&mut first).now_or_never(),
        Some(Ok(Grant::Idle { conn: "lent", .. }))
    ));
    assert!(!p.resume(t), "not paused any more");
}

#[test]
fn reconnect_replaces_every_connection_open_now() {
    let p = pool(vec![(0, 2)]);
    let t = now();
    open_n(&p, 2, t);
    assert!(p.checkin("idle", 0, t, t).is_none());
    let later = t + Duration::from_millis(5);
    assert_eq!(p.reconnect(later), ["idle"]);
    assert_eq!(
        p.checkin("lent", 0, t, later),
        Some("lent"),
        "opened before"
    );
    assert_eq!(p.stats().open, 0);
    let after = later + Duration::from_millis(5);
    assert_eq!(open_n(&p, 1, after), [0]);
    assert!(
        p.checkin("new", 0, after, after).is_none(),
        "opened after: kept"
    );
}
