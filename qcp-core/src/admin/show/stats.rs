//! SHOW STATS, STATS_TOTALS, STATS_AVERAGES (one row per database) and SHOW TOTALS (one
//! row per figure, over every pool).
//!
//! qcp counts per pool; PgBouncer's tables are per database, so the pools of a database
//! are summed. Totals add up ([`Totals::merge`]). Averages need care: PgBouncer sums the
//! pools' totals first and then divides, so a database's average query time is its query
//! time over its queries in the period. The snapshot has each pool's averages only: the
//! rates (per second) add up as they are, and each average time is weighted by its pool's
//! rate of the items it is per (transactions, queries, server assignments), which gives
//! PgBouncer's figure up to rounding. When every pool's rate rounds to zero (fewer than one
//! item per second), the weights say nothing, and the plain mean of the pools' non-zero
//! averages is shown instead.

use std::collections::BTreeMap;

use crate::admin::resultset::{Column, ResultSet, Unit, Value};
use crate::stats::{Counter, PoolView, Snapshot, Totals};

/// PgBouncer's figures, in its column order, with their units.
const FIGURES: [(Counter, Unit); 11] = [
    (Counter::ServerAssignments, Unit::Plain),
    (Counter::Xacts, Unit::Plain),
    (Counter::Queries, Unit::Plain),
    (Counter::Received, Unit::Bytes),
    (Counter::Sent, Unit::Bytes),
    (Counter::XactTime, Unit::Micros),
    (Counter::QueryTime, Unit::Micros),
    (Counter::WaitTime, Unit::Micros),
    (Counter::ClientParses, Unit::Plain),
    (Counter::ServerParses, Unit::Plain),
    (Counter::Binds, Unit::Plain),
];

/// Each average time and the count it is an average over.
const TIMES: [(Counter, Counter); 3] = [
    (Counter::XactTime, Counter::Xacts),
    (Counter::QueryTime, Counter::Queries),
    (Counter::WaitTime, Counter::ServerAssignments),
];

const TOTAL_NAMES: [&str; 11] = [
    "total_server_assignment_count",
    "total_xact_count",
    "total_query_count",
    "total_received",
    "total_sent",
    "total_xact_time",
    "total_query_time",
    "total_wait_time",
    "total_client_parse_count",
    "total_server_parse_count",
    "total_bind_count",
];

const AVERAGE_NAMES: [&str; 11] = [
    "avg_server_assignment_count",
    "avg_xact_count",
    "avg_query_count",
    "avg_recv",
    "avg_sent",
    "avg_xact_time",
    "avg_query_time",
    "avg_wait_time",
    "avg_client_parse_count",
    "avg_server_parse_count",
    "avg_bind_count",
];

/// STATS_TOTALS drops the `total_` prefix.
const STATS_TOTALS_NAMES: [&str; 11] = [
    "server_assignment_count",
    "xact_count",
    "query_count",
    "bytes_received",
    "bytes_sent",
    "xact_time",
    "query_time",
    "wait_time",
    "client_parse_count",
    "server_parse_count",
    "bind_count",
];

/// STATS_AVERAGES drops the `avg_` prefix too, but for the last three (as PgBouncer does).
const STATS_AVERAGES_NAMES: [&str; 11] = [
    "server_assignment_count",
    "xact_count",
    "query_count",
    "bytes_received",
    "bytes_sent",
    "xact_time",
    "query_time",
    "wait_time",
    "avg_client_parse_count",
    "avg_server_parse_count",
    "avg_bind_count",
];

/// SHOW TOTALS' row names: PgBouncer's field names behind `total_`/`avg_`.
const TOTALS_NAMES: [&str; 11] = [
    "server_assignment_count",
    "xact_count",
    "query_count",
    "client_bytes",
    "server_bytes",
    "xact_time",
    "query_time",
    "wait_time",
    "ps_client_parse_count",
    "ps_server_parse_count",
    "ps_bind_count",
];

/// The pools' averages added up (see the module's documentation).
#[derive(Default)]
struct AverageSum {
    /// Rates summed; the time entries stay zero until [`AverageSum::finish`].
    rates: Totals,
    /// Per entry of [`TIMES`]: Σ time × rate, Σ rate, Σ non-zero times, their number.
    times: [(u128, u128, u128, u128); 3],
}

