//! Server names as operators type them: `HOST:PORT` (the server in every hostgroup it is in) or
//! `HOSTGROUP/HOST:PORT` (one row of `mysql_servers`). IPv6 hosts go in brackets: `[::1]:3306`.

use std::fmt;
use std::str::FromStr;

use super::error::InputError;

/// One server, optionally narrowed to one hostgroup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerTarget {
    pub hostgroup: Option<u32>,
    pub host: String,
    pub port: u16,
}

impl ServerTarget {
    pub fn new(hostgroup: Option<u32>, host: &str, port: u16) -> ServerTarget {
        ServerTarget {
            hostgroup,
            host: host.to_owned(),
            port,
        }
    }

    /// Whether a `mysql_servers` row is this server (in the hostgroup named, or any).
    pub fn names(&self, hostgroup: u32, host: &str, port: u16) -> bool {
        self.host == host && self.port == port && self.hostgroup.is_none_or(|hg| hg == hostgroup)
    }

    /// The hostgroups where this server is ONLINE and no other server is: taking it out would
    /// stop their traffic.
    pub fn last_online_in(&self, servers: &[super::ServerRow]) -> Vec<u32> {
        use super::ServerStatus;
        servers
            .iter()
            .filter(|s| {
                self.names(s.hostgroup_id, &s.hostname, s.port) && s.status == ServerStatus::Online
            })
            .filter(|s| {
                !servers.iter().any(|o| {
                    o.hostgroup_id == s.hostgroup_id
                        && !self.names(o.hostgroup_id, &o.hostname, o.port)
                        && o.status == ServerStatus::Online
                })
            })
            .map(|s| s.hostgroup_id)
            .collect()
    }

    /// `HOST:PORT`, with brackets around an IPv6 host.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ServerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hostgroup {
            Some(hg) => write!(f, "{hg}/{}", self.address()),
            None => f.write_str(&self.address()),
        }
    }
}

fn bad(input: &str, problem: impl Into<String>) -> InputError {
    InputError::ServerName {
        input: input.chars().filter(|c| !c.is_control()).take(80).collect(),
        problem: problem.into(),
    }
}

/// Host names the admin tables can hold: DNS names, IPv4 and IPv6 literals. Anything else is
/// refused here so a host never needs escaping in SQL.
fn valid_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')
}

impl FromStr for ServerTarget {
    type Err = InputError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        let (hostgroup, rest) = match s.split_once('/') {
            Some((hg, rest)) => {
                let hg = hg
                    .parse::<u32>()
                    .map_err(|_| bad(input, format!("hostgroup '{hg}' is not a number")))?;
                (Some(hg), rest)
            }
            None => (None, s),
        };
        let (host, port) = if let Some(after) = rest.strip_prefix('[') {
            let (host, tail) = after
                .split_once(']')
                .ok_or_else(|| bad(input, "missing ']' after an IPv6 address"))?;
            let port = tail
                .strip_prefix(':')
                .ok_or_else(|| bad(input, "missing ':PORT' after the address"))?;
            (host, port)
        } else {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad(input, "missing ':PORT'"))?;
            if host.contains(':') {
                return Err(bad(
                    input,
                    "put an IPv6 address in brackets, e.g. [::1]:3306",
                ));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(bad(input, "empty host"));
        }
        if let Some(c) = host.chars().find(|c| !valid_host_char(*c)) {
            return Err(bad(
                input,
                format!("character {c:?} is not allowed in a host"),
            ));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                bad(
                    input,
                    format!("port '{port}' is not a number from 1 to 65535"),
                )
            })?;
        Ok(ServerTarget::new(hostgroup, host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_ipv6() {
        assert_eq!(
            "db1:3306".parse::<ServerTarget>(),
            Ok(ServerTarget::new(None, "db1", 3306))
        );
        assert_eq!(
            "10/10.0.0.5:3307".parse::<ServerTarget>(),
            Ok(ServerTarget::new(Some(10), "10.0.0.5", 3307))
        );
        let v6: ServerTarget = "20/[fd00::1]:3306".parse().unwrap();
        assert_eq!(v6.host, "fd00::1");
        assert_eq!(v6.to_string(), "20/[fd00::1]:3306");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases = [
            ("db1", "missing ':PORT'"),
            ("x/db1:3306", "hostgroup 'x'"),
            ("db1:0", "port '0'"),
            ("db1:99999", "port '99999'"),
            (":3306", "empty host"),
            ("db'1:3306", "not allowed"),
            ("fd00::1:3306", "brackets"),
            ("[fd00::1:3306", "']'"),
        ];
        for (input, expected) in cases {
            let err = input.parse::<ServerTarget>().unwrap_err().to_string();
            assert!(err.contains(expected), "{input}: {err}");
            assert!(err.contains("HOST:PORT or HOSTGROUP/HOST:PORT"), "{err}");
        }
    }
}
