//! Group and destination names as an operator types them, resolved on the client against the
//! server's own lists (`groups`, `destinations`) before anything is sent, so the protocol is
//! unchanged:
//!
//! - a group by its exact name, by the number `groups` prints for it, or by a name that
//!   differs only in case and spacing when just one group matches;
//! - a destination by its domain (any case) or its name from `all.rec` (the same way);
//! - a miss names the closest names ("did you mean ...").

use anyhow::bail;
use imagecast_shared::domain::domain_key;
use imagecast_shared::msg::Destination;

use super::peer;

/// The most names a miss suggests.
const SUGGESTIONS: usize = 3;

/// The group that `input` names among `names` (in the order `groups` numbers them from 1).
pub fn group(input: &str, names: &[String]) -> anyhow::Result<String> {
    if names.iter().any(|n| n == input) {
        return Ok(input.to_owned());
    }
    if let Ok(n) = input.trim().parse::<usize>() {
        if let Some(name) = n.checked_sub(1).and_then(|i| names.get(i)) {
            return Ok(name.clone());
        }
        bail!(
            "there is no group number {n}: `imagecast groups` numbers them from 1 to {}",
            names.len()
        );
    }
    if let Some(name) = loose_match(input, names.iter(), "groups")? {
        return Ok(name.clone());
    }
    bail!(
        "unknown destination group {input:?}{}",
        suggest(input, names.iter(), "`imagecast groups` lists them")
    )
}

/// The domain of the destination that `input` names (a domain or a destination's name);
/// a domain not in the list is left to the server to judge.
pub fn destination(input: &str, list: &[Destination]) -> anyhow::Result<String> {
    let key = domain_key(input);
    if let Some(d) = list.iter().find(|d| domain_key(&d.domain) == key) {
        return Ok(d.domain.clone());
    }
    if let Some(d) = list.iter().find(|d| d.name == input) {
        return Ok(d.domain.clone());
    }
    let names: Vec<&String> = list.iter().map(|d| &d.name).collect();
    if let Some(name) = loose_match(input, names.iter().copied(), "destinations")? {
        if let Some(d) = list.iter().find(|d| &d.name == name) {
            return Ok(d.domain.clone());
        }
    }
    if looks_like_domain(input) {
        return Ok(input.to_owned());
    }
    let all = list.iter().flat_map(|d| [&d.name, &d.domain]);
    bail!(
        "unknown destination {input:?}{}",
        suggest(input, all, "`imagecast destinations` lists them")
    )
}

/// The one name equal to `input` but for case and spacing; an error if several are.
fn loose_match<'a>(
    input: &str,
    names: impl Iterator<Item = &'a String>,
    what: &str,
) -> anyhow::Result<Option<&'a String>> {
    let want = loose(input);
    let found: Vec<&String> = names.filter(|n| loose(n) == want).collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        several => bail!(
            "{input:?} matches several {what}: {}; give the exact name",
            quoted(several.iter().copied())
        ),
    }
}

/// "; did you mean A or B? (HINT)" with the closest names, or " (HINT)" when none is close.
fn suggest<'a>(input: &str, names: impl Iterator<Item = &'a String>, hint: &str) -> String {
    let want = loose(input);
    let mut close: Vec<(usize, &String)> = names
        .filter_map(|n| {
            let have = loose(n);
            let d = distance(&want, &have);
            let near = d <= (want.chars().count() / 3).max(2);
            (near || (want.len() >= 3 && have.contains(&want))).then_some((d, n))
        })
        .collect();
    close.sort();
    close.dedup_by(|a, b| a.1 == b.1);
    if close.is_empty() {
        return format!(" ({hint})");
    }
    let names: Vec<&String> = close.iter().take(SUGGESTIONS).map(|(_, n)| *n).collect();
    format!("; did you mean {}? ({hint})", quoted(names.into_iter()))
}

/// Names from the server, quoted and escaped, joined with "or".
fn quoted<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names
        .map(|n| format!("\"{}\"", peer(n)))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A name compared without case or extra spaces.
fn loose(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether `s` is written like a domain or an address rather than a name.
fn looks_like_domain(s: &str) -> bool {
    !s.is_empty() && !s.contains(char::is_whitespace) && (s.contains('.') || s.contains(':'))
}

/// The edit distance (Levenshtein) between two names, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = here;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Vec<String> {
        [
            "all distribution destinations",
            "product development-related places",
            "all sales-related places",
            "all sales offices",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn a_group_by_name_number_or_case() {
        let g = groups();
        assert_eq!(group("all sales offices", &g).unwrap(), "all sales offices");
        assert_eq!(group("4", &g).unwrap(), "all sales offices");
        assert_eq!(
            group(" ALL  Sales Offices", &g).unwrap(),
            "all sales offices"
        );
        let e = group("9", &g).unwrap_err().to_string();
        assert!(e.contains("from 1 to 4"), "{e}");
        let e = group("all sales office", &g).unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown destination group \"all sales office\"; did you mean \"all sales offices\"? (`imagecast groups` lists them)"
        );
        let e = group("zzz", &g).unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown destination group \"zzz\" (`imagecast groups` lists them)"
        );
        let twins = vec!["Sales".to_owned(), "sales".to_owned()];
        let e = group("SALES", &twins).unwrap_err().to_string();
        assert!(e.contains("matches several groups"), "{e}");
    }

    #[test]
    fn a_destination_by_domain_or_name() {
        let list = vec![
            Destination {
                domain: "sale1.osk.mei.co.jp".into(),
                name: "sales office, the Osaka branch".into(),
            },
            Destination {
                domain: "sale1.ngy.mei.co.jp".into(),
                name: "sales office, the Nagoya branch".into(),
            },
        ];
        assert_eq!(
            destination("SALE1.osk.mei.co.jp", &list).unwrap(),
            "sale1.osk.mei.co.jp"
        );
        assert_eq!(
            destination("sales office, the Nagoya branch", &list).unwrap(),
            "sale1.ngy.mei.co.jp"
        );
        assert_eq!(
            destination("Sales Office, the Osaka Branch", &list).unwrap(),
            "sale1.osk.mei.co.jp"
        );
        // A domain the list lacks is the server's to judge.
        assert_eq!(
            destination("other.example", &list).unwrap(),
            "other.example"
        );
        let e = destination("sales office, the Osaka", &list)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("did you mean \"sales office, the Osaka branch\""),
            "{e}"
        );
    }
}
