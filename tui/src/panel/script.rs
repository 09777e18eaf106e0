//! Scripted walkthroughs: a plain-text list of key presses, typed digits, waits and
//! expectations, replayed against the panel (`imagecast panel --script FILE`, `imagecast demo
//! --script FILE [--headless]`).
//!
//! ```text
//! # comments and blank lines are ignored
//! expect "Enter your user ID"      # waits up to 10 s for the text on screen
//! type 1001                        # ten keys, one per character (0-9 * #)
//! press tab                        # named keys: start reset stop up down left right tab
//! type 1234                        #   backtab space backspace delete pageup pagedown
//! press start                      #   stored received preview carry quit, or digits
//! expect "Select a mode" within 5s
//! press 6 1                        # several keys in a row
//! wait 500ms                       # let time pass
//! click 12 5                       # a touch at column 12, row 5
//! resize 100 30                    # the terminal changes size
//! screen                           # print the screen now (headless)
//! move-to-adf "marksheet-"         # carry the newest such file from the output tray to the ADF
//! ```
//!
//! After each key the script waits until the panel is idle (no job in flight), so an
//! `expect` after `press start` sees the job's outcome.

use std::time::Duration;

use thiserror::Error;

use super::keys::Key;

/// A script error: file line and reason.
#[derive(Debug, Error)]
#[error("script line {line}: {reason}")]
pub struct ScriptError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// One step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Press keys in order.
    Keys(Vec<Key>),
    /// Let time pass.
    Wait(Duration),
    /// Wait for text on screen, failing after the timeout.
    Expect {
        /// The text to find on the screen.
        text: String,
        /// How long to wait.
        within: Duration,
        /// True for `expect-not`: the text must be absent (checked once).
        absent: bool,
    },
    /// A touch at a column and row.
    Click(u16, u16),
    /// New terminal size.
    Resize(u16, u16),
    /// Print the screen.
    Screen,
    /// The operator carries the newest output-tray file whose name starts with the text to
    /// the ADF (a printed mark sheet, say).
    MoveToAdf(String),
}

/// A parsed script: steps with their line numbers.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Steps and the line each came from.
    pub steps: Vec<(usize, Step)>,
}

/// Default wait of `expect`.
pub const EXPECT_TIMEOUT: Duration = Duration::from_secs(10);

fn duration(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    if let Some(sec) = s.strip_suffix('s') {
        return sec
            .parse::<f64>()
            .ok()
            .filter(|v| *v >= 0.0 && *v < 3600.0)
            .map(Duration::from_secs_f64);
    }
    None
}

/// A double-quoted text (`\"` and `\\` escape a quote and a backslash) and what follows it.
fn quoted(rest: &str) -> Option<(String, &str)> {
    let body = rest.trim_start().strip_prefix('"')?;
    let mut text = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?.1),
            '"' => return Some((text, body[i + 1..].trim())),
            c => text.push(c),
        }
    }
    None
}

/// Cuts a trailing ` # comment` that is not inside quotes.
fn strip_comment(raw: &str) -> &str {
    let mut in_quotes = false;
    let mut escaped = false;
    let mut prev_space = true;
    for (i, c) in raw.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '#' if !in_quotes && prev_space => return &raw[..i],
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    raw
}

