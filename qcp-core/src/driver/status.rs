//! The text `qcp-ctrl status` prints.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use super::shared::Shared;
use crate::config::format_size;

/// Renders the instance's state: address, mode, uptime, clients, pools and arena use.
pub fn render(shared: &Shared) -> String {
    let mut out = String::new();
    let config = shared.config();
    let uptime = shared.started.elapsed().as_secs();
    let clients = shared.clients.len();
    let active = shared.stats.active.load(Relaxed);
    let waiting = shared.stats.waiting.load(Relaxed);
    let idle = clients.saturating_sub(active + waiting);
    let _ = writeln!(out, "listening_address: {}", shared.local_addr);
    let _ = writeln!(out, "relay_mode: {:?}", config.relay_mode);
    let _ = writeln!(
        out,
        "uptime: {}h {:02}m {:02}s",
        uptime / 3600,
        uptime / 60 % 60,
        uptime % 60
    );
    let _ = writeln!(
        out,
        "state: {}",
        if shared.is_shutting_down() {
            "shutting down"
        } else {
            "running"
        }
    );
    let _ = writeln!(
        out,
        "clients: {clients} (active {active}, waiting {waiting}, idle {idle})"
    );
    let _ = writeln!(out, "logins: {}", shared.stats.logins.load(Relaxed));
    let _ = writeln!(
        out,
        "server_connections_opened: {}",
        shared.stats.server_connects.load(Relaxed)
    );
    let mut pools = shared.pools();
    pools.sort_by(|a, b| {
        (&a.pool.key().database, &a.pool.key().user)
            .cmp(&(&b.pool.key().database, &b.pool.key().user))
    });
    let _ = writeln!(out, "pools: {}", pools.len());
    for entry in pools {
        let stats = entry.pool.stats();
        let key = entry.pool.key();
        let _ = writeln!(
            out,
            "  {}/{}: server connections active {}, idle {}; clients waiting {}",
            key.database,
            key.user,
            stats.open.saturating_sub(stats.idle),
            stats.idle,
            stats.waiting
        );
    }
    let arena = shared.arena.stats();
    let chunk = arena.chunk_size as u64;
    let _ = writeln!(
        out,
        "arena: {} chunks of {} ({} in all); in use {} ({}), peak {} ({}), waiting {}, exhausted {} times",
        arena.chunks_count,
        format_size(chunk),
        format_size(chunk * arena.chunks_count as u64),
        arena.in_use,
        format_size(chunk * arena.in_use as u64),
        arena.peak,
        format_size(chunk * arena.peak as u64),
        arena.waiting,
        arena.exhausted,
    );
    let _ = writeln!(
        out,
        "arena_total_acquired: {}",
        format_size(chunk * arena.acquisitions)
    );
    out
}
