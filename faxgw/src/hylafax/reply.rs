//! Replies of the HylaFAX client protocol (RFC 959 style): a three-digit code, then a space
//! (last line) or a `-` (more lines follow, up to a line with the same code and a space).

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::HylafaxError;

/// The longest reply line accepted, in bytes.
pub const MAX_LINE: usize = 4096;
/// The most lines one reply may have (`HELP` has about 25).
pub const MAX_LINES: usize = 512;
/// How much server text goes into an error or a log line, in characters.
pub const SHOWN_TEXT: usize = 200;

/// One reply: its code and the text of its lines (the code and separator cut off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The text of every line, in order; the last one is the final line's.
    pub lines: Vec<String>,
}

impl Reply {
    /// The final line's text.
    pub fn text(&self) -> &str {
        self.lines.last().map_or("", String::as_str)
    }

    /// The final line's text, escaped and bounded for an error or a log line.
    pub fn shown(&self) -> String {
        shown(self.text())
    }

    /// The first digit: 1 preliminary, 2 complete, 3 more needed, 4 and 5 refused.
    pub fn class(&self) -> u16 {
        self.code / 100
    }
}

/// Server text made safe to show: control characters escaped, at most [`SHOWN_TEXT`]
/// characters.
pub fn shown(text: &str) -> String {
    imagecast_shared::text::escape_bounded(text, SHOWN_TEXT).into_owned()
}

/// Splits a reply line into its code, whether more lines follow, and its text; `None` when
/// it does not start with three digits and a space or `-`.
pub fn split_line(line: &str) -> Option<(u16, bool, &str)> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = line[..3].parse().ok()?;
    match b.get(3) {
        None => Some((code, false, "")),
        Some(b' ') => Some((code, false, &line[4..])),
        Some(b'-') => Some((code, true, &line[4..])),
        Some(_) => None,
    }
}

/// Reads one line (without its CR LF), at most [`MAX_LINE`] bytes; `None` at the end of the
/// stream.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    step: &str,
) -> Result<Option<String>, HylafaxError> {
    let mut buf = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|source| HylafaxError::Io {
            step: step.to_owned(),
            source,
        })?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() > MAX_LINE {
            return Err(HylafaxError::TooLarge {
                what: format!("a reply line ({step})"),
                limit: MAX_LINE,
            });
        }
        // The stream ended inside a line: the connection is gone.
        return Ok(None);
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Reads one whole reply, single- or multi-line.
pub async fn read_reply<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    step: &str,
) -> Result<Reply, HylafaxError> {
    let closed = || HylafaxError::Closed {
        step: step.to_owned(),
    };
    let first = read_line(reader, step).await?.ok_or_else(closed)?;
    let Some((code, mut more, text)) = split_line(&first) else {
        return Err(HylafaxError::Protocol(format!(
            "{step}: {:?} is not a reply line",
            shown(&first)
        )));
    };
    let mut reply = Reply {
        code,
        lines: vec![text.to_owned()],
    };
    while more {
        if reply.lines.len() >= MAX_LINES {
            return Err(HylafaxError::TooLarge {
                what: format!("a reply of more than {MAX_LINES} lines ({step})"),
                limit: MAX_LINES * MAX_LINE,
            });
        }
        let line = read_line(reader, step).await?.ok_or_else(closed)?;
        match split_line(&line) {
            Some((c, false, text)) if c == code => {
                reply.lines.push(text.to_owned());
                more = false;
            }
            Some((c, true, text)) if c == code => reply.lines.push(text.to_owned()),
            _ => reply.lines.push(line),
        }
    }
    Ok(reply)
}

/// The value after `key` in a reply text, up to the next blank, with trailing punctuation
/// cut: `jobid` in `New job created: jobid: 12 groupid: 12.` is `12`.
pub fn value_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find(&key.to_ascii_lowercase())? + key.len();
    let rest = text[at..].trim_start();
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let value = rest[..end].trim_end_matches(['.', ',', ')', ';']);
    (!value.is_empty()).then_some(value)
}

