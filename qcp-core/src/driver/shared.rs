//! State shared by every task of one qcp instance.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use qcp_codec::Limits;

use super::clients::ClientRegistry;
use super::server::{Credentials, ServerConn};
use super::wait_timer::WaitTimer;
use crate::arena::Arena;
use crate::auth::hba::HbaRules;
use crate::auth::{SaltedPasswordCache, ScramSecret, Secret};
use crate::config::{Config, UserConfig};
use crate::errors::{sqlstate, Refusal};
use crate::pool::{Pool, PoolKey, ServerHealth, ServerTable};
use crate::relay::params::Params;
use crate::relay::spellings::Spellings;
use crate::relay::statements::Registry;
use crate::stats::{Averages, LoginOutcome, PoolCounters};
use crate::tls::TlsSetup;

/// A pool and the parameters new clients of it are greeted with.
pub struct PoolEntry {
    /// The server connections.
    /// The server connections (boxed: they move between the pool and clients by pointer,
    /// and an idle client's state keeps no room for one).
    pub pool: Pool<Box<ServerConn>>,
    /// ParameterStatus values of the pool's servers, learnt from the first connection, so
    /// later logins are answered without a server round trip.
    pub greeting: Mutex<Option<Arc<Params>>>,
    /// How the pool's servers spell the values clients asked for (`utf8` is `UTF8`).
    pub spellings: Mutex<Spellings>,
    /// Named prepared statements the pool's clients use (Smart mode).
    pub statements: Arc<Registry>,
    /// What the pool's clients and connections did (sharded by engine thread).
    pub counters: PoolCounters,
    /// Server connections being opened and logged in right now.
    pub opening: AtomicU64,
}

impl PoolEntry {
    /// Gives an idle, healthy connection back to the pool (closing it instead if a reload
    /// or RECONNECT made it surplus).
    pub fn checkin(&self, conn: Box<ServerConn>) {
        let (server, born) = (conn.io.server, conn.io.born);
        if let Some(surplus) = self.pool.checkin(conn, server, born, Instant::now()) {
            surplus.close();
        }
    }

    /// Counts a server connection as being opened until the guard is dropped.
    pub fn opening(&self) -> OpeningGuard<'_> {
        self.opening.fetch_add(1, Relaxed);
        OpeningGuard(&self.opening)
    }
}

/// See [`PoolEntry::opening`].
pub struct OpeningGuard<'a>(&'a AtomicU64);

impl Drop for OpeningGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// A configured user, with what qcp needs to check its clients and log in for them.
pub struct UserEntry {
    /// The role name.
    pub name: String,
    /// Verifier for SCRAM client authentication: the configured secret, or one derived once
    /// at start-up from a plaintext password.
    pub scram: Option<ScramSecret>,
    /// The configured secret.
    pub secret: Option<Secret>,
    /// The ClientKey recovered from a successful SCRAM login, for logging in to servers when
    /// only the SCRAM secret is configured.
    pub client_key: Mutex<Option<[u8; 32]>>,
    /// What qcp logs in to servers with for this user, shared by its clients (set once
    /// complete: for a SCRAM secret, once `client_key` is known).
    pub credentials: Mutex<Option<Arc<Credentials>>>,
}

impl UserEntry {
    /// A user whose secret `auth_query` returned.
    pub fn fetched(name: &str, secret: Secret) -> Self {
        Self::from_config(&UserConfig {
            name: name.to_owned(),
            password: None,
            secret: Some(secret),
        })
    }

    pub(super) fn from_config(user: &UserConfig) -> Self {
        let scram = match &user.secret {
            Some(Secret::Scram(secret)) => Some(secret.clone()),
            Some(Secret::Plain(password)) => Some(ScramSecret::generate(password)),
            _ => None,
        };
        UserEntry {
            name: user.name.clone(),
            scram,
            secret: user.secret.clone(),
            client_key: Mutex::new(None),
            credentials: Mutex::new(None),
        }
    }
}

