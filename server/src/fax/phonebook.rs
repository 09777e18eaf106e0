//! The phone book (003 claims 17–22): named numbers, each shared by everyone or labelled for
//! one or several users or terminals, who alone see it. Names are unique (letters in either
//! case are the same name).

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{FaxError, Party, validate_number};

/// Who sees an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Visibility {
    /// Everyone.
    Shared,
    /// Only these users and terminals.
    For(Vec<Party>),
}

/// A phone-book entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its name, as picked at the panel or with `--book NAME`.
    pub name: String,
    /// Its number, as written.
    pub number: String,
    /// Who sees it.
    pub visibility: Visibility,
}

impl Entry {
    /// True when `user` at `device` sees it.
    pub fn visible_to(&self, user: Option<&str>, device: Option<&str>) -> bool {
        match &self.visibility {
            Visibility::Shared => true,
            Visibility::For(labels) => labels.iter().any(|l| match l {
                Party::User(u) => Some(u.as_str()) == user,
                Party::Device(d) => {
                    device.is_some_and(|x| *d == imagecast_shared::domain::domain_key(x))
                }
            }),
        }
    }
}

/// Checks an entry name: 1 to 64 printable characters, not starting or ending with a space.
pub fn validate_name(name: &str) -> Result<(), FaxError> {
    if name.is_empty()
        || name.trim() != name
        || name.chars().count() > 64
        || name.chars().any(char::is_control)
    {
        return Err(FaxError::Invalid(format!(
            "phone-book name {name:?} must be 1 to 64 printable characters, without spaces at either end"
        )));
    }
    Ok(())
}

/// Adds an entry (name checked and unique, number checked, labels checked to exist).
pub fn add(conn: &Connection, entry: &Entry) -> Result<Entry, FaxError> {
    validate_name(&entry.name)?;
    let number = validate_number(&entry.number)?;
    let visibility = match &entry.visibility {
        Visibility::Shared => Visibility::Shared,
        Visibility::For(labels) if labels.is_empty() => {
            return Err(FaxError::Invalid(format!(
                "phone-book entry {}: give --shared or at least one --for USER|DOMAIN",
                entry.name
            )));
        }
        Visibility::For(labels) => {
            let mut out: Vec<Party> = Vec::with_capacity(labels.len());
            for l in labels {
                let l = l.clone().checked(conn)?;
                if !out.contains(&l) {
                    out.push(l);
                }
            }
            out.sort();
            Visibility::For(out)
        }
    };
    let n = conn.execute(
        "INSERT OR IGNORE INTO fax_phonebook (name, number, shared) VALUES (?1, ?2, ?3)",
        params![entry.name, number, matches!(visibility, Visibility::Shared)],
    )?;
    if n == 0 {
        return Err(FaxError::Exists(format!(
            "the phone book has an entry {} already (remove it first)",
            entry.name
        )));
    }
    if let Visibility::For(labels) = &visibility {
        for l in labels {
            conn.execute(
                "INSERT INTO fax_phonebook_labels (name, kind, label) VALUES (?1, ?2, ?3)",
                params![entry.name, l.kind(), l.name()],
            )?;
        }
    }
    Ok(Entry {
        name: entry.name.clone(),
        number,
        visibility,
    })
}

/// Removes an entry by name.
pub fn remove(conn: &Connection, name: &str) -> Result<(), FaxError> {
    let n = conn.execute("DELETE FROM fax_phonebook WHERE name = ?1", [name])?;
    if n == 0 {
        return Err(FaxError::Missing(format!(
            "the phone book has no entry {name}"
        )));
    }
    conn.execute("DELETE FROM fax_phonebook_labels WHERE name = ?1", [name])?;
    Ok(())
}

fn labels(conn: &Connection, name: &str) -> Result<Vec<Party>, FaxError> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT kind, label FROM fax_phonebook_labels WHERE name = ?1 ORDER BY kind DESC, label",
        )?
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<Party> = rows
        .into_iter()
        .map(|(k, l)| Party::from_stored(&k, l))
        .collect::<Result<_, _>>()?;
    out.sort();
    Ok(out)
}

fn entry(conn: &Connection, name: String, number: String, shared: bool) -> Result<Entry, FaxError> {
    let visibility = if shared {
        Visibility::Shared
    } else {
        Visibility::For(labels(conn, &name)?)
    };
    Ok(Entry {
        name,
        number,
        visibility,
    })
}

/// Every entry, by name.
pub fn list(conn: &Connection) -> Result<Vec<Entry>, FaxError> {
    let rows: Vec<(String, String, bool)> = conn
        .prepare("SELECT name, number, shared FROM fax_phonebook ORDER BY name COLLATE NOCASE")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(n, num, s)| entry(conn, n, num, s))
        .collect()
}