/// The port of a `227 Entering passive mode (h1,h2,h3,h4,p1,p2)` reply.
pub fn passive_port(text: &str) -> Option<u16> {
    let open = text.find('(')?;
    let close = open + text[open..].find(')')?;
    let numbers: Vec<u8> = text[open + 1..close]
        .split(',')
        .map(|n| n.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .ok()?;
    match numbers.as_slice() {
        [_, _, _, _, hi, lo] => Some(u16::from(*hi) << 8 | u16::from(*lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replies as hfaxd 6.0.7 (Debian 12) sent them in a recorded session.
    #[tokio::test]
    async fn reads_single_and_multi_line_replies() {
        let wire = b"220 vm server (HylaFAX (tm) Version 6.0.7) ready.\r\n\
213-TIFF docq/doc2.tif.2\r\n213 End of documents.\r\n\
214-The following commands are recognized (* =>'s unimplemented).\r\n   ABOR            IDLE\r\n214 Direct comments to FaxMaster@vm.\r\n";
        let mut r = tokio::io::BufReader::new(&wire[..]);
        let a = read_reply(&mut r, "t").await.unwrap();
        assert_eq!(a.code, 220);
        assert_eq!(a.text(), "vm server (HylaFAX (tm) Version 6.0.7) ready.");
        let b = read_reply(&mut r, "t").await.unwrap();
        assert_eq!((b.code, b.lines.len()), (213, 2));
        assert_eq!(b.lines[0], "TIFF docq/doc2.tif.2");
        let c = read_reply(&mut r, "t").await.unwrap();
        assert_eq!((c.code, c.lines.len()), (214, 3));
        assert_eq!(c.lines[1], "   ABOR            IDLE");
        assert!(matches!(
            read_reply(&mut r, "t").await,
            Err(HylafaxError::Closed { .. })
        ));
    }

    #[tokio::test]
    async fn refuses_garbage_and_overlong_lines() {
        let mut r = tokio::io::BufReader::new(&b"hello\r\n"[..]);
        assert!(matches!(
            read_reply(&mut r, "t").await,
            Err(HylafaxError::Protocol(_))
        ));
        let long = format!("200 {}\r\n", "x".repeat(MAX_LINE + 10));
        let mut r = tokio::io::BufReader::new(long.as_bytes());
        assert!(matches!(
            read_reply(&mut r, "t").await,
            Err(HylafaxError::TooLarge { .. })
        ));
        let mut endless = String::from("213-a\r\n");
        for _ in 0..MAX_LINES + 5 {
            endless.push_str("213-b\r\n");
        }
        let mut r = tokio::io::BufReader::new(endless.as_bytes());
        assert!(matches!(
            read_reply(&mut r, "t").await,
            Err(HylafaxError::TooLarge { .. })
        ));
    }

    #[test]
    fn finds_values_in_reply_texts() {
        let t = "New job created: jobid: 12 groupid: 7.";
        assert_eq!(value_after(t, "jobid:"), Some("12"));
        assert_eq!(value_after(t, "groupid:"), Some("7"));
        let f = "FILE: /tmp/doc3.tif (Opening new data connection).";
        assert_eq!(value_after(f, "FILE:"), Some("/tmp/doc3.tif"));
        assert_eq!(value_after("Job 3 submitted.", "jobid:"), None);
        assert_eq!(
            passive_port("Entering passive mode (127,0,0,1,188,49)"),
            Some(188 * 256 + 49)
        );
        assert_eq!(
            passive_port("Entering passive mode (127,0,0,1,300,49)"),
            None
        );
        assert_eq!(passive_port("Entering passive mode"), None);
        assert_eq!(shown("a\u{1b}[31mb"), "a\\u{1b}[31mb");
    }
}