/// Counters for `qcp-ctrl status`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Clients that hold a server connection.
    pub active: AtomicUsize,
    /// Clients waiting for a server connection or an arena chunk.
    pub waiting: AtomicUsize,
    /// Logins completed since start-up.
    pub logins: AtomicU64,
    /// Clients refused (bad password, unknown database, limits...).
    pub refused: AtomicU64,
    /// Server connections opened since start-up.
    pub server_connects: AtomicU64,
    /// Times the arena had no chunk for a request within the wait timeout.
    pub arena_timeouts: AtomicU64,
    /// Logins that ended, by outcome (indexed like [`LoginOutcome::ALL`]).
    pub login_outcomes: [AtomicU64; LoginOutcome::ALL.len()],
    /// Clients in the middle of their login.
    pub logging_in: AtomicU64,
    /// Errors qcp itself sent clients, by SQLSTATE (rare: a lock is fine).
    pub errors: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// Counts a login that ended this way.
    pub fn login_ended(&self, outcome: LoginOutcome) {
        let index = LoginOutcome::ALL.iter().position(|o| *o == outcome);
        if let Some(counter) = index.and_then(|i| self.login_outcomes.get(i)) {
            counter.fetch_add(1, Relaxed);
        }
    }

    /// Counts an error sent to a client.
    pub fn error_sent(&self, sqlstate: &str) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        *errors.entry(sqlstate.to_owned()).or_default() += 1;
    }

    /// Counts a refusal's error, if the client is told one.
    pub fn refusal_sent(&self, refusal: &Refusal) {
        if let Some(code) = refusal.sqlstate() {
            self.error_sent(&code);
        }
    }
}

/// The outcome a refused login is counted under.
pub fn login_outcome(refusal: &Refusal) -> LoginOutcome {
    match refusal.sqlstate().as_deref() {
        None => LoginOutcome::Protocol,
        Some(sqlstate::INVALID_PASSWORD) => LoginOutcome::BadPassword,
        Some(sqlstate::INVALID_CATALOG_NAME) => LoginOutcome::UnknownDatabase,
        Some(sqlstate::TOO_MANY_CONNECTIONS) | Some(sqlstate::CANNOT_CONNECT_NOW) => {
            LoginOutcome::TooMany
        }
        Some(sqlstate::PROTOCOL_VIOLATION) => LoginOutcome::Protocol,
        Some(_) => LoginOutcome::Other,
    }
}

/// Configured users by name.
pub type Users = HashMap<String, Arc<UserEntry>>;

/// Everything the tasks of one instance share.
pub struct Shared {
    /// The configuration it runs with (replaced as a whole by a reload; see `reload.rs`).
    config: ArcSwap<Config>,
    /// Traffic memory.
    pub arena: Arc<Arena>,
    /// Back-off state per server.
    pub health: Arc<ServerHealth>,
    /// The servers by stable id (a reload retires changed and removed ones).
    servers: ArcSwap<ServerTable>,
    /// Pools by (database, user), created on first use.
    pools: Mutex<HashMap<PoolKey, Arc<PoolEntry>>>,
    /// Configured users by name (replaced as a whole by a reload).
    users: ArcSwap<Users>,
    /// SCRAM salted-password cache for server logins.
    pub scram_cache: Arc<SaltedPasswordCache>,
    /// Connected clients.
    pub clients: ClientRegistry,
    /// Counters.
    pub stats: Stats,
    /// Ends the waits of clients queued for a server connection at `timeouts.query_wait`.
    pub wait_timer: WaitTimer,
    /// Set once a graceful shutdown has begun.
    shutting_down: AtomicBool,
    /// Set when the shutdown grace period is over: every client is closed now.
    forced: AtomicBool,
    /// Dropped when a shutdown begins, which wakes every `shutdown_requested` future.
    shutdown_tx: Mutex<Option<async_std::channel::Sender<()>>>,
    shutdown_rx: async_std::channel::Receiver<()>,
    /// When the instance started.
    pub started: Instant,
    /// The same instant on the wall clock.
    pub started_wall: std::time::SystemTime,
    /// The address clients connect to.
    pub local_addr: super::io::LocalAddr,
    /// A secret used to answer unknown users with a SCRAM exchange that looks real.
    pub mock_key: [u8; 32],
    /// TLS configurations (replaced as a whole when certificates are re-read).
    tls: RwLock<Arc<TlsSetup>>,
    /// One permit per login in progress: logins may hold at most this share of the arena,
    /// so clients that never finish their start-up cannot take the chunks established
    /// clients need for their traffic.
    pub login_slots: Arc<async_lock::Semaphore>,
    /// The console's `avg_*` figures, per pool, over the last `stats_period`.
    pub averages: Averages<PoolKey>,
    /// Bytes of first packets being read before their logins get a chunk (see
    /// `io/first_packet.rs`): at most what the login slots' chunks hold.
    pub pre_login: super::io::PreLoginBudget,
    /// What `auth_query` returned, kept for `auth_cache_ttl`.
    pub auth_cache: super::auth_query::AuthCache,
    /// The `hba_file` rules (`None`: no file; every client may try `auth_method`). Replaced
    /// as a whole when the file is read again.
    hba: RwLock<Option<Arc<HbaRules>>>,
    /// The file the configuration was read from, which a reload reads again.
    config_file: Mutex<Option<std::path::PathBuf>>,
    /// Applies the logging settings of a reloaded configuration (set by the program that
    /// installed the log subscriber).
    log_hook: Mutex<Option<Arc<super::reload::LogHook>>>,
    /// One reload at a time.
    pub(super) reloading: async_lock::Mutex<()>,
    /// What PAUSE, DISABLE, RECONNECT and KILL set per database.
    pub controls: super::db_controls::DbControls,
    /// SHUTDOWN WAIT_FOR_CLIENTS: a shutdown that lets every client finish on its own.
    wait_for_clients: AtomicBool,
    /// Dropped by `force_close`, which wakes every `forced_requested` future.
    forced_tx: Mutex<Option<async_std::channel::Sender<()>>>,
    forced_rx: async_std::channel::Receiver<()>,
}

