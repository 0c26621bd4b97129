//! One console query's text to a [`Command`].
//!
//! The grammar is PgBouncer's: a command word, at most one argument, optional whitespace
//! and one optional `;` at the end; `SET key = value` (or `TO`) apart. Words are matched in
//! any case; an argument is a bare word (letters, digits, `_`) kept as written, or a
//! double-quoted name (`"my-db"`, with `""` for a quote). A SET value may also be a
//! single-quoted string (`''` for a quote).
//!
//! The parser checks each command's arguments (DISABLE needs a database, KILL_CLIENT a
//! number, ...), so the code that later carries the commands out gets typed values.

use crate::errors::{sqlstate, PgError};

/// A parsed console query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Only whitespace and semicolons: answered with EmptyQueryResponse, as PostgreSQL does.
    Empty,
    /// `SHOW <item>`.
    Show(Item),
    /// A command that changes qcp's state.
    Act {
        /// What to do.
        verb: Verb,
        /// What to do it to.
        argument: Argument,
    },
}

/// What `SHOW` can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Item {
    /// The command list.
    Help,
    /// qcp's version.
    Version,
    /// Effective settings.
    Config,
    /// Databases per server.
    Databases,
    /// Pools: clients and server connections by state.
    Pools,
    /// Logged-in clients.
    Clients,
    /// Server connections.
    Servers,
    /// Counters and averages per database.
    Stats,
    /// Counters per database.
    StatsTotals,
    /// Averages per database.
    StatsAverages,
    /// Counters and averages over all pools, one per row.
    Totals,
    /// Object counts.
    Lists,
    /// Configured users.
    Users,
    /// Memory by kind of object.
    Mem,
    /// Active, paused, suspended.
    State,
    /// qcp's traffic memory (qcp only).
    Arena,
    /// Named prepared statements per pool (qcp only).
    PreparedStatements,
}

impl Item {
    /// Every item, grouped as SHOW HELP lists them.
    pub const GROUPS: [&'static [Item]; 4] = [
        &[
            Item::Help,
            Item::Version,
            Item::Config,
            Item::Databases,
            Item::Pools,
            Item::Clients,
            Item::Servers,
            Item::Users,
        ],
        &[
            Item::Stats,
            Item::StatsTotals,
            Item::StatsAverages,
            Item::Totals,
        ],
        &[Item::Lists, Item::Mem, Item::State],
        &[Item::Arena, Item::PreparedStatements],
    ];

    /// Every item, in the order SHOW HELP lists them.
    pub fn all() -> impl Iterator<Item = Item> {
        Item::GROUPS.into_iter().flatten().copied()
    }

    /// The name written after SHOW, upper case.
    pub fn name(self) -> &'static str {
        match self {
            Item::Help => "HELP",
            Item::Version => "VERSION",
            Item::Config => "CONFIG",
            Item::Databases => "DATABASES",
            Item::Pools => "POOLS",
            Item::Clients => "CLIENTS",
            Item::Servers => "SERVERS",
            Item::Stats => "STATS",
            Item::StatsTotals => "STATS_TOTALS",
            Item::StatsAverages => "STATS_AVERAGES",
            Item::Totals => "TOTALS",
            Item::Lists => "LISTS",
            Item::Users => "USERS",
            Item::Mem => "MEM",
            Item::State => "STATE",
            Item::Arena => "ARENA",
            Item::PreparedStatements => "PREPARED_STATEMENTS",
        }
    }

    /// The item called `name`, in any case.
    pub fn from_name(name: &str) -> Option<Item> {
        Item::all().find(|item| item.name().eq_ignore_ascii_case(name))
    }
}

/// PgBouncer's SHOW items qcp has nothing to show for (no peers, no DNS cache, no
/// file-descriptor hand-over): named apart so the answer says "not supported" rather than
/// "unknown".
const PGBOUNCER_ONLY: [&str; 7] = [
    "FDS",
    "PEERS",
    "PEER_POOLS",
    "SOCKETS",
    "ACTIVE_SOCKETS",
    "DNS_HOSTS",
    "DNS_ZONES",
];

