//! Access rules in pg_hba.conf syntax (`hba_file`), sans-IO: parse the file's text into
//! [`HbaRules`], then find the first rule that matches a connection; its method says how the
//! client proves who it is, or that it is refused.
//!
//! What qcp takes from PostgreSQL's format (see `docs/protocol.md`, "Access rules"):
//! - one rule per line, fields separated by blanks, `#` starts a comment, a field may be
//!   double-quoted (then `all` is a name, not the keyword);
//! - types `local` (Unix-domain socket), `host` (TCP), `hostssl` (TCP with TLS),
//!   `hostnossl` (TCP without TLS);
//! - database and user: comma-separated lists of names, or `all`; a database may also be
//!   `sameuser` (the database named like the user);
//! - address (not for `local`): `all`, `samehost` (the client's address is the one it
//!   connected to), an address with a CIDR length (`10.0.0.0/8`, `::1/128`), or an address
//!   and a netmask as two fields (`127.0.0.1 255.255.255.255`);
//! - methods `trust`, `reject`, `md5`, `scram-sha-256` and `cert` (only on `hostssl`: the
//!   client's verified certificate must name the user in its common name); `password`
//!   (the password in clear text) is refused as a method, since qcp never asks for one;
//! - the first rule that matches decides; when none does, the client is refused.
//!
//! Not supported (a clear error names the line): `+group`, `@file`, `include`, host
//! names, `samenet`, options after the method, `hostgssenc`/`hostnogssenc`.

use std::fmt;
use std::net::IpAddr;

/// How a matching rule says to treat the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// No password asked.
    Trust,
    /// Refused.
    Reject,
    /// md5 challenge.
    Md5,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// A TLS client certificate whose common name is the user.
    Cert,
}

/// How the client reached qcp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A Unix-domain socket.
    Local,
    /// TCP from `peer` to qcp's `local` address, encrypted or not.
    Host {
        /// The client's address.
        peer: IpAddr,
        /// qcp's address the client connected to.
        local: IpAddr,
        /// The connection is under TLS.
        tls: bool,
    },
}

/// A connection asking to log in.
#[derive(Clone, Copy, Debug)]
pub struct Connection<'a> {
    /// How it reached qcp.
    pub transport: Transport,
    /// The database it asks for.
    pub database: &'a str,
    /// The user it logs in as.
    pub user: &'a str,
}

/// The rules of one `hba_file`, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HbaRules {
    rules: Vec<Rule>,
}