/// The share of the arena's chunks logins in progress may hold: a quarter (at least one).
pub fn login_slots(chunks_count: usize) -> usize {
    (chunks_count / 4).max(1)
}

impl Shared {
    /// Builds the shared state; the arena is allocated here, once.
    pub fn new(
        config: Config,
        tls: TlsSetup,
        hba: Option<HbaRules>,
        local_addr: super::io::LocalAddr,
    ) -> Arc<Self> {
        let arena = Arena::new(config.arena.chunk_size, config.arena.chunks_count);
        let servers = ServerTable::new(&config.servers);
        let health = Arc::new(ServerHealth::new(
            servers.ids(),
            config.timeouts.server_login_retry,
        ));
        let users = config
            .users
            .iter()
            .map(|u| (u.name.clone(), Arc::new(UserEntry::from_config(u))))
            .collect();
        let mock_key = rand::random();
        let (shutdown_tx, shutdown_rx) = async_std::channel::bounded(1);
        let (forced_tx, forced_rx) = async_std::channel::bounded(1);
        Arc::new(Shared {
            arena,
            health,
            servers: ArcSwap::from_pointee(servers),
            pools: Mutex::new(HashMap::new()),
            users: ArcSwap::from_pointee(users),
            wait_timer: WaitTimer::default(),
            scram_cache: Arc::new(SaltedPasswordCache::new()),
            clients: ClientRegistry::default(),
            stats: Stats::default(),
            shutting_down: AtomicBool::new(false),
            forced: AtomicBool::new(false),
            shutdown_tx: Mutex::new(Some(shutdown_tx)),
            shutdown_rx,
            started: Instant::now(),
            started_wall: std::time::SystemTime::now(),
            local_addr,
            mock_key,
            tls: RwLock::new(Arc::new(tls)),
            login_slots: Arc::new(async_lock::Semaphore::new(login_slots(
                config.arena.chunks_count,
            ))),
            averages: Averages::default(),
            hba: RwLock::new(hba.map(Arc::new)),
            auth_cache: Default::default(),
            pre_login: super::io::PreLoginBudget::new(
                login_slots(config.arena.chunks_count).saturating_mul(config.arena.chunk_size),
            ),
            config_file: Mutex::new(None),
            log_hook: Mutex::new(None),
            reloading: async_lock::Mutex::new(()),
            controls: Default::default(),
            wait_for_clients: AtomicBool::new(false),
            forced_tx: Mutex::new(Some(forced_tx)),
            forced_rx,
            config: ArcSwap::from_pointee(config),
        })
    }

