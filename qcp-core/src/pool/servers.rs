//! The configured servers under ids that stay the same across reloads.
//!
//! A server connection remembers the id of the server it was opened to, and the pools count
//! open connections per id. A reload keeps the id of a server whose connection settings
//! (address, databases, TLS) are unchanged, even if its `pool_size` changed or it moved in
//! the list; a server that is new or whose connection settings changed gets a new id, and
//! the old id is retired: its connections are closed when they are next released, never
//! handed to another client.

use crate::config::ServerConfig;

/// The servers of the running configuration, by stable id.
#[derive(Clone, Debug, Default)]
pub struct ServerTable {
    /// Indexed by id; `None`: retired by a reload.
    slots: Vec<Option<ServerConfig>>,
    /// The id of each server of the configuration, in the file's order.
    order: Vec<usize>,
}

impl ServerTable {
    /// The servers of a configuration read at start-up: ids 0, 1, ... in file order.
    pub fn new(servers: &[ServerConfig]) -> Self {
        ServerTable {
            slots: servers.iter().cloned().map(Some).collect(),
            order: (0..servers.len()).collect(),
        }
    }

    /// The table for a reloaded list of servers: unchanged servers keep their ids, the
    /// others get new ones. Also returns the ids retired.
    pub fn update(&self, servers: &[ServerConfig]) -> (ServerTable, Vec<usize>) {
        let mut slots: Vec<Option<ServerConfig>> = vec![None; self.slots.len()];
        let mut order = Vec::with_capacity(servers.len());
        let mut next_id = self.slots.len();
        let mut added = Vec::new();
        for server in servers {
            let kept = self.slots.iter().enumerate().position(|(id, old)| {
                old.as_ref()
                    .is_some_and(|old| same_connections(old, server))
                    && slots.get(id).is_some_and(Option::is_none)
            });
            match kept.and_then(|id| slots.get_mut(id).map(|slot| (id, slot))) {
                Some((id, slot)) => {
                    *slot = Some(server.clone());
                    order.push(id);
                }
                None => {
                    added.push(server.clone());
                    order.push(next_id);
                    next_id = next_id.saturating_add(1);
                }
            }
        }
        let retired = self
            .slots
            .iter()
            .zip(&slots)
            .enumerate()
            .filter(|(_, (old, new))| old.is_some() && new.is_none())
            .map(|(id, _)| id)
            .collect();
        slots.extend(added.into_iter().map(Some));
        (ServerTable { slots, order }, retired)
    }

    /// The id of each server of the configuration, in the file's order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The server with id `id`, unless it was retired.
    pub fn get(&self, id: usize) -> Option<&ServerConfig> {
        self.slots.get(id).and_then(Option::as_ref)
    }

    /// How many ids were ever given (retired ones included).
    pub fn ids(&self) -> usize {
        self.slots.len()
    }

    /// The servers in force, with their ids.
    pub fn live(&self) -> impl Iterator<Item = (usize, &ServerConfig)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(id, slot)| slot.as_ref().map(|server| (id, server)))
    }

    /// (id, `pool_size`) of each server that serves `database`.
    pub fn serving(&self, database: &str) -> Vec<(usize, u32)> {
        self.live()
            .filter(|(_, server)| server.serves(database))
            .map(|(id, server)| (id, server.pool_size))
            .collect()
    }
}

/// Whether connections opened to `old` are good for `new`: everything but the pool size
/// is the same.
fn same_connections(old: &ServerConfig, new: &ServerConfig) -> bool {
    old.address == new.address && old.databases == new.databases && old.tls == new.tls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(address: &str, pool_size: u32) -> ServerConfig {
        ServerConfig {
            address: address.to_owned(),
            pool_size,
            databases: Vec::new(),
            tls: Default::default(),
        }
    }

    #[test]
    fn unchanged_servers_keep_their_ids_and_new_ones_are_appended() {
        let table = ServerTable::new(&[server("a:1", 5), server("b:1", 5)]);
        let (next, retired) = table.update(&[server("b:1", 9), server("c:1", 1)]);
        assert_eq!(retired, vec![0]);
        assert!(next.get(0).is_none());
        assert_eq!(next.get(1).map(|s| s.pool_size), Some(9));
        assert_eq!(next.get(2).map(|s| s.address.as_str()), Some("c:1"));
        assert_eq!(next.ids(), 3);
        assert_eq!(next.order(), &[1, 2]);
        assert_eq!(next.serving("db"), vec![(1, 9), (2, 1)]);
    }

    #[test]
    fn a_server_whose_databases_changed_gets_a_new_id() {
        let table = ServerTable::new(&[server("a:1", 5)]);
        let mut changed = server("a:1", 5);
        changed.databases = vec!["app".into()];
        let (next, retired) = table.update(&[changed]);
        assert_eq!(retired, vec![0]);
        assert_eq!(next.serving("app"), vec![(1, 5)]);
        assert!(next.serving("other").is_empty());
    }

    #[test]
    fn the_same_server_listed_twice_is_two_servers() {
        let table = ServerTable::new(&[server("a:1", 5), server("a:1", 5)]);
        let (next, retired) = table.update(&[server("a:1", 5), server("a:1", 5)]);
        assert!(retired.is_empty());
        assert_eq!(next.serving("db"), vec![(0, 5), (1, 5)]);
        let (fewer, retired) = next.update(&[server("a:1", 5)]);
        assert_eq!(retired, vec![1]);
        assert_eq!(fewer.serving("db"), vec![(0, 5)]);
    }
}