/// One line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its line number in the file (from 1).
    pub line: usize,
    kind: Kind,
    databases: Names,
    users: Names,
    address: Address,
    /// What it says to do.
    pub method: Method,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Local,
    Host,
    HostSsl,
    HostNoSsl,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Names {
    All,
    /// Names; for databases, `None` stands for `sameuser`.
    Some(Vec<Option<String>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Address {
    /// `local` rules have none; `all` matches any.
    Any,
    SameHost,
    /// An address and how many leading bits must match.
    Net(IpAddr, u8),
}

/// What is wrong with the file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HbaError {
    /// The line (from 1).
    pub line: usize,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl fmt::Display for HbaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for HbaError {}

impl HbaRules {
    /// Parses the text of an `hba_file`.
    pub fn parse(text: &str) -> Result<HbaRules, HbaError> {
        let mut rules = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index.saturating_add(1);
            let fields = fields(raw).map_err(|message| HbaError { line, message })?;
            if fields.is_empty() {
                continue;
            }
            let rule = rule(line, &fields).map_err(|message| HbaError { line, message })?;
            rules.push(rule);
        }
        Ok(HbaRules { rules })
    }

    /// The first rule that matches `connection`, if any.
    pub fn find(&self, connection: &Connection<'_>) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches(connection))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when the file holds no rule (every client is refused).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Rule {
    fn matches(&self, c: &Connection<'_>) -> bool {
        let kind = match (self.kind, c.transport) {
            (Kind::Local, Transport::Local) => true,
            (Kind::Host, Transport::Host { .. }) => true,
            (Kind::HostSsl, Transport::Host { tls, .. }) => tls,
            (Kind::HostNoSsl, Transport::Host { tls, .. }) => !tls,
            _ => false,
        };
        kind && self.address_matches(c.transport)
            && names_match(&self.databases, c.database, Some(c.user))
            && names_match(&self.users, c.user, None)
    }

    fn address_matches(&self, transport: Transport) -> bool {
        let Transport::Host { peer, local, .. } = transport else {
            return true;
        };
        match self.address {
            Address::Any => true,
            Address::SameHost => peer == local,
            Address::Net(net, bits) => in_net(peer, net, bits),
        }
    }
}

/// `name` is in `names`; `sameuser` (a `None` entry) matches when it equals `user`.
fn names_match(names: &Names, name: &str, user: Option<&str>) -> bool {
    match names {
        Names::All => true,
        Names::Some(list) => list.iter().any(|entry| match entry {
            Some(listed) => listed == name,
            None => user == Some(name),
        }),
    }
}

/// `addr` is within `net`/`bits` (an IPv4 client also matches an IPv4-mapped IPv6 net and
/// the other way round, as the kernel may report either).
fn in_net(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (addr, net, width) = match (canonical(addr), canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let bits = u32::from(bits).min(width);
    let mask = match width.checked_sub(bits) {
        Some(shift) if shift < 128 => (u128::MAX << shift) & width_mask(width),
        _ => 0,
    };
    addr & mask == net & mask
}

fn width_mask(width: u32) -> u128 {
    if width >= 128 {
        u128::MAX
    } else {
        (1u128 << width).wrapping_sub(1)
    }
}

fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// One field of a line, and whether it was quoted.
struct Field {
    text: String,
    quoted: bool,
}

/// Splits a line into fields: blanks separate them, `#` outside quotes ends the line, double
/// quotes keep blanks, commas and `#` in a field (`""` is a quote inside quotes).
fn fields(line: &str) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => return Ok(out),
            Some(_) => {}
        }
        let mut text = String::new();
        let mut quoted = false;
        let mut in_quotes = false;
        while let Some(&c) = chars.peek() {
            if in_quotes {
                chars.next();
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        text.push('"');
                    } else {
                        in_quotes = false;
                    }
                } else {
                    text.push(c);
                }
            } else if c.is_whitespace() || c == '#' {
                break;
            } else if c == '"' {
                chars.next();
                in_quotes = true;
                quoted = true;
            } else {
                chars.next();
                text.push(c);
            }
        }
        if in_quotes {
            return Err("a quoted field is not closed; add the closing \"".to_owned());
        }
        out.push(Field { text, quoted });
    }
}

fn rule(line: usize, fields: &[Field]) -> Result<Rule, String> {
    let mut rest = fields.iter();
    let mut next = |what: &str| {
        rest.next().ok_or_else(|| {
            format!("the rule ends before its {what}; write TYPE DATABASE USER [ADDRESS] METHOD")
        })
    };
    let kind_field = next("type")?;
    let kind = match kind_field.text.as_str() {
        "local" => Kind::Local,
        "host" => Kind::Host,
        "hostssl" => Kind::HostSsl,
        "hostnossl" => Kind::HostNoSsl,
        "hostgssenc" | "hostnogssenc" => {
            return Err(format!(
                "\"{}\" rules need GSSAPI encryption, which qcp does not offer; use host, hostssl or hostnossl",
                kind_field.text
            ))
        }
        "include" | "include_if_exists" | "include_dir" => {
            return Err("include directives are not supported; put the rules in this file".to_owned())
        }
        other => {
            return Err(format!(
                "unknown connection type \"{other}\"; use local, host, hostssl or hostnossl"
            ))
        }
    };
    let databases = names(next("database")?, true)?;
    let users = names(next("user")?, false)?;
    let address = if kind == Kind::Local {
        Address::Any
    } else {
        let field = next("address")?;
        match address(&field.text)? {
            Parsed::Done(address) => address,
            Parsed::NeedsMask(ip) => {
                let mask = next("netmask")?;
                Address::Net(ip, mask_bits(&mask.text)?)
            }
        }
    };
    let method_field = next("method")?;
    let method = match method_field.text.as_str() {
        "trust" => Method::Trust,
        "reject" => Method::Reject,
        "md5" => Method::Md5,
        "scram-sha-256" => Method::ScramSha256,
        "cert" => Method::Cert,
        "password" => {
            return Err(
                "method \"password\" sends the password in clear text, which qcp never asks for; use scram-sha-256 or md5"
                    .to_owned(),
            )
        }
        other => {
            return Err(format!(
                "unknown or unsupported method \"{other}\"; use trust, reject, md5, scram-sha-256 or cert"
            ))
        }
    };
    if method == Method::Cert && kind != Kind::HostSsl {
        return Err("cert authentication works only on hostssl rules (it needs the client's TLS certificate)".to_owned());
    }
    if let Some(option) = rest.next() {
        return Err(format!(
            "options after the method (\"{}\") are not supported; remove them",
            option.text
        ));
    }
    Ok(Rule {
        line,
        kind,
        databases,
        users,
        address,
        method,
    })
}