impl AverageSum {
    fn add(&mut self, averages: &Totals) {
        for (counter, _) in FIGURES {
            if TIMES.iter().all(|&(time, _)| time != counter) {
                let sum = self
                    .rates
                    .get(counter)
                    .saturating_add(averages.get(counter));
                self.rates.set(counter, sum);
            }
        }
        for (sums, &(time, count)) in self.times.iter_mut().zip(&TIMES) {
            let (weighted, weights, plain, plain_count) = sums;
            let (time, rate) = (
                u128::from(averages.get(time)),
                u128::from(averages.get(count)),
            );
            *weighted = weighted.saturating_add(time.saturating_mul(rate));
            *weights = weights.saturating_add(rate);
            if time > 0 {
                *plain = plain.saturating_add(time);
                *plain_count = plain_count.saturating_add(1);
            }
        }
    }

    fn finish(self) -> Totals {
        let mut averages = self.rates;
        for (&(weighted, weights, plain, plain_count), &(time, _)) in self.times.iter().zip(&TIMES)
        {
            let value = weighted
                .checked_div(weights)
                .or_else(|| plain.checked_div(plain_count))
                .unwrap_or(0);
            averages.set(time, u64::try_from(value).unwrap_or(u64::MAX));
        }
        averages
    }
}

/// The totals and averages of a set of pools.
#[derive(Default)]
struct Sums {
    totals: Totals,
    averages: AverageSum,
}

impl Sums {
    fn add(&mut self, pool: &PoolView) {
        self.totals.merge(&pool.totals);
        self.averages.add(&pool.averages);
    }
}

/// The pools summed per database, by database name.
fn by_database(snapshot: &Snapshot) -> Vec<(&str, Totals, Totals)> {
    let mut sums: BTreeMap<&str, Sums> = BTreeMap::new();
    for pool in &snapshot.pools {
        sums.entry(pool.database.as_str()).or_default().add(pool);
    }
    sums.into_iter()
        .map(|(db, s)| (db, s.totals, s.averages.finish()))
        .collect()
}

/// The eleven figures of `totals` (or averages), in PgBouncer's order.
fn figures(totals: &Totals) -> impl Iterator<Item = Value> + '_ {
    FIGURES.iter().map(|&(c, _)| Value::count(totals.get(c)))
}

/// `database`, then a `numeric` column per name in `groups`, with the units of
/// [`FIGURES`].
fn header(groups: &[&[&'static str; 11]]) -> Vec<Column> {
    let mut columns = vec![Column::text("database")];
    for names in groups {
        for (name, &(_, unit)) in names.iter().zip(&FIGURES) {
            columns.push(Column::numeric(name).unit(unit));
        }
    }
    columns
}

pub(super) fn stats(snapshot: &Snapshot) -> ResultSet {
    let mut set = ResultSet::new(&header(&[&TOTAL_NAMES, &AVERAGE_NAMES]));
    for (db, totals, averages) in by_database(snapshot) {
        let mut row = vec![Value::text(db)];
        row.extend(figures(&totals));
        row.extend(figures(&averages));
        set.push(row);
    }
    set
}

pub(super) fn stats_totals(snapshot: &Snapshot) -> ResultSet {
    one_side(snapshot, &STATS_TOTALS_NAMES, |totals, _| totals)
}

pub(super) fn stats_averages(snapshot: &Snapshot) -> ResultSet {
    one_side(snapshot, &STATS_AVERAGES_NAMES, |_, averages| averages)
}

/// A table of one figure set per database: the totals, or the averages.
fn one_side(
    snapshot: &Snapshot,
    names: &[&'static str; 11],
    pick: fn(Totals, Totals) -> Totals,
) -> ResultSet {
    let mut set = ResultSet::new(&header(&[names]));
    for (db, totals, averages) in by_database(snapshot) {
        let mut row = vec![Value::text(db)];
        row.extend(figures(&pick(totals, averages)));
        set.push(row);
    }
    set
}

pub(super) fn totals(snapshot: &Snapshot) -> ResultSet {
    let mut all = Sums::default();
    for pool in &snapshot.pools {
        all.add(pool);
    }
    let averages = all.averages.finish();
    let mut set = ResultSet::new(&[Column::text("name"), Column::numeric("value")]);
    for (prefix, figures) in [("total_", &all.totals), ("avg_", &averages)] {
        for (name, value) in TOTALS_NAMES.iter().zip(self::figures(figures)) {
            set.push(vec![Value::Text(format!("{prefix}{name}")), value]);
        }
    }
    set
}
