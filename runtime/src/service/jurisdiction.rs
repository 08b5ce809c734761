//! Rule 7: access only from the EEA or a country with an EU adequacy decision. The operator
//! gives an address → country table (CSV of CIDR ranges) and, optionally, the allowed list;
//! a request from an address the table does not know, or from a country not on the list, is
//! refused. Behind a reverse proxy, `X-Forwarded-For` (or `Forwarded`) is honoured only when
//! the direct peer is a configured trusted proxy.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

/// The default allowed list: the EEA (the 27 EU members, Iceland, Liechtenstein, Norway) and
/// the countries and territories with an EU adequacy decision under the GDPR (Andorra,
/// Argentina, Canada, Faroe Islands, Guernsey, Israel, Isle of Man, Japan, Jersey, New Zealand,
/// Republic of Korea, Switzerland, United Kingdom, Uruguay). The United States' decision covers
/// only organisations certified under the Data Privacy Framework, not a researcher's location,
/// so it is left out; an operator may add it, or anything else, with `--allowed-countries`.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT",
    "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "AD", "AR", "CA", "FO", "GG", "IL", "IM", "JP",
    "JE", "NZ", "KR", "CH", "GB", "UY",
];

/// A problem with the country table or the allowed list, naming the file and line.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct JurisdictionError {
    /// The file.
    pub file: PathBuf,
    /// The 1-based line (0 when the file could not be read).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Address ranges and their countries, sorted for lookup.
#[derive(Debug, Clone, Default)]
pub struct CountryTable {
    /// (first address, last address, ISO 3166 alpha-2 code), sorted, not overlapping.
    ranges: Vec<(u128, u128, String)>,
}

/// Addresses as one number line: IPv4 mapped into IPv6.
fn number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn country_code(text: &str) -> Option<String> {
    let code = text.trim().to_ascii_uppercase();
    (code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase())).then_some(code)
}

impl CountryTable {
    /// Reads a CSV of `network,country` lines (`192.0.2.0/24,NL`); a `network,…` header line and
    /// `#` comments are skipped. Overlapping ranges are refused.
    pub fn load(file: &Path) -> Result<CountryTable, JurisdictionError> {
        let error = |line: usize, message: String| JurisdictionError { file: file.to_path_buf(), line, message };
        let text = std::fs::read_to_string(file).map_err(|e| error(0, format!("cannot read: {e}")))?;
        let mut ranges = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("network,") {
                continue;
            }
            let (network, country) =
                line.split_once(',').ok_or_else(|| error(line_no, "expected `network,country`".into()))?;
            let net: IpNet = network.trim().parse().map_err(|e| error(line_no, format!("{network:?}: {e}")))?;
            let country = country_code(country)
                .ok_or_else(|| error(line_no, format!("{country:?} is not a two-letter country code")))?;
            let (first, last) = (number(net.network()), number(net.broadcast()));
            ranges.push((first, last, country, line_no));
        }
        ranges.sort();
        for pair in ranges.windows(2) {
            if pair[1].0 <= pair[0].1 {
                return Err(error(pair[1].3, format!("overlaps the range on line {}", pair[0].3)));
            }
        }
        Ok(CountryTable {
            ranges: ranges.into_iter().map(|(first, last, country, _)| (first, last, country)).collect(),
        })
    }

    /// The country of `ip`, if the table knows it.
    pub fn country(&self, ip: IpAddr) -> Option<&str> {
        let n = number(ip);
        let index = self.ranges.partition_point(|(first, _, _)| *first <= n).checked_sub(1)?;
        let (_, last, country) = &self.ranges[index];
        (n <= *last).then_some(country.as_str())
    }
}

