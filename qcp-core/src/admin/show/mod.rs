//! Each SHOW table, built from a [`Snapshot`].
//!
//! The columns of the tables PgBouncer also has are PgBouncer 1.25's, name for name, in
//! its order and with its types (`admin/pgbouncer_1_25_columns.txt` records them and the
//! tests compare). Where qcp has no counterpart of a PgBouncer column (cancel-request
//! lists, peers, per-database limits it does not have), the column is kept and shows what
//! PgBouncer shows when the feature is unused: 0, or NULL for an unset text.
//!
//! - `pools.rs`: POOLS, DATABASES, USERS, LISTS;
//! - `sockets.rs`: CLIENTS, SERVERS;
//! - `stats.rs`: STATS, STATS_TOTALS, STATS_AVERAGES, TOTALS;
//! - `instance.rs`: VERSION, CONFIG, MEM, STATE, HELP and qcp's ARENA and
//!   PREPARED_STATEMENTS.

mod instance;
mod pools;
mod sockets;
mod stats;

use super::command::Item;
use super::resultset::ResultSet;
use crate::stats::Snapshot;

pub(super) use instance::help_detail;

/// The table `SHOW item` answers with (for HELP, the command list, one line per row: the
/// console itself answers HELP with a notice).
pub(super) fn table(item: Item, snapshot: &Snapshot) -> ResultSet {
    match item {
        Item::Help => instance::help(),
        Item::Version => instance::version(snapshot),
        Item::Config => instance::config(snapshot),
        Item::Databases => pools::databases(snapshot),
        Item::Pools => pools::pools(snapshot),
        Item::Clients => sockets::clients(snapshot),
        Item::Servers => sockets::servers(snapshot),
        Item::Stats => stats::stats(snapshot),
        Item::StatsTotals => stats::stats_totals(snapshot),
        Item::StatsAverages => stats::stats_averages(snapshot),
        Item::Totals => stats::totals(snapshot),
        Item::Lists => pools::lists(snapshot),
        Item::Users => pools::users(snapshot),
        Item::Mem => instance::mem(snapshot),
        Item::State => instance::state(snapshot),
        Item::Arena => instance::arena(snapshot),
        Item::PreparedStatements => instance::prepared_statements(snapshot),
    }
}
