//! Resolving a distribution's destinations (FIG. 4, S42–S43): the groups and individual
//! destinations a sender chose become the devices that get the image, each once.

use std::collections::HashSet;

use imagecast_shared::msg::Destination;

use super::{GroupSnapshot, domain_key};

/// Why chosen destinations do not resolve. The messages go back to the sending terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    /// No usable group file declares the group at `index` of the chosen groups.
    #[error("unknown destination group {group:?}")]
    UnknownGroup {
        /// Its place among the chosen groups.
        index: usize,
        /// The group name as chosen.
        group: String,
    },
    /// The individual destination at `index` is not listed in `all.rec`.
    #[error("{domain:?} is not listed in all.rec (all distribution destinations)")]
    UnknownDomain {
        /// Its place among the chosen individual destinations.
        index: usize,
        /// The domain as chosen.
        domain: String,
    },
    /// Everything chosen is the sender itself (or nothing was chosen).
    #[error("the chosen groups and destinations contain no destination other than this terminal")]
    NoDestinations,
}

impl Unresolved {
    /// The request field at fault (`groups[2]`, `destinations[0]`), if one is.
    pub fn field(&self) -> Option<String> {
        match self {
            Unresolved::UnknownGroup { index, .. } => Some(format!("groups[{index}]")),
            Unresolved::UnknownDomain { index, .. } => Some(format!("destinations[{index}]")),
            Unresolved::NoDestinations => None,
        }
    }
}

/// Resolves groups and individual destinations to destinations, each once (FIG. 4, S42–S43).
/// Group members equal to the sender are left out; the sender is included only when picked
/// individually. Names come from `all.rec` where the domain is listed there. Each destination
/// is named by its [`domain_key`], the one identity the queue, the connections and the journal
/// know it by, however a group file spells it (`2001:0db8:0:0::5` is `2001:db8::5`).
pub fn resolve_destinations(
    snap: &GroupSnapshot,
    sender: &str,
    groups: &[String],
    individuals: &[String],
) -> Result<Vec<Destination>, Unresolved> {
    let sender_key = domain_key(sender).into_owned();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let file = snap.group(g).ok_or_else(|| Unresolved::UnknownGroup {
            index: i,
            group: g.clone(),
        })?;
        for m in file.members() {
            let key = domain_key(&m.domain).into_owned();
            if key == sender_key || !seen.insert(key.clone()) {
                continue;
            }
            let name = snap
                .destination_name(&m.domain)
                .unwrap_or(&m.name)
                .to_owned();
            out.push(Destination { domain: key, name });
        }
    }
    for (i, d) in individuals.iter().enumerate() {
        let member =
            snap.all()
                .and_then(|all| all.find(d))
                .ok_or_else(|| Unresolved::UnknownDomain {
                    index: i,
                    domain: d.clone(),
                })?;
        let key = domain_key(&member.domain).into_owned();
        if seen.insert(key.clone()) {
            out.push(Destination {
                domain: key,
                name: member.name.to_string(),
            });
        }
    }
    if out.is_empty() {
        return Err(Unresolved::NoDestinations);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::groups::GroupDir;

    /// One IPv6 terminal, spelled three ways: in `all.rec`, in a group file, and by the sender.
    /// Each spelling finds it, and it is one destination named by its domain key.
    #[test]
    fn an_ipv6_address_spelled_differently_resolves_to_its_device() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("all.rec"),
            "# all distribution destinations\n# all.rec\n\
             sale1.hqs.mei.co.jp;sales department 1 of the head office\n\
             2001:0DB8:0:0::5;the IPv6 printer\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("printers.rec"),
            "# printers\n# printers.rec\n2001:db8:0:0:0:0:0:5;printer (group's name)\n",
        )
        .unwrap();
        let snap = GroupDir::new(dir.path()).snapshot().unwrap();
        assert!(snap.problems().is_empty(), "{:?}", snap.problems());

        let all = snap.all().unwrap();
        for spelling in ["2001:db8::5", "2001:DB8:0::5", " 2001:0db8:0000::0005 "] {
            let member = all.find(spelling).unwrap_or_else(|| panic!("{spelling}"));
            assert_eq!(&*member.name, "the IPv6 printer", "{spelling}");
        }
        assert_eq!(
            snap.destination_name("2001:db8::5"),
            Some("the IPv6 printer")
        );

        let expected = vec![Destination {
            domain: "2001:db8::5".to_owned(),
            name: "the IPv6 printer".to_owned(),
        }];
        let by_group =
            resolve_destinations(&snap, "sale1.hqs.mei.co.jp", &["printers".to_owned()], &[])
                .unwrap();
        assert_eq!(by_group, expected);
        let both = resolve_destinations(
            &snap,
            "sale1.hqs.mei.co.jp",
            &["printers".to_owned()],
            &["2001:DB8::0:5".to_owned()],
        )
        .unwrap();
        assert_eq!(both, expected, "the same device twice is one destination");
        let by_hand = resolve_destinations(
            &snap,
            "sale1.hqs.mei.co.jp",
            &[],
            &["2001:db8::5".to_owned()],
        )
        .unwrap();
        assert_eq!(by_hand, expected);
        // The device itself, sending in yet another spelling, is left out of its group.
        let own = resolve_destinations(&snap, "2001:db8::0:0:5", &["printers".to_owned()], &[]);
        assert_eq!(own, Err(Unresolved::NoDestinations));
    }
}