/// The entries `user` at `device` sees, by name.
pub fn visible_to(
    conn: &Connection,
    user: Option<&str>,
    device: Option<&str>,
) -> Result<Vec<Entry>, FaxError> {
    Ok(list(conn)?
        .into_iter()
        .filter(|e| e.visible_to(user, device))
        .collect())
}

/// The entry called `name` if `user` at `device` sees it; otherwise a refusal that says the
/// entry is not theirs to see (or that there is none).
pub fn lookup(
    conn: &Connection,
    name: &str,
    user: Option<&str>,
    device: Option<&str>,
) -> Result<Entry, FaxError> {
    let row: Option<(String, String, bool)> = conn
        .query_row(
            "SELECT name, number, shared FROM fax_phonebook WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((n, num, s)) = row else {
        return Err(FaxError::Missing(format!(
            "the phone book has no entry {name}"
        )));
    };
    let e = entry(conn, n, num, s)?;
    if e.visible_to(user, device) {
        return Ok(e);
    }
    let who = match (user, device) {
        (Some(u), Some(d)) => format!("user {u} at {d}"),
        (Some(u), None) => format!("user {u}"),
        (None, Some(d)) => format!("terminal {d}"),
        (None, None) => "anyone unnamed".to_owned(),
    };
    Err(FaxError::Refused(format!(
        "phone-book entry {} is not visible to {who}: it is labelled for other users or terminals",
        e.name
    )))
}

/// An entry as a terminal sees it: shared, or the users and terminals it is labelled for.
pub fn to_wire(e: &Entry) -> imagecast_shared::fax::FaxBookEntry {
    let (shared, labels) = match &e.visibility {
        Visibility::Shared => (true, Vec::new()),
        Visibility::For(parties) => (false, parties.iter().map(Party::describe).collect()),
    };
    imagecast_shared::fax::FaxBookEntry {
        name: e.name.clone(),
        number: e.number.clone(),
        shared,
        labels,
    }
}

/// Removes every entry (for an import that replaces them).
pub(crate) fn clear(conn: &Connection) -> Result<(), FaxError> {
    conn.execute("DELETE FROM fax_phonebook_labels", [])?;
    conn.execute("DELETE FROM fax_phonebook", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::testing;

    fn e(name: &str, number: &str, v: Visibility) -> Entry {
        Entry {
            name: name.into(),
            number: number.into(),
            visibility: v,
        }
    }

    #[test]
    fn shared_and_labelled_entries() {
        let (_d, conn) = testing::db();
        add(&conn, &e("Acme", "+81 6 5555 0100", Visibility::Shared)).unwrap();
        add(
            &conn,
            &e(
                "Lawyer",
                "03-5555-0199",
                Visibility::For(vec![
                    Party::User("1001".into()),
                    Party::Device("MFP1.example".into()),
                ]),
            ),
        )
        .unwrap();
        let dup = add(&conn, &e("acme", "1", Visibility::Shared)).unwrap_err();
        assert!(
            dup.to_string().contains("has an entry acme already"),
            "{dup}"
        );
        assert_eq!(
            visible_to(&conn, Some("1002"), Some("pc1.example"))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            visible_to(&conn, Some("1001"), Some("pc1.example"))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            visible_to(&conn, Some("1002"), Some("mfp1.example"))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            lookup(&conn, "Lawyer", Some("1001"), None).unwrap().number,
            "03-5555-0199"
        );
        let refused = lookup(&conn, "Lawyer", Some("1002"), Some("pc1.example"))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("phone-book entry Lawyer is not visible to user 1002 at pc1.example"),
            "{refused}"
        );
        assert!(lookup(&conn, "Nobody", Some("1001"), None).is_err());
        remove(&conn, "Lawyer").unwrap();
        assert!(remove(&conn, "Lawyer").is_err());
        assert_eq!(list(&conn).unwrap().len(), 1);
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        let (_d, conn) = testing::db();
        let err = |x: Entry| add(&conn, &x).unwrap_err().to_string();
        assert!(err(e("A", "12ab", Visibility::Shared)).contains("bad number"));
        assert!(err(e(" A", "1", Visibility::Shared)).contains("phone-book name"));
        assert!(err(e("A", "1", Visibility::For(vec![]))).contains("--shared"));
        assert!(
            err(e(
                "A",
                "1",
                Visibility::For(vec![Party::User("7777".into())])
            ))
            .contains("unknown user 7777")
        );
        assert!(list(&conn).unwrap().is_empty());
    }
}
