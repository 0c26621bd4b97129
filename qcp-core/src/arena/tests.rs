use super::*;
use futures::executor::block_on;
use futures::FutureExt;

#[test]
fn hands_out_every_chunk_once_and_takes_them_back() {
    let arena = Arena::new(1024, 4);
    // One chunk is reserved for linked traffic; new work gets the other three.
    let a = arena.try_acquire(Priority::New).expect("free chunk");
    let b = arena.try_acquire(Priority::New).expect("free chunk");
    let c = arena.try_acquire(Priority::New).expect("free chunk");
    assert!(
        arena.try_acquire(Priority::New).is_none(),
        "the reserve is not for new work"
    );
    let d = arena
        .try_acquire(Priority::Linked)
        .expect("the reserve serves linked traffic");
    assert!(arena.try_acquire(Priority::Linked).is_none());
    assert_eq!(a.len(), 1024);
    assert_eq!(arena.stats().in_use, 4);
    drop((a, b, c, d));
    let stats = arena.stats();
    assert_eq!(stats.in_use, 0);
    assert_eq!(stats.peak, 4);
    assert_eq!(stats.acquisitions, 4);
}

#[test]
fn chunks_do_not_overlap() {
    let arena = Arena::new(64, 3);
    let mut a = arena.try_acquire(Priority::Linked).unwrap();
    let mut b = arena.try_acquire(Priority::Linked).unwrap();
    a.bytes_mut().fill(1);
    b.bytes_mut().fill(2);
    assert!(a.bytes().iter().all(|&x| x == 1));
    assert!(b.bytes().iter().all(|&x| x == 2));
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let arena = Arena::new(64, 2); // reserve 1, so new work has one chunk
    let held = arena.try_acquire(Priority::New).unwrap();
    let mut first = arena.acquire(Priority::New);
    let mut second = arena.acquire(Priority::New);
    assert!((&mut first).now_or_never().is_none());
    assert!((&mut second).now_or_never().is_none());
    assert_eq!(arena.stats().waiting, 2);
    drop(held);
    assert!(
        (&mut second).now_or_never().is_none(),
        "the second waiter must not overtake"
    );
    let got = (&mut first).now_or_never().expect("first waiter served");
    drop(got);
    assert!(second.now_or_never().is_some());
}

#[test]
fn linked_waiters_go_before_new_ones() {
    let arena = Arena::new(64, 2);
    let a = arena.try_acquire(Priority::New).unwrap();
    let b = arena.try_acquire(Priority::Linked).unwrap();
    let mut new = arena.acquire(Priority::New);
    let mut linked = arena.acquire(Priority::Linked);
    drop(a);
    assert!((&mut new).now_or_never().is_none());
    let chunk = (&mut linked)
        .now_or_never()
        .expect("linked traffic served first");
    drop(chunk);
    drop(b);
    assert!(new.now_or_never().is_some());
}

#[test]
fn a_waiter_that_gave_up_passes_its_turn_on() {
    let arena = Arena::new(64, 2);
    let held = arena.try_acquire(Priority::New).unwrap();
    let gave_up = arena.acquire(Priority::New);
    let mut patient = arena.acquire(Priority::New);
    drop(gave_up); // e.g. its timeout fired
    drop(held);
    assert!((&mut patient).now_or_never().is_some());
    assert_eq!(arena.stats().waiting, 0);
}

#[test]
fn acquire_completes_immediately_when_free() {
    let arena = Arena::new(64, 4);
    let chunk = block_on(arena.acquire(Priority::New));
    assert_eq!(chunk.len(), 64);
    assert_eq!(arena.stats().exhausted, 0);
}

#[test]
fn exhaustion_is_counted() {
    let arena = Arena::new(64, 1);
    let held = arena.try_acquire(Priority::Linked).unwrap();
    let waiting = arena.acquire(Priority::Linked);
    assert_eq!(arena.stats().exhausted, 1);
    drop(held);
    drop(waiting);
    assert_eq!(arena.stats().in_use, 0);
}