/// A command that changes qcp's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `PAUSE [db]`: wait for server connections to be released, then hold new requests.
    Pause,
    /// `RESUME [db]`: undo PAUSE or SUSPEND.
    Resume,
    /// `RELOAD`: read the configuration file again.
    Reload,
    /// `KILL [db]`: close every client and server connection of the database(s).
    Kill,
    /// `KILL_CLIENT id`: close one client.
    KillClient,
    /// `RECONNECT [db]`: replace server connections as they are released.
    Reconnect,
    /// `DISABLE db`: refuse new clients of a database.
    Disable,
    /// `ENABLE db`: undo DISABLE.
    Enable,
    /// `WAIT_CLOSE [db]`: wait until RECONNECT or RELOAD replaced the server connections.
    WaitClose,
    /// `SHUTDOWN [WAIT_FOR_CLIENTS|WAIT_FOR_SERVERS]`.
    Shutdown,
    /// `SUSPEND`: flush and stop reading sockets (for an online restart).
    Suspend,
    /// `SET key = value`.
    Set,
}

impl Verb {
    /// Every verb.
    pub const ALL: [Verb; 12] = [
        Verb::Pause,
        Verb::Resume,
        Verb::Reload,
        Verb::Kill,
        Verb::KillClient,
        Verb::Reconnect,
        Verb::Disable,
        Verb::Enable,
        Verb::WaitClose,
        Verb::Shutdown,
        Verb::Suspend,
        Verb::Set,
    ];

    /// The command word, upper case.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Pause => "PAUSE",
            Verb::Resume => "RESUME",
            Verb::Reload => "RELOAD",
            Verb::Kill => "KILL",
            Verb::KillClient => "KILL_CLIENT",
            Verb::Reconnect => "RECONNECT",
            Verb::Disable => "DISABLE",
            Verb::Enable => "ENABLE",
            Verb::WaitClose => "WAIT_CLOSE",
            Verb::Shutdown => "SHUTDOWN",
            Verb::Suspend => "SUSPEND",
            Verb::Set => "SET",
        }
    }

    fn from_name(name: &str) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|verb| verb.name().eq_ignore_ascii_case(name))
    }
}

/// What an acting command applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Argument {
    /// Nothing: every database for PAUSE, RESUME, KILL, RECONNECT, WAIT_CLOSE; no argument
    /// at all for RELOAD and SUSPEND.
    None,
    /// One database, by the name clients use.
    Database(String),
    /// A client, by the `id` column of SHOW CLIENTS.
    Client(u64),
    /// How to shut down.
    Shutdown(ShutdownMode),
    /// A setting and its new value, unquoted.
    Setting {
        /// The setting's name.
        key: String,
        /// Its new value.
        value: String,
    },
}

/// SHUTDOWN's modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShutdownMode {
    /// `SHUTDOWN`: stop now.
    Immediate,
    /// `SHUTDOWN WAIT_FOR_CLIENTS`: stop accepting, exit when the last client has left.
    WaitForClients,
    /// `SHUTDOWN WAIT_FOR_SERVERS`: pause, exit when no server connection is in use.
    WaitForServers,
}

/// Parses one console query.
pub fn parse(query: &str) -> Result<Command, PgError> {
    if query.chars().all(|c| c.is_whitespace() || c == ';') {
        return Ok(Command::Empty);
    }
    let text = query.trim();
    let text = text.strip_suffix(';').unwrap_or(text).trim_end();
    let (word, rest) = split_word(text);
    if word.is_empty() {
        return Err(invalid(query));
    }
    if word.eq_ignore_ascii_case("SHOW") {
        return show(tokens(rest, query)?).map(Command::Show);
    }
    let Some(verb) = Verb::from_name(word) else {
        return Err(PgError::error(
            sqlstate::SYNTAX_ERROR,
            format!(
                "unknown command \"{}\", SHOW HELP lists the commands",
                excerpt(word)
            ),
        ));
    };
    let argument = if verb == Verb::Set {
        // Any misfit, even a character no token has, gets SET's own message and hint.
        setting(tokens(rest, query).unwrap_or_default(), query)?
    } else {
        argument(verb, tokens(rest, query)?)?
    };
    Ok(Command::Act { verb, argument })
}