    /// The configuration in force now. Cheap (no lock, no reference count): read it where a
    /// setting is used rather than keeping a copy, so that a reload reaches every user.
    #[inline]
    pub fn config(&self) -> arc_swap::Guard<Arc<Config>> {
        self.config.load()
    }

    /// [`Shared::config`] as a reference of its own, to keep across waits.
    pub fn config_full(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Message size limits for the codec, from `limits.max_message_size`.
    pub fn limits(&self) -> Limits {
        Limits::new(
            Limits::POSTGRES_STARTUP,
            self.config().limits.max_message_size,
        )
    }

    /// The configured users now (a snapshot: a login keeps the one it started with).
    pub fn users(&self) -> Arc<Users> {
        self.users.load_full()
    }

    /// The server with stable id `id`, `None` once a reload removed or changed it.
    pub fn server(&self, id: usize) -> Option<crate::config::ServerConfig> {
        self.servers.load().get(id).cloned()
    }

    /// How many servers are configured now.
    pub fn server_count(&self) -> usize {
        self.servers.load().live().count()
    }

    /// The servers now, by stable id.
    pub fn servers(&self) -> Arc<ServerTable> {
        self.servers.load_full()
    }

    /// Records the file the configuration came from, which `reload` reads again.
    pub fn set_config_file(&self, path: std::path::PathBuf) {
        *self.config_file.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
    }

    /// See [`Shared::set_config_file`].
    pub fn config_file(&self) -> Option<std::path::PathBuf> {
        self.config_file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets what applies `log_level`, `log_output` and `log_format` on a reload.
    pub fn set_log_hook(&self, hook: Arc<super::reload::LogHook>) {
        *self.log_hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// See [`Shared::set_log_hook`].
    pub(super) fn log_hook(&self) -> Option<Arc<super::reload::LogHook>> {
        self.log_hook
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts a reloaded configuration in force (see `reload.rs`, which checked it).
    pub(super) fn install(&self, config: Config, servers: ServerTable, users: Users) {
        self.health.resize(servers.ids());
        self.health
            .set_retry_after(config.timeouts.server_login_retry);
        self.users.store(Arc::new(users));
        self.servers.store(Arc::new(servers));
        self.config.store(Arc::new(config));
    }

    /// Replaces the TLS configurations and access rules (a reload checked them already).
    pub(super) fn install_files(&self, tls: TlsSetup, hba: Option<HbaRules>) {
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tls);
        *self.hba.write().unwrap_or_else(|p| p.into_inner()) = hba.map(Arc::new);
    }

    /// Takes the pools out of the list whose database no server serves any more: new
    /// logins to it are refused, and the clients it has keep their pool until they leave.
    pub(super) fn forget_pools(&self, gone: impl Fn(&PoolKey) -> bool) {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| !gone(key));
    }

    /// Reads the TLS files again; on success new connections use them (existing ones keep
    /// their own), on an error the previous ones stay.
    pub fn reload_tls(&self) -> Result<(), crate::tls::TlsError> {
        let setup = TlsSetup::load(&self.config())?.with_ids(self.servers().order().to_vec());
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(setup);
        Ok(())
    }

    /// A chunk to read a server connection's replies into (a login, a parameter sync, an
    /// auth_query), waited for up to `timeouts.query_wait`; `None` when none came in time.
    /// It draws on the arena's reserve: the connection is already someone's.
    pub async fn server_inbox(&self) -> Option<super::io::Inbox> {
        super::io::Inbox::acquire(
            &self.arena,
            crate::arena::Priority::Linked,
            self.config().timeouts.query_wait,
        )
        .await
        .ok()
    }

    /// Reads the `hba_file` again; on an error the previous rules stay.
    pub fn reload_hba(&self) -> Result<(), String> {
        let rules = self.config().load_hba()?;
        *self.hba.write().unwrap_or_else(|p| p.into_inner()) = rules.map(Arc::new);
        Ok(())
    }

    /// The access rules new logins are checked against.
    pub fn hba(&self) -> Option<Arc<HbaRules>> {
        self.hba.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The TLS configurations new connections use.
    pub fn tls(&self) -> Arc<TlsSetup> {
        Arc::clone(&self.tls.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The pool for `key`, created on first use; `None` if no configured server serves the
    /// database.
    pub fn pool(&self, key: &PoolKey) -> Option<Arc<PoolEntry>> {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = pools.get(key) {
            return Some(Arc::clone(entry));
        }
        let servers = self.servers.load().serving(&key.database);
        if servers.is_empty() {
            return None;
        }
        let entry = Arc::new(PoolEntry {
            pool: Pool::new(key.clone(), servers, Arc::clone(&self.health)),
            greeting: Mutex::new(None),
            spellings: Mutex::default(),
            statements: Arc::default(),
            counters: PoolCounters::new(self.config().worker_threads),
            opening: AtomicU64::new(0),
        });
        if self.controls.is_paused(&key.database) {
            entry.pool.pause();
        }
        pools.insert(key.clone(), Arc::clone(&entry));
        Some(entry)
    }

    /// Removes `entry` from the pool list if it never served a client (no greeting learnt)
    /// and holds no connection; a later client creates it afresh.
    pub fn forget_unused_pool(&self, entry: &PoolEntry) {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let unused = entry
            .greeting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
            && entry.pool.stats() == crate::pool::PoolStats::default();
        if unused {
            pools.remove(entry.pool.key());
        }
    }

    /// Every pool created so far.
    pub fn pools(&self) -> Vec<Arc<PoolEntry>> {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Starts a graceful shutdown: new work is refused and idle clients are told to leave.
    pub fn begin_shutdown(&self) {
        if !self
            .shutting_down
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            // The listener is dropped as this wakes `supervise`.
            self.shutdown_tx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            self.clients.wake_all();
        }
    }

    /// SHUTDOWN WAIT_FOR_CLIENTS: stops accepting clients, and lets those connected work on
    /// until each leaves of its own accord (no grace period, nobody told to go).
    pub fn begin_shutdown_waiting_for_clients(&self) {
        self.wait_for_clients
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.begin_shutdown();
    }

    /// True during a shutdown that waits for clients to leave on their own.
    pub fn waits_for_clients(&self) -> bool {
        self.wait_for_clients
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// True once clients are to leave at their next idle point: a shutdown has begun, and
    /// not one that waits for them.
    pub fn is_draining(&self) -> bool {
        self.is_shutting_down() && !self.waits_for_clients()
    }

    /// Completes once a shutdown has begun.
    pub fn shutdown_requested(&self) -> impl std::future::Future<Output = ()> + 'static {
        let receiver = self.shutdown_rx.clone();
        async move {
            let _ = receiver.recv().await;
        }
    }

    /// Ends the grace period: every client is closed now, busy or not.
    pub fn force_close(&self) {
        self.forced.store(true, std::sync::atomic::Ordering::SeqCst);
        self.forced_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.clients.wake_all();
    }

    /// Completes once [`Shared::force_close`] was called.
    pub fn forced_requested(&self) -> impl std::future::Future<Output = ()> + 'static {
        let receiver = self.forced_rx.clone();
        async move {
            let _ = receiver.recv().await;
        }
    }

    /// True once the grace period is over.
    pub fn is_forced(&self) -> bool {
        self.forced.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// True once a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Now, in µs since the instance started (at least 1, so 0 can mean "not set"): the
    /// statistics' clock.
    pub fn micros_now(&self) -> u64 {
        self.micros_at(Instant::now())
    }

    /// `at` in µs since the instance started (at least 1); each relay thread turns the
    /// instant it woke up at into this once per wake-up.
    #[inline]
    pub fn micros_at(&self, at: Instant) -> u64 {
        let micros = at.saturating_duration_since(self.started).as_micros();
        u64::try_from(micros).unwrap_or(u64::MAX).max(1)
    }

    /// The wall-clock time of `micros` µs since the instance started.
    pub fn wall_clock(&self, micros: u64) -> std::time::SystemTime {
        self.started_wall + std::time::Duration::from_micros(micros)
    }

    /// Counts an event.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}