impl Script {
    /// Parses a script; every problem names its line.
    pub fn parse(text: &str) -> Result<Script, ScriptError> {
        let mut steps = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |reason: String| ScriptError { line, reason };
            let content = strip_comment(raw).trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let (cmd, rest) = content
                .split_once(char::is_whitespace)
                .unwrap_or((content, ""));
            let rest = rest.trim();
            let step = match cmd {
                "press" | "key" => {
                    let keys = rest
                        .split_whitespace()
                        .map(|k| Key::from_name(k).ok_or_else(|| err(format!("unknown key {k:?}"))))
                        .collect::<Result<Vec<_>, _>>()?;
                    if keys.is_empty() {
                        return Err(err("press needs at least one key".into()));
                    }
                    Step::Keys(keys)
                }
                "type" => {
                    let keys = rest
                        .chars()
                        .filter(|c| !c.is_whitespace())
                        .map(|c| match c {
                            '0'..='9' => Ok(Key::Digit(c as u8 - b'0')),
                            '*' => Ok(Key::Star),
                            '#' => Ok(Key::Hash),
                            _ => Err(err(format!(
                                "type takes ten-key characters (0-9 * #), not {c:?}"
                            ))),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    // An empty step would never end; a `#` after a space starts a comment
                    // (`press hash` presses it).
                    if keys.is_empty() {
                        return Err(err(
                            "type needs at least one ten-key character (a # after a space starts a comment: use press hash)".into(),
                        ));
                    }
                    Step::Keys(keys)
                }
                "wait" => Step::Wait(duration(rest).ok_or_else(|| {
                    err(format!(
                        "wait needs a duration like 500ms or 2s, not {rest:?}"
                    ))
                })?),
                "expect" | "expect-not" => {
                    let (text, tail) =
                        quoted(rest).ok_or_else(|| err("expect needs a quoted text".into()))?;
                    let within = match tail.strip_prefix("within") {
                        Some(d) => duration(d.trim())
                            .ok_or_else(|| err(format!("bad duration {:?}", d.trim())))?,
                        None if tail.is_empty() => EXPECT_TIMEOUT,
                        None => return Err(err(format!("unexpected {tail:?} after the text"))),
                    };
                    Step::Expect {
                        text,
                        within,
                        absent: cmd == "expect-not",
                    }
                }
                "click" | "resize" => {
                    let nums: Vec<u16> = rest
                        .split_whitespace()
                        .map(|n| n.parse().map_err(|_| err(format!("{n:?} is not a number"))))
                        .collect::<Result<_, _>>()?;
                    let [a, b] = nums[..] else {
                        return Err(err(format!("{cmd} needs two numbers")));
                    };
                    if cmd == "click" {
                        Step::Click(a, b)
                    } else {
                        Step::Resize(a.max(1), b.max(1))
                    }
                }
                "screen" => Step::Screen,
                "move-to-adf" => {
                    let (prefix, tail) = quoted(rest)
                        .ok_or_else(|| err("move-to-adf needs a quoted file-name prefix".into()))?;
                    if !tail.is_empty() {
                        return Err(err(format!("unexpected {tail:?} after the prefix")));
                    }
                    Step::MoveToAdf(prefix)
                }
                other => {
                    return Err(err(format!(
                        "unknown command {other:?} (press, type, wait, expect, expect-not, click, resize, screen, move-to-adf)"
                    )));
                }
            };
            steps.push((line, step));
        }
        Ok(Script { steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_type_is_refused_not_looped_on() {
        let e = Script::parse("expect \"x\"\ntype #\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("press hash"), "{e}");
        let s = Script::parse("press hash\ntype 1#\n").unwrap();
        assert_eq!(s.steps[0].1, Step::Keys(vec![Key::Hash]));
        assert_eq!(s.steps[1].1, Step::Keys(vec![Key::Digit(1), Key::Hash]));
    }

    #[test]
    fn parses_every_command_and_names_bad_lines() {
        let s = Script::parse(
            "# login\nexpect \"Enter your user ID\"\ntype 1001\npress tab\ntype 12*4\npress start 6 # comment\nwait 250ms\nexpect \"a # b\" within 2s\nexpect-not \"Error\"\nclick 3 4\nresize 100 30\nscreen\n",
        )
        .unwrap();
        assert_eq!(s.steps.len(), 11);
        assert_eq!(
            s.steps[0],
            (
                2,
                Step::Expect {
                    text: "Enter your user ID".into(),
                    within: EXPECT_TIMEOUT,
                    absent: false
                }
            )
        );
        assert_eq!(
            s.steps[3].1,
            Step::Keys(vec![Key::Digit(1), Key::Digit(2), Key::Star, Key::Digit(4)])
        );
        assert_eq!(s.steps[4].1, Step::Keys(vec![Key::Start, Key::Digit(6)]));
        assert_eq!(s.steps[5].1, Step::Wait(Duration::from_millis(250)));
        assert!(
            matches!(&s.steps[6].1, Step::Expect { text, within, .. } if text == "a # b" && *within == Duration::from_secs(2))
        );
        let e = Script::parse("press start\npress bogus\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("unknown key \"bogus\""));
        assert!(Script::parse("type abc").is_err());
        assert!(Script::parse("wait forever").is_err());
        assert!(Script::parse("expect unquoted").is_err());
        let q = Script::parse(r#"expect "say \"hi\" # not a comment" # comment"#).unwrap();
        assert!(
            matches!(&q.steps[0].1, Step::Expect { text, .. } if text == r#"say "hi" # not a comment"#)
        );
    }
}