/// The item a SHOW names (also `qcp-ctrl show`'s argument).
pub(super) fn item(name: &str) -> Result<Item, PgError> {
    if let Some(item) = Item::from_name(name) {
        return Ok(item);
    }
    if PGBOUNCER_ONLY.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        return Err(PgError::error(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "SHOW {} is PgBouncer's and has no counterpart in qcp",
                name.to_ascii_uppercase()
            ),
        ));
    }
    let known: Vec<&str> = Item::all().map(|i| i.name()).collect();
    Err(PgError::error(
        sqlstate::UNDEFINED_OBJECT,
        format!(
            "unknown SHOW item \"{}\"; the items are {}",
            excerpt(name),
            known.join(", ")
        ),
    ))
}

/// `SHOW` takes exactly one item.
fn show(tokens: Vec<Token>) -> Result<Item, PgError> {
    match tokens.as_slice() {
        [token] => name(token).map_or_else(|| Err(invalid_item()), item),
        [] => Err(PgError::error(
            sqlstate::SYNTAX_ERROR,
            "SHOW needs an item, SHOW HELP lists them",
        )),
        _ => Err(PgError::error(
            sqlstate::SYNTAX_ERROR,
            "SHOW takes one item, SHOW HELP lists them",
        )),
    }
}

/// Checks an acting command's argument against what the command takes.
fn argument(verb: Verb, tokens: Vec<Token>) -> Result<Argument, PgError> {
    let name = match tokens.as_slice() {
        [] => None,
        [token] => Some(
            name(token)
                .ok_or_else(|| invalid_argument(verb))?
                .to_owned(),
        ),
        _ => {
            return Err(syntax(format!(
                "{} takes at most one argument",
                verb.name()
            )))
        }
    };
    match (verb, name) {
        (Verb::Reload | Verb::Suspend, None) => Ok(Argument::None),
        (Verb::Reload | Verb::Suspend, Some(_)) => {
            Err(syntax(format!("{} takes no argument", verb.name())))
        }
        (Verb::Disable | Verb::Enable, None) => {
            Err(syntax(format!("{} needs a database name", verb.name())))
        }
        (Verb::KillClient, id) => match id.as_deref().map(str::parse::<u64>) {
            Some(Ok(id)) => Ok(Argument::Client(id)),
            _ => Err(syntax(
                "KILL_CLIENT needs a client id (the id column of SHOW CLIENTS)",
            )),
        },
        (Verb::Shutdown, None) => Ok(Argument::Shutdown(ShutdownMode::Immediate)),
        (Verb::Shutdown, Some(mode)) => {
            if mode.eq_ignore_ascii_case("WAIT_FOR_CLIENTS") {
                Ok(Argument::Shutdown(ShutdownMode::WaitForClients))
            } else if mode.eq_ignore_ascii_case("WAIT_FOR_SERVERS") {
                Ok(Argument::Shutdown(ShutdownMode::WaitForServers))
            } else {
                Err(syntax(
                    "SHUTDOWN takes no argument, WAIT_FOR_CLIENTS or WAIT_FOR_SERVERS",
                ))
            }
        }
        (_, None) => Ok(Argument::None),
        (_, Some(db)) => Ok(Argument::Database(db)),
    }
}

