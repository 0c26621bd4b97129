use super::*;

fn tcp(peer: &str, tls: bool) -> Transport {
    Transport::Host {
        peer: peer.parse().unwrap(),
        local: "127.0.0.1".parse().unwrap(),
        tls,
    }
}

fn method(
    rules: &HbaRules,
    transport: Transport,
    database: &str,
    user: &str,
) -> Option<(usize, Method)> {
    rules
        .find(&Connection {
            transport,
            database,
            user,
        })
        .map(|rule| (rule.line, rule.method))
}

const FILE: &str = "\
# TYPE  DATABASE  USER      ADDRESS          METHOD
local   all       all                        trust
host    secret    all       all              reject   # nobody, from anywhere
hostssl all       certuser  0.0.0.0/0        cert
hostnossl app,other alice   10.1.0.0/16      md5
host    sameuser  all       samehost         scram-sha-256
host    \"all\"     bob       192.168.1.7 255.255.255.255 trust
host    all       all       ::1/128          scram-sha-256
";

#[test]
fn the_first_matching_rule_decides() {
    let rules = HbaRules::parse(FILE).unwrap();
    assert_eq!(rules.len(), 7);
    assert_eq!(
        method(&rules, Transport::Local, "x", "y"),
        Some((2, Method::Trust))
    );
    // `secret` is refused from anywhere over TCP, whatever comes later.
    assert_eq!(
        method(&rules, tcp("127.0.0.1", false), "secret", "secret"),
        Some((3, Method::Reject))
    );
    // cert only with TLS.
    assert_eq!(
        method(&rules, tcp("10.9.9.9", true), "db", "certuser"),
        Some((4, Method::Cert))
    );
    assert_eq!(
        method(&rules, tcp("10.9.9.9", false), "db", "certuser"),
        None
    );
    // Lists, CIDR, hostnossl.
    assert_eq!(
        method(&rules, tcp("10.1.200.3", false), "other", "alice"),
        Some((5, Method::Md5))
    );
    assert_eq!(
        method(&rules, tcp("10.2.0.1", false), "other", "alice"),
        None
    );
    assert_eq!(
        method(&rules, tcp("10.1.200.3", true), "other", "alice"),
        None
    );
    // sameuser and samehost (the client connected from qcp's own address).
    assert_eq!(
        method(&rules, tcp("127.0.0.1", true), "carol", "carol"),
        Some((6, Method::ScramSha256))
    );
    assert_eq!(
        method(&rules, tcp("127.0.0.2", true), "carol", "carol"),
        None
    );
    assert_eq!(
        method(&rules, tcp("127.0.0.1", true), "dave", "carol"),
        None
    );
    // A quoted "all" is a database named all; a netmask as its own field.
    assert_eq!(
        method(&rules, tcp("192.168.1.7", false), "all", "bob"),
        Some((7, Method::Trust))
    );
    assert_eq!(
        method(&rules, tcp("192.168.1.7", false), "app", "bob"),
        None
    );
    // IPv6, and an IPv4-mapped client against an IPv4 network.
    assert_eq!(
        method(&rules, tcp("::1", false), "db", "u"),
        Some((8, Method::ScramSha256))
    );
    assert_eq!(
        method(&rules, tcp("::ffff:10.1.0.5", false), "app", "alice"),
        Some((5, Method::Md5))
    );
}

#[test]
fn network_prefixes_match_exactly() {
    for (peer, net, bits, expected) in [
        ("10.0.0.1", "10.0.0.0", 8, true),
        ("11.0.0.1", "10.0.0.0", 8, false),
        ("1.2.3.4", "0.0.0.0", 0, true),
        ("1.2.3.4", "1.2.3.4", 32, true),
        ("1.2.3.5", "1.2.3.4", 32, false),
        ("fe80::1", "fe80::", 10, true),
        ("fec0::1", "fe80::", 10, false),
        ("::1", "::1", 128, true),
        ("::2", "::1", 128, false),
        ("::", "::", 0, true),
        ("1.2.3.4", "::1", 128, false),
    ] {
        assert_eq!(
            in_net(peer.parse().unwrap(), net.parse().unwrap(), bits),
            expected,
            "{peer} in {net}/{bits}"
        );
    }
}

#[test]
fn mistakes_name_the_line_and_the_fix() {
    for (text, line, needle) in [
        (
            "host all all 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 ldap\n",
            2,
            "unknown or unsupported method \"ldap\"",
        ),
        (
            "hots all all all trust\n",
            1,
            "unknown connection type \"hots\"",
        ),
        ("host all all\n", 1, "ends before its address"),
        (
            "host all all 127.0.0.1/33 trust\n",
            1,
            "CIDR length must be a number from 0 to 32",
        ),
        (
            "host all all db.example.com trust\n",
            1,
            "host names are not supported",
        ),
        (
            "host all all 127.0.0.1 255.0.255.0 trust\n",
            1,
            "is not a netmask",
        ),
        ("host all all all cert\n", 1, "only on hostssl"),
        ("host all all all password\n", 1, "clear text"),
        ("host all +admins all trust\n", 1, "group membership"),
        ("host all @users all trust\n", 1, "file references"),
        (
            "host all all all trust clientcert=verify-full\n",
            1,
            "options after the method",
        ),
        (
            "host all \"alice all all trust\n",
            1,
            "quoted field is not closed",
        ),
        ("host all a,,b all trust\n", 1, "empty name"),
        ("include other.conf\n", 1, "include directives"),
        ("hostgssenc all all all trust\n", 1, "GSSAPI"),
        ("host all all samenet trust\n", 1, "samenet"),
    ] {
        let error = HbaRules::parse(text).unwrap_err();
        assert_eq!(error.line, line, "{text}: {error}");
        assert!(error.message.contains(needle), "{text}: {error}");
    }
}

#[test]
fn comments_blank_lines_and_quotes() {
    let rules =
        HbaRules::parse("\n   # nothing\n\thost \"my db\",app \"a\"\"b\" all trust # x\n").unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        method(&rules, tcp("1.1.1.1", false), "my db", "a\"b"),
        Some((3, Method::Trust))
    );
    assert_eq!(
        method(&rules, tcp("1.1.1.1", false), "app", "a\"b"),
        Some((3, Method::Trust))
    );
    assert!(HbaRules::parse("# only comments\n").unwrap().is_empty());
}