/// Reads an allowed list: one country code per line, `#` comments allowed.
pub fn load_allowed(file: &Path) -> Result<BTreeSet<String>, JurisdictionError> {
    let text = std::fs::read_to_string(file).map_err(|e| JurisdictionError {
        file: file.to_path_buf(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    let mut allowed = BTreeSet::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let code = country_code(line).ok_or_else(|| JurisdictionError {
            file: file.to_path_buf(),
            line: index + 1,
            message: format!("{line:?} is not a two-letter country code"),
        })?;
        allowed.insert(code);
    }
    Ok(allowed)
}

/// Where requests may come from.
#[derive(Debug, Clone)]
pub struct Jurisdiction {
    /// Address → country.
    pub table: CountryTable,
    /// Countries allowed.
    pub allowed: BTreeSet<String>,
    /// Direct peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

/// Why a request's origin was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The table does not know the address.
    UnknownAddress(IpAddr),
    /// The address is in a country not on the allowed list.
    Country(IpAddr, String),
    /// A forwarding header named a hop that is not an address (the hop, cut to 64 characters).
    Forwarded(String),
}

impl Jurisdiction {
    /// The client's address: the direct peer, or — when the peer is a trusted proxy — the
    /// right-most hop that is not itself a trusted proxy, over every `X-Forwarded-For` line in
    /// order (a proxy that appends its own line cannot be skipped), else every `Forwarded` line.
    /// A hop that does not parse as an address (`unknown`, an obfuscated name, garbage) is
    /// refused, not skipped: nobody may hide behind it.
    pub fn client(&self, peer: IpAddr, forwarded: &Forwarded<'_>) -> Result<IpAddr, Refusal> {
        if !self.trusted_proxies.contains(&peer) {
            return Ok(peer);
        }
        let hops: Vec<&str> = if forwarded.x_forwarded_for.is_empty() {
            forwarded.forwarded.iter().flat_map(|line| line.split(',')).map(forwarded_for_element).collect()
        } else {
            forwarded.x_forwarded_for.iter().flat_map(|line| line.split(',')).map(str::trim).collect()
        };
        for hop in hops.into_iter().rev() {
            let ip = parse_hop(hop).ok_or_else(|| Refusal::Forwarded(hop.chars().take(64).collect()))?;
            if !self.trusted_proxies.contains(&ip) {
                return Ok(ip);
            }
        }
        Ok(peer)
    }

    /// Whether a request from `peer` (with its forwarding headers) may be served.
    pub fn check(&self, peer: IpAddr, forwarded: &Forwarded<'_>) -> Result<String, Refusal> {
        let client = self.client(peer, forwarded)?;
        let country = self.table.country(client).ok_or(Refusal::UnknownAddress(client))?;
        if self.allowed.contains(country) {
            Ok(country.to_string())
        } else {
            Err(Refusal::Country(client, country.to_string()))
        }
    }
}

/// A request's forwarding headers, every line of each in the order received.
#[derive(Debug, Clone, Default)]
pub struct Forwarded<'a> {
    /// `X-Forwarded-For` lines.
    pub x_forwarded_for: Vec<&'a str>,
    /// `Forwarded` (RFC 7239) lines.
    pub forwarded: Vec<&'a str>,
}

/// The `for=` value of one `Forwarded` element (`for=192.0.2.60;proto=http`), unquoted; the
/// whole element when it has none (which then fails to parse).
fn forwarded_for_element(element: &str) -> &str {
    element
        .split(';')
        .map(str::trim)
        .find_map(|pair| pair.get(..4).filter(|k| k.eq_ignore_ascii_case("for=")).map(|_| &pair[4..]))
        .map_or(element.trim(), |value| value.trim_matches('"'))
}

/// An address as a hop names it: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok()))
            .then(|| inside.parse().ok())
            .flatten();
    }
    let (address, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<CountryTable, JurisdictionError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("countries.csv");
        std::fs::write(&path, text).expect("write");
        CountryTable::load(&path)
    }

    #[test]
    fn ranges_are_looked_up_for_v4_and_v6_and_overlaps_are_refused() {
        let t = table("network,country\n192.0.2.0/24,NL\n198.51.100.0/25,US\n2001:db8::/32,DE\n").expect("table");
        assert_eq!(t.country("192.0.2.200".parse().unwrap()), Some("NL"));
        assert_eq!(t.country("198.51.100.127".parse().unwrap()), Some("US"));
        assert_eq!(t.country("198.51.100.128".parse().unwrap()), None);
        assert_eq!(t.country("2001:db8::1".parse().unwrap()), Some("DE"));
        assert_eq!(t.country("10.0.0.1".parse().unwrap()), None);
        let err = table("192.0.2.0/24,NL\n192.0.2.128/25,US\n").expect_err("overlap");
        assert_eq!(err.line, 2);
        let err = table("192.0.2.0/24,Netherlands\n").expect_err("bad code");
        assert!(err.message.contains("two-letter"), "{err}");
        assert_eq!(table("192.0.2.0/33,NL\n").expect_err("bad network").line, 1);
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let t = table("127.0.0.0/8,NL\n203.0.113.0/24,US\n192.0.2.0/24,DE\n").expect("table");
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let allowed = DEFAULT_ALLOWED.iter().map(|c| c.to_string()).collect();
        let trusting = Jurisdiction { table: t.clone(), allowed, trusted_proxies: vec![proxy] };
        let xff = |lines: &[&'static str]| Forwarded { x_forwarded_for: lines.to_vec(), forwarded: vec![] };
        assert_eq!(trusting.check(proxy, &Forwarded::default()), Ok("NL".into()));
        assert_eq!(trusting.check(proxy, &xff(&["192.0.2.9"])), Ok("DE".into()));
        let us: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(trusting.check(proxy, &xff(&["192.0.2.9, 203.0.113.5"])), Err(Refusal::Country(us, "US".into())));
        assert_eq!(
            trusting.check(proxy, &xff(&["192.0.2.9", "203.0.113.5"])),
            Err(Refusal::Country(us, "US".into())),
            "the line the proxy appended counts, not the client's first line"
        );
        assert_eq!(trusting.check(proxy, &xff(&["192.0.2.9, 127.0.0.1"])), Ok("DE".into()), "trusted hops are passed");
        assert_eq!(
            trusting.check(proxy, &xff(&["203.0.113.5, nonsense"])),
            Err(Refusal::Forwarded("nonsense".into())),
            "a hop that does not parse is refused, not skipped"
        );
        let rfc = Forwarded {
            x_forwarded_for: vec![],
            forwarded: vec![r#"for=192.0.2.60;proto=http, for="[2001:db8::1]:4711""#],
        };
        assert_eq!(trusting.client(proxy, &rfc), Ok("2001:db8::1".parse().unwrap()));
        let hidden = Forwarded { x_forwarded_for: vec![], forwarded: vec!["for=unknown"] };
        assert_eq!(trusting.client(proxy, &hidden), Err(Refusal::Forwarded("unknown".into())));
        assert_eq!(parse_hop("192.0.2.1:8080"), Some("192.0.2.1".parse().unwrap()));
        let untrusting = Jurisdiction { trusted_proxies: vec![], ..trusting.clone() };
        assert_eq!(
            untrusting.check(us, &xff(&["192.0.2.9"])),
            Err(Refusal::Country(us, "US".into())),
            "spoofed header ignored"
        );
        let unknown: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(untrusting.check(unknown, &Forwarded::default()), Err(Refusal::UnknownAddress(unknown)));
    }
}