/// A database or user list: `all`, or comma-separated names (`sameuser` for databases).
fn names(field: &Field, database: bool) -> Result<Names, String> {
    if !field.quoted && field.text == "all" {
        return Ok(Names::All);
    }
    let mut list = Vec::new();
    for name in field.text.split(',') {
        if name.is_empty() {
            return Err("an empty name in a list; remove the extra comma".to_owned());
        }
        if !field.quoted && (name.starts_with('+') || name.starts_with('@')) {
            return Err(format!(
                "\"{name}\": group membership (+) and file references (@) are not supported; list the names"
            ));
        }
        if database && !field.quoted && name == "sameuser" {
            list.push(None);
        } else if !field.quoted
            && (name == "samerole" || name == "samegroup" || name == "replication")
        {
            return Err(format!("\"{name}\" is not supported; list the databases"));
        } else {
            list.push(Some(name.to_owned()));
        }
    }
    Ok(Names::Some(list))
}

enum Parsed {
    Done(Address),
    /// An address without a CIDR length: the netmask is the next field.
    NeedsMask(IpAddr),
}

fn address(text: &str) -> Result<Parsed, String> {
    match text {
        "all" => return Ok(Parsed::Done(Address::Any)),
        "samehost" => return Ok(Parsed::Done(Address::SameHost)),
        "samenet" => {
            return Err("samenet is not supported; write the network as an address and a CIDR length, like 10.0.0.0/8".to_owned())
        }
        _ => {}
    }
    let (ip, bits) = match text.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits)),
        None => (text, None),
    };
    let ip: IpAddr = ip.parse().map_err(|_| {
        format!("\"{text}\" is not an IP address (host names are not supported); write one like 127.0.0.1/32 or ::1/128")
    })?;
    let width: u8 = if ip.is_ipv4() { 32 } else { 128 };
    match bits {
        None => Ok(Parsed::NeedsMask(ip)),
        Some(bits) => match bits.parse::<u8>() {
            Ok(n) if n <= width => Ok(Parsed::Done(Address::Net(ip, n))),
            _ => Err(format!(
                "\"{text}\": the CIDR length must be a number from 0 to {width}"
            )),
        },
    }
}

/// A netmask (`255.255.255.0`) as a prefix length.
fn mask_bits(text: &str) -> Result<u8, String> {
    let invalid = || {
        format!("\"{text}\" is not a netmask; write one like 255.255.255.0, or use a CIDR length on the address")
    };
    let mask: IpAddr = text.parse().map_err(|_| invalid())?;
    let (value, width) = match mask {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32u32),
        IpAddr::V6(v6) => (u128::from(v6), 128u32),
    };
    let ones = value.leading_ones();
    // The ones must be contiguous from the top.
    if value.count_ones() != ones || ones > width {
        return Err(invalid());
    }
    u8::try_from(ones).map_err(|_| invalid())
}

#[cfg(test)]
mod tests;
