//! IP lists (CIDR blocks, allow or deny: a tenant's own, or a list file such as Tor exit nodes)
//! and disposable-email-domain lists, parsed from their text with the line that is wrong.
//!
//! The format is the one such lists are published in: one entry a line, `#` starts a comment,
//! blank lines are ignored. An IP entry is an address (`203.0.113.7`, `2001:db8::1`) or a CIDR
//! block (`203.0.113.0/24`); a domain entry is a domain name, and a listed domain covers its
//! subdomains too.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

/// A list entry that does not parse: the line (from 1) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ListError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Entries longer than this are refused: no address or domain is that long.
const ENTRY_MAX_CHARS: usize = 253;
/// A list this long is a mistake (the largest public lists are a few hundred thousand lines).
pub const ENTRIES_MAX: usize = 2_000_000;

/// A set of CIDR blocks, IPv4 and IPv6, looked up in O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpList {
    /// Merged, sorted, non-overlapping ranges over the IPv6 space (IPv4 as `::ffff:a.b.c.d`).
    ranges: Vec<(u128, u128)>,
    entries: usize,
}

impl IpList {
    pub fn parse(text: &str) -> Result<Self, ListError> {
        let mut ranges = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let entry = strip(line);
            if entry.is_empty() {
                continue;
            }
            let error = |message: String| ListError { line: index + 1, message };
            if entry.chars().count() > ENTRY_MAX_CHARS {
                return Err(error("is too long for an address or CIDR block".to_owned()));
            }
            ranges.push(block(entry).map_err(error)?);
            if ranges.len() > ENTRIES_MAX {
                return Err(error(format!("the list has more than {ENTRIES_MAX} entries")));
            }
        }
        let entries = ranges.len();
        ranges.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Ok(Self { ranges: merged, entries })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let value = as_v6(ip);
        let after = self.ranges.partition_point(|(start, _)| *start <= value);
        after > 0 && self.ranges.get(after - 1).is_some_and(|(_, end)| value <= *end)
    }

    /// How many entries the text had (before blocks were merged).
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// A set of domains; a listed domain covers its subdomains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainList {
    domains: HashSet<String>,
}

impl DomainList {
    pub fn parse(text: &str) -> Result<Self, ListError> {
        let mut domains = HashSet::new();
        for (index, line) in text.lines().enumerate() {
            let entry = strip(line);
            if entry.is_empty() {
                continue;
            }
            let error = |message: &str| ListError { line: index + 1, message: message.to_owned() };
            let domain = entry.trim_end_matches('.').to_ascii_lowercase();
            let labels_ok = domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
            if domain.len() > ENTRY_MAX_CHARS || !domain.contains('.') || !labels_ok {
                return Err(error(&format!(
                    "{:?} is not a domain name (letters, digits and hyphens, in labels separated by dots; \
                     write international names in their xn-- form)",
                    truncated(entry)
                )));
            }
            domains.insert(domain);
            if domains.len() > ENTRIES_MAX {
                return Err(error("the list has too many entries"));
            }
        }
        Ok(Self { domains })
    }

    /// Whether `domain` (already lower case, in its ASCII form) or a parent of it is listed.
    pub fn contains(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.');
        let mut rest = domain;
        loop {
            if self.domains.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return false,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.domains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

/// The network an address belongs to for "a network the customer has signed in from": its
/// IPv4 /24 or IPv6 /48.
pub fn network_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => as_v6(IpAddr::V4(v4)) & !0xff,
        IpAddr::V6(v6) => u128::from(v6) & !((1u128 << 80) - 1),
    }
}

fn strip(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

fn truncated(entry: &str) -> String {
    entry.chars().take(60).collect()
}

fn as_v6(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(u128::from(v6), |v4| u128::from(v4.to_ipv6_mapped())),
    }
}

fn block(entry: &str) -> Result<(u128, u128), String> {
    let (address, prefix) = match entry.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (entry, None),
    };
    let ip: IpAddr =
        address.parse().map_err(|_| format!("{:?} is not an IP address or CIDR block", truncated(entry)))?;
    let bits: u32 = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => bits,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if n <= bits && !p.starts_with('+') => n,
            _ => return Err(format!("{:?}: the prefix length must be 0 to {bits}", truncated(entry))),
        },
    };
    // IPv4 lives in the last 32 bits of the mapped space.
    let host_bits = bits - prefix;
    let mask: u128 = if host_bits >= 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
    let value = as_v6(ip);
    if value & mask != 0 {
        return Err(format!(
            "{:?} has host bits set; the block is {}/{prefix}",
            truncated(entry),
            shown(value & !mask, ip.is_ipv4())
        ));
    }
    Ok((value, value | mask))
}

fn shown(value: u128, v4: bool) -> String {
    let v6 = std::net::Ipv6Addr::from(value);
    match (v4, v6.to_ipv4_mapped()) {
        (true, Some(v4)) => v4.to_string(),
        _ => v6.to_string(),
    }
}