/// `SET key = value` or `SET key TO value`.
fn setting(tokens: Vec<Token>, query: &str) -> Result<Argument, PgError> {
    let parsed = match tokens.as_slice() {
        [key, separator, value] if is_separator(separator) => name(key).zip(value.text()),
        _ => None,
    };
    match parsed {
        Some((key, value)) if !key.is_empty() => Ok(Argument::Setting {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
        _ => Err(syntax(format!(
            "invalid SET \"{}\": write SET key = value",
            excerpt(query.trim())
        ))
        .with_hint(
            "quote a value with characters other than letters, digits and _: SET key = '1.5 s'",
        )),
    }
}

/// `=` or `TO` between a setting and its value.
fn is_separator(token: &Token) -> bool {
    match token {
        Token::Equals => true,
        Token::Word(word) => word.eq_ignore_ascii_case("TO"),
        _ => false,
    }
}

/// A token that can name something: a word or a double-quoted name.
fn name(token: &Token) -> Option<&str> {
    match token {
        Token::Word(name) | Token::Quoted(name) => Some(name),
        _ => None,
    }
}

/// One piece of a command after its first word.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// Letters, digits and `_`, as written.
    Word(String),
    /// A double-quoted name, unquoted.
    Quoted(String),
    /// A single-quoted string, unquoted.
    Literal(String),
    /// `=`.
    Equals,
}

impl Token {
    /// The text of anything but `=`.
    fn text(&self) -> Option<&str> {
        match self {
            Token::Word(text) | Token::Quoted(text) | Token::Literal(text) => Some(text),
            Token::Equals => None,
        }
    }
}

/// Splits the leading word (letters, digits, `_`) off `text`.
fn split_word(text: &str) -> (&str, &str) {
    let end = text
        .char_indices()
        .find(|&(_, c)| !is_word_char(c))
        .map_or(text.len(), |(i, _)| i);
    text.split_at_checked(end).unwrap_or((text, ""))
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Cuts what follows the command word into tokens; `query` is for the error message.
fn tokens(mut rest: &str, query: &str) -> Result<Vec<Token>, PgError> {
    let mut tokens = Vec::new();
    loop {
        rest = rest.trim_start();
        let Some(first) = rest.chars().next() else {
            return Ok(tokens);
        };
        if is_word_char(first) {
            let (word, after) = split_word(rest);
            tokens.push(Token::Word(word.to_owned()));
            rest = after;
        } else if first == '=' {
            tokens.push(Token::Equals);
            rest = rest.get(1..).unwrap_or("");
        } else if first == '"' || first == '\'' {
            let (text, after) = quoted(rest, first).ok_or_else(|| invalid(query))?;
            tokens.push(if first == '"' {
                Token::Quoted(text)
            } else {
                Token::Literal(text)
            });
            rest = after;
        } else {
            return Err(invalid(query));
        }
    }
}

/// Reads a `quote`-delimited string at the start of `text` (a doubled quote stands for
/// one): its content and what follows it, or `None` if it is not closed.
fn quoted(text: &str, quote: char) -> Option<(String, &str)> {
    let mut content = String::new();
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c != quote {
            content.push(c);
            continue;
        }
        if chars.peek().is_some_and(|&(_, next)| next == quote) {
            content.push(quote);
            chars.next();
            continue;
        }
        // The closing quote is one byte long.
        let after = text.get(i.checked_add(1)?..)?;
        return Some((content, after));
    }
    None
}

/// `SHOW 'pools'` and the like.
fn invalid_item() -> PgError {
    syntax("SHOW takes an item name, SHOW HELP lists them")
}

/// `PAUSE 'db'` and the like.
fn invalid_argument(verb: Verb) -> PgError {
    syntax(format!(
        "{}'s argument is a name: a word, or in double quotes",
        verb.name()
    ))
}

fn syntax(message: impl Into<String>) -> PgError {
    PgError::error(sqlstate::SYNTAX_ERROR, message)
}

/// A query the grammar does not fit at all.
fn invalid(query: &str) -> PgError {
    syntax(format!(
        "invalid command \"{}\", SHOW HELP lists the commands",
        excerpt(query.trim())
    ))
}

/// At most 64 characters of `text`, for messages (a query can be long).
fn excerpt(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push_str("...");
        short
    }
}

#[cfg(test)]
mod tests;
