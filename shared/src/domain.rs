//! The one identity of a terminal's domain.
//!
//! A terminal is named by a network domain name or an IP address, and the same terminal may
//! be written several ways: `Devl1.HQS.mei.co.jp` and `devl1.hqs.mei.co.jp`, or `2001:db8::5`
//! and `2001:0db8:0:0::5`. Every lookup (device accounts, group members, the delivery queue,
//! the connection registry, the journal) goes through [`domain_key`], so one terminal is one
//! key everywhere.

use std::borrow::Cow;
use std::net::IpAddr;

/// The key under which a domain is compared: trimmed, ASCII-lowercased, and for an IP address
/// its canonical text (`0:0::1` → `::1`). Borrowed when `domain` already is its key.
pub fn domain_key(domain: &str) -> Cow<'_, str> {
    let domain = domain.trim();
    if let Some(ip) = parse_ip(domain) {
        let canonical = ip.to_string();
        return if canonical == domain {
            Cow::Borrowed(domain)
        } else {
            Cow::Owned(canonical)
        };
    }
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(domain.to_ascii_lowercase())
    } else {
        Cow::Borrowed(domain)
    }
}

/// The address `s` is, if it is one (quickly rules out names that cannot be).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let b = s.as_bytes();
    let first = *b.first()?;
    // An IPv6 address has a ':' and starts with a hex digit or ':' (`[` is not accepted); an
    // IPv4 address is digits and dots only. A DNS name such as `devl1.hqs` is neither.
    let v6 = (first.is_ascii_hexdigit() || first == b':') && b.contains(&b':');
    let v4 = first.is_ascii_digit() && b.iter().all(|&c| c.is_ascii_digit() || c == b'.');
    if v6 || v4 { s.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_terminal_is_one_key() {
        assert_eq!(domain_key(" Devl1.HQS.mei.co.jp "), "devl1.hqs.mei.co.jp");
        assert_eq!(domain_key("0:0:0:0:0:0:0:1"), "::1");
        assert_eq!(domain_key("FE80::A"), "fe80::a");
        assert_eq!(domain_key("2001:0db8:0:0::5"), domain_key("2001:DB8::5"));
        assert_eq!(domain_key("010.1.2.3"), "010.1.2.3", "not an address: kept");
        assert!(matches!(domain_key("a.jp"), Cow::Borrowed(_)));
        assert!(parse_ip("cafe.example").is_none());
        assert!(parse_ip("beef:1::2").is_some());
    }
}
