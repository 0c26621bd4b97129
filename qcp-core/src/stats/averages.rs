//! PgBouncer's `avg_*` figures: every `stats_period` the totals of each pool are compared
//! with those of the period before. Counts and bytes become rates per second; the times
//! become averages per item (transaction time per transaction, query time per query, wait
//! per server assignment), as PgBouncer computes them.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use super::counters::{Counter, Totals};

/// The averages of the last complete period, by key (a pool), and the totals they will be
/// compared with next.
#[derive(Debug)]
pub struct Averages<K> {
    state: Mutex<State<K>>,
}

#[derive(Debug)]
struct State<K> {
    /// When the last period ended, and each key's totals then.
    last: Option<(Instant, HashMap<K, Totals>)>,
    /// Averages over the last complete period.
    computed: HashMap<K, Totals>,
}

impl<K> Default for Averages<K> {
    fn default() -> Self {
        Averages {
            state: Mutex::new(State {
                last: None,
                computed: HashMap::new(),
            }),
        }
    }
}

impl<K: Eq + Hash + Clone> Averages<K> {
    /// Ends a period at `now` with these totals; keys seen for the first time are compared
    /// with zero from the start of the period.
    pub fn tick(&self, now: Instant, totals: impl IntoIterator<Item = (K, Totals)>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let current: HashMap<K, Totals> = totals.into_iter().collect();
        if let Some((then, previous)) = &state.last {
            let micros = now.saturating_duration_since(*then).as_micros();
            let micros = u64::try_from(micros).unwrap_or(u64::MAX);
            let zero = Totals::default();
            let computed = current
                .iter()
                .map(|(key, cur)| {
                    let old = previous.get(key).unwrap_or(&zero);
                    (key.clone(), average(cur, old, micros))
                })
                .collect();
            state.computed = computed;
        }
        state.last = Some((now, current));
    }

    /// The averages of `key` over the last complete period (zero before one ended).
    pub fn get(&self, key: &K) -> Totals {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.computed.get(key).cloned().unwrap_or_default()
    }
}

/// PgBouncer's averages of `cur - old` over `micros` µs.
pub fn average(cur: &Totals, old: &Totals, micros: u64) -> Totals {
    let mut avg = Totals::default();
    if micros == 0 {
        return avg;
    }
    let diff = |c: Counter| cur.get(c).saturating_sub(old.get(c));
    let per_second = |c: Counter| {
        let per = u128::from(diff(c))
            .saturating_mul(1_000_000)
            .checked_div(u128::from(micros))
            .unwrap_or(0);
        u64::try_from(per).unwrap_or(u64::MAX)
    };
    let per_item = |time: Counter, items: Counter| diff(time).checked_div(diff(items)).unwrap_or(0);
    for rate in [
        Counter::ServerAssignments,
        Counter::Xacts,
        Counter::Queries,
        Counter::Received,
        Counter::Sent,
        Counter::ClientParses,
        Counter::ServerParses,
        Counter::Binds,
        Counter::StatementHits,
        Counter::Evictions,
        Counter::ServerConnects,
        Counter::ServerConnectFailures,
    ] {
        avg.set(rate, per_second(rate));
    }
    avg.set(
        Counter::XactTime,
        per_item(Counter::XactTime, Counter::Xacts),
    );
    avg.set(
        Counter::QueryTime,
        per_item(Counter::QueryTime, Counter::Queries),
    );
    avg.set(
        Counter::WaitTime,
        per_item(Counter::WaitTime, Counter::ServerAssignments),
    );
    avg
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn totals(xacts: u64, xact_time: u64, received: u64) -> Totals {
        let mut t = Totals::default();
        t.set(Counter::Xacts, xacts);
        t.set(Counter::XactTime, xact_time);
        t.set(Counter::Received, received);
        t
    }

    #[test]
    fn rates_per_second_and_times_per_item() {
        let a = Averages::default();
        let start = Instant::now();
        a.tick(start, [("p", totals(10, 1_000, 100))]);
        assert_eq!(a.get(&"p"), Totals::default(), "no complete period yet");
        a.tick(
            start + Duration::from_secs(2),
            [("p", totals(30, 5_000, 2_100)), ("q", totals(4, 40, 0))],
        );
        let p = a.get(&"p");
        assert_eq!(p.get(Counter::Xacts), 10, "20 transactions in 2 s");
        assert_eq!(
            p.get(Counter::XactTime),
            200,
            "4000 µs over 20 transactions"
        );
        assert_eq!(p.get(Counter::Received), 1_000, "2000 bytes in 2 s");
        let q = a.get(&"q");
        assert_eq!(q.get(Counter::Xacts), 2, "a new pool is compared with zero");
        assert_eq!(q.get(Counter::XactTime), 10);
    }
}
