//! The supervisor's retry policy. Retries live in one place, the supervisor (a HylaFAX server
//! behind a gateway is given one dial and one try), with HylaFAX's defaults: at most 12 dials
//! and 3 tries (a try is a call that was answered), a busy number requeued after 180 s, one
//! that did not answer after 300 s. Stored one row per key; a key never set has its default.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::FaxError;
use super::settings::split_assignment;

/// The retry policy. Field names are the `KEY`s of `fax policy set KEY=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct Policy {
    /// Most calls to one number for one job, answered or not (HylaFAX `MaxDials`).
    pub max_dials: u32,
    /// Most answered calls to one number for one job (HylaFAX `MaxTries`).
    pub max_tries: u32,
    /// Seconds before a busy number is dialled again (HylaFAX `JobReqBusy`).
    pub busy_retry_s: u32,
    /// Seconds before a number that did not answer is dialled again (`JobReqNoAnswer`).
    pub no_answer_retry_s: u32,
    /// Seconds before a call that failed otherwise (a page error, a line fault) is tried
    /// again, resuming at the first page not confirmed (`JobReqOther`).
    pub failed_retry_s: u32,
    /// Seconds a number rings before the call counts as not answered.
    pub ring_timeout_s: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_dials: 12,
            max_tries: 3,
            busy_retry_s: 180,
            no_answer_retry_s: 300,
            failed_retry_s: 300,
            ring_timeout_s: 10,
        }
    }
}

/// Every key, what it allows, in the order `policy show` prints them.
pub const KEYS: &[(&str, &str)] = &[
    ("max-dials", "a whole number from 1 to 100"),
    (
        "max-tries",
        "a whole number from 1 to 100, at most max-dials",
    ),
    ("busy-retry-s", "seconds, from 0 to 86400"),
    ("no-answer-retry-s", "seconds, from 0 to 86400"),
    ("failed-retry-s", "seconds, from 0 to 86400"),
    ("ring-timeout-s", "seconds, from 1 to 300"),
];

impl Policy {
    /// Every key with its value, in [`KEYS`] order.
    pub fn to_pairs(&self) -> Vec<(&'static str, u32)> {
        vec![
            ("max-dials", self.max_dials),
            ("max-tries", self.max_tries),
            ("busy-retry-s", self.busy_retry_s),
            ("no-answer-retry-s", self.no_answer_retry_s),
            ("failed-retry-s", self.failed_retry_s),
            ("ring-timeout-s", self.ring_timeout_s),
        ]
    }

    /// Sets one key from its text; refuses an unknown key (listing the known ones) or a value
    /// out of its range (naming the key and the range).
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), FaxError> {
        let Some((_, allowed)) = KEYS.iter().find(|(k, _)| *k == key) else {
            let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
            return Err(FaxError::Invalid(format!(
                "unknown policy key {key:?}: the keys are {}",
                known.join(", ")
            )));
        };
        let (lo, hi) = match key {
            "max-dials" | "max-tries" => (1, 100),
            "ring-timeout-s" => (1, 300),
            _ => (0, 86_400),
        };
        let n = value
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| {
                FaxError::Invalid(format!(
                    "bad value {value:?} for {key}: allowed is {allowed}"
                ))
            })?;
        match key {
            "max-dials" => self.max_dials = n,
            "max-tries" => self.max_tries = n,
            "busy-retry-s" => self.busy_retry_s = n,
            "no-answer-retry-s" => self.no_answer_retry_s = n,
            "failed-retry-s" => self.failed_retry_s = n,
            _ => self.ring_timeout_s = n,
        }
        Ok(())
    }

    /// Checks every value's range, and that `max-tries` is at most `max-dials` (every try is
    /// a dial).
    pub fn validate(&self) -> Result<(), FaxError> {
        for (key, value) in self.to_pairs() {
            self.clone().apply(key, &value.to_string())?;
        }
        if self.max_tries > self.max_dials {
            return Err(FaxError::Invalid(format!(
                "max-tries ({}) must not exceed max-dials ({}): every try is a dial",
                self.max_tries, self.max_dials
            )));
        }
        Ok(())
    }
}

/// The policy in force (defaults for keys never set).
pub fn get(conn: &Connection) -> Result<Policy, FaxError> {
    let mut policy = Policy::default();
    let rows: Vec<(String, i64)> = conn
        .prepare_cached("SELECT key, value FROM fax_policy")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (k, v) in rows {
        // A key a later release dropped is ignored rather than fatal.
        if policy.apply(&k, &v.to_string()).is_err() {
            tracing::warn!(key = %k, value = v, "ignoring a stored policy value");
        }
    }
    Ok(policy)
}

/// Changes keys of the policy (`KEY=VALUE` each) all at once: one bad key or value changes
/// nothing.
pub fn set(conn: &Connection, assignments: &[String]) -> Result<Policy, FaxError> {
    if assignments.is_empty() {
        return Err(FaxError::Invalid("give at least one KEY=VALUE".into()));
    }
    let mut next = get(conn)?;
    for a in assignments {
        let (k, v) = split_assignment(a)?;
        next.apply(k, v)?;
    }
    replace(conn, &next)
}

/// Replaces the whole policy (checked first).
pub fn replace(conn: &Connection, policy: &Policy) -> Result<Policy, FaxError> {
    policy.validate()?;
    conn.execute("DELETE FROM fax_policy", [])?;
    for (k, v) in policy.to_pairs() {
        conn.execute(
            "INSERT INTO fax_policy (key, value) VALUES (?1, ?2)",
            params![k, i64::from(v)],
        )?;
    }
    get(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::testing;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn hylafax_defaults_then_validated_changes() {
        let (_d, conn) = testing::db();
        let p = get(&conn).unwrap();
        assert_eq!((p.max_dials, p.max_tries), (12, 3));
        assert_eq!((p.busy_retry_s, p.no_answer_retry_s), (180, 300));
        let p = set(&conn, &args(&["max-dials=5", "busy-retry-s=1"])).unwrap();
        assert_eq!((p.max_dials, p.busy_retry_s), (5, 1));
        assert_eq!(get(&conn).unwrap(), p);
        let e = set(&conn, &args(&["max-tries=6"])).unwrap_err().to_string();
        assert!(
            e.contains("max-tries (6) must not exceed max-dials (5)"),
            "{e}"
        );
        let e = set(&conn, &args(&["max-dials=0"])).unwrap_err().to_string();
        assert!(
            e.contains("for max-dials: allowed is a whole number from 1 to 100"),
            "{e}"
        );
        let e = set(&conn, &args(&["retries=2"])).unwrap_err().to_string();
        assert!(e.contains("unknown policy key \"retries\""), "{e}");
        let e = set(&conn, &args(&["busy-retry-s=-1"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("busy-retry-s"), "{e}");
        assert_eq!(
            get(&conn).unwrap().max_dials,
            5,
            "refused sets changed nothing"
        );
    }
}
