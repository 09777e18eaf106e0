//! One destination group file (`*.rec`, FIG. 14–17), parsed without losing a byte.
//!
//! A [`RecFile`] keeps the file's exact bytes next to what they mean (group name, members,
//! problems), so that an edit made by registration or withdrawal changes only the edited line and
//! leaves the operator's comments, blank lines, order, line endings and BOM alone.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::GroupError;

/// Files larger than this are refused without being read (16 MiB, about 300,000 members).
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// The UTF-8 byte-order mark some Windows editors put at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How many problems one file reports at most; the rest are counted (a binary file dropped in
/// the directory must not flood the log).
pub const MAX_PROBLEMS: usize = 100;

/// How long a domain or line may be when quoted in a problem's reason.
const QUOTE_LIMIT: usize = 64;

/// Whether a problem makes something unusable or is only worth a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The line (or, in a header, the whole file) is ignored.
    Error,
    /// Everything is still used; the operator may want to fix it.
    Warning,
}

/// A problem in a group file, with the file name and the 1-based line number (0 for the file
/// as a whole), for the log, `imagecast-server check` and terminals that ask.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecProblem {
    /// The file's name inside the groups directory, e.g. `develop.rec`.
    pub file: String,
    /// 1-based line number, or 0 when the problem concerns the whole file.
    pub line: usize,
    /// Error (something is ignored) or warning (nothing is ignored).
    pub severity: Severity,
    /// What is wrong, in words an operator can act on.
    pub reason: String,
}

impl RecProblem {
    /// An error at `line` of `file`.
    pub fn error(file: impl Into<String>, line: usize, reason: impl Into<String>) -> Self {
        RecProblem {
            file: file.into(),
            line,
            severity: Severity::Error,
            reason: reason.into(),
        }
    }

    /// A warning at `line` of `file`.
    pub fn warning(file: impl Into<String>, line: usize, reason: impl Into<String>) -> Self {
        RecProblem {
            severity: Severity::Warning,
            ..RecProblem::error(file, line, reason)
        }
    }

    /// True for a warning, false for an error.
    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }
}

impl fmt::Display for RecProblem {
    /// `FILE:LINE: reason`, `FILE: reason` for line 0, `warning: ` before a warning's reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}: ", self.file, self.line)?;
        }
        if self.is_warning() {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// One destination of a group: a member line `domain;name`, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The network domain name (or IP address) as written in the file. Shared, so that a
    /// copy of a large file (a registration appends to one) costs no allocation per member.
    pub domain: Arc<str>,
    /// The destination name, everything after the first `;`.
    pub name: Arc<str>,
    /// The 1-based line it is on.
    pub line: usize,
}

/// One edit for [`RecFile::with_edits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecEdit<'a> {
    /// Append `domain;name` unless the domain is already a member.
    Add {
        /// Network domain name or IP address.
        domain: &'a str,
        /// Destination name.
        name: &'a str,
    },
    /// Remove the member with this domain (and any other line naming the same domain).
    Remove {
        /// Network domain name or IP address, compared case-insensitively.
        domain: &'a str,
    },
}

/// What one [`RecEdit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditOutcome {
    /// The member line was appended.
    Added,
    /// The domain was already a member; nothing changed.
    AlreadyMember,
    /// The member line was removed.
    Removed,
    /// The domain was not a member; nothing changed.
    NotMember,
    /// The edit was refused (bad domain or name); nothing changed.
    Invalid(String),
}

/// A line ending, kept per line so that a rewrite reproduces the file exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eol {
    /// The last line of a file without a final newline.
    None,
    Lf,
    CrLf,
}

impl Eol {
    fn bytes(self) -> &'static [u8] {
        match self {
            Eol::None => b"",
            Eol::Lf => b"\n",
            Eol::CrLf => b"\r\n",
        }
    }
}

/// Where a line lies in [`RecFile::text`], without its line ending.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    eol: Eol,
}

/// The character encoding of a group file. A file is UTF-8 when it decodes as UTF-8; otherwise
/// Shift_JIS (as saved by older Japanese editors and systems) when it decodes as Shift_JIS and
/// encodes back to exactly the same bytes, so that writing it back changes nothing but the
/// edited lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8, with or without a byte-order mark.
    Utf8,
    /// Shift_JIS (Windows code page 932, as the WHATWG Encoding Standard defines it).
    ShiftJis,
}

impl TextEncoding {
    /// The encoding's name as `check` prints it.
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::ShiftJis => "Shift_JIS",
        }
    }

    /// Text in this encoding, or `None` when a character has no code in it.
    fn encode(self, utf8: &[u8]) -> Option<Cow<'_, [u8]>> {
        match self {
            TextEncoding::Utf8 => Some(Cow::Borrowed(utf8)),
            TextEncoding::ShiftJis => {
                let text = std::str::from_utf8(utf8).ok()?;
                let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
                (!unmappable).then_some(bytes)
            }
        }
    }
}

/// The file's text as UTF-8 and the encoding it came in: Shift_JIS when the bytes are not UTF-8,
/// no line of them is UTF-8 with non-ASCII text (a UTF-8 file with one bad line stays UTF-8),
/// and they are Shift_JIS that round-trips exactly; UTF-8 otherwise (lines that are not valid
/// UTF-8 are then reported one by one).
fn decode(body: &[u8]) -> (Cow<'_, [u8]>, TextEncoding) {
    if std::str::from_utf8(body).is_ok() {
        return (Cow::Borrowed(body), TextEncoding::Utf8);
    }
    let utf8_text = body
        .split(|&b| b == b'\n')
        .any(|line| !line.is_ascii() && std::str::from_utf8(line).is_ok());
    if !utf8_text {
        if let Some(text) = decode_as(body, TextEncoding::ShiftJis) {
            return (Cow::Owned(text), TextEncoding::ShiftJis);
        }
    }
    (Cow::Borrowed(body), TextEncoding::Utf8)
}

/// `body` read as Shift_JIS, if it decodes and encodes back to exactly the same bytes.
fn decode_as(body: &[u8], encoding: TextEncoding) -> Option<Vec<u8>> {
    match encoding {
        TextEncoding::Utf8 => std::str::from_utf8(body).ok().map(|_| body.to_vec()),
        TextEncoding::ShiftJis => {
            let (text, malformed) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(body);
            if malformed {
                return None;
            }
            let (back, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&text);
            (!unmappable && back.as_ref() == body).then(|| text.into_owned().into_bytes())
        }
    }
}

/// A parsed group file that remembers its exact bytes.
///
/// Build one with [`RecFile::parse`]; a file whose header is broken is refused there, a file
/// with bad member lines is accepted and lists them in [`RecFile::problems`] (those lines are
/// ignored, the other members are used).
#[derive(Debug, Clone)]
pub struct RecFile {
    file_name: String,
    bom: bool,
    /// The encoding the file was read in, and is written back in.
    encoding: TextEncoding,
    /// The file's text after the BOM, as UTF-8 (transcoded from Shift_JIS when the file is).
    text: Vec<u8>,
    lines: Vec<Span>,
    group_name: String,
    declared_file_name: String,
    members: Vec<Member>,
    /// [`domain_key`] of each member → index in `members` (the key shares the member's
    /// domain when they are the same text, as they usually are).
    index: FastMap<Arc<str>, usize>,
    problems: Vec<RecProblem>,
    /// Bad member lines beyond [`MAX_PROBLEMS`], counted in the last problem.
    suppressed: usize,
    /// Identifies this content (clones share it: same content).
    id: u64,
    /// `(id, member count)` of the file this one was made from by appending lines.
    extends: Option<(u64, usize)>,
}

/// A new [`RecFile::id`].
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl RecFile {
    /// Parses the bytes of the file called `file_name` (its name in the groups directory).
    ///
    /// `Ok` when the header is sound: the file can be used, and [`problems`](Self::problems)
    /// lists the ignored member lines and the warnings. `Err` with every problem found when the
    /// file is unusable: line 1 or line 2 broken, or the file larger than [`MAX_FILE_SIZE`].
    pub fn parse(file_name: &str, bytes: &[u8]) -> Result<RecFile, Vec<RecProblem>> {
        Self::parse_in(file_name, bytes, None)
    }

    /// [`RecFile::parse`], reading the bytes in `encoding` (as an edit of a file does: it keeps
    /// the encoding the file was read in) when they are valid in it.
    pub fn parse_as(
        file_name: &str,
        bytes: &[u8],
        encoding: TextEncoding,
    ) -> Result<RecFile, Vec<RecProblem>> {
        Self::parse_in(file_name, bytes, Some(encoding))
    }

    fn parse_in(
        file_name: &str,
        bytes: &[u8],
        known: Option<TextEncoding>,
    ) -> Result<RecFile, Vec<RecProblem>> {
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(vec![RecProblem::error(
                file_name,
                0,
                format!(
                    "the file is {} bytes long, more than the limit of {} MiB",
                    bytes.len(),
                    MAX_FILE_SIZE / (1024 * 1024)
                ),
            )]);
        }
        let (bom, body) = match bytes.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, bytes),
        };
        let (text, encoding) = match known {
            _ if bom => (Cow::Borrowed(body), TextEncoding::Utf8),
            None => decode(body),
            Some(TextEncoding::Utf8) => (Cow::Borrowed(body), TextEncoding::Utf8),
            Some(enc) => match decode_as(body, enc) {
                Some(text) => (Cow::Owned(text), enc),
                None => decode(body),
            },
        };
        let text = text.into_owned();
        let lines = split_lines(&text);
        let mut problems = Vec::new();

        if lines.is_empty() {
            return Err(vec![RecProblem::error(
                file_name,
                1,
                "the file is empty; line 1 must be a '#' comment with the group name, \
                 e.g. '# product development-related places'",
            )]);
        }

        let mut fatal = false;
        let group_name = match header_comment(
            &text,
            &lines,
            0,
            "group name",
            "# product development-related places",
        )
        .and_then(check_group_name)
        {
            Ok(name) => name.to_owned(),
            Err(reason) => {
                fatal = true;
                problems.push(RecProblem::error(file_name, 1, reason));
                String::new()
            }
        };
        let declared_file_name =
            match header_comment(&text, &lines, 1, "file name", &format!("# {file_name}")) {
                Ok(name) => {
                    if name != file_name {
                        problems.push(RecProblem::warning(
                            file_name,
                            2,
                            format!(
                                "line 2 names the file {} but it is called {}",
                                quote(name),
                                quote(file_name)
                            ),
                        ));
                    }
                    name.to_owned()
                }
                Err(reason) => {
                    fatal = true;
                    problems.push(RecProblem::error(file_name, 2, reason));
                    String::new()
                }
            };

        let members = Vec::with_capacity(lines.len().saturating_sub(2));
        let index =
            FastMap::with_capacity_and_hasher(lines.len().saturating_sub(2), Default::default());
        let mut file = RecFile {
            file_name: file_name.to_owned(),
            bom,
            encoding,
            text,
            lines,
            group_name,
            declared_file_name,
            members,
            index,
            problems,
            suppressed: 0,
            id: next_id(),
            extends: None,
        };
        for i in 2..file.lines.len() {
            file.read_member_line(i);
        }
        file.report_suppressed();
        if fatal {
            return Err(file.problems);
        }
        Ok(file)
    }

    /// Takes line `i` (0-based, after the header) as a member, or records why it is not one.
    fn read_member_line(&mut self, i: usize) {
        let span = self.lines[i];
        let number = i + 1;
        let (file_name, problems, suppressed) =
            (&self.file_name, &mut self.problems, &mut self.suppressed);
        let Ok(line) = std::str::from_utf8(&self.text[span.start..span.end]) else {
            report(problems, suppressed, file_name, number, || {
                "neither UTF-8 nor Shift_JIS (save the file as UTF-8); line ignored".to_owned()
            });
            return;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        match parse_member(line) {
            Ok((domain, name, key)) => match self.index.get(key.as_ref()) {
                Some(&first) => {
                    let first = self.members[first].line;
                    report(problems, suppressed, file_name, number, || {
                        format!(
                            "duplicate domain {} (already on line {first}); line ignored",
                            quote(domain)
                        )
                    });
                }
                None => {
                    let domain: Arc<str> = Arc::from(domain);
                    let key = match key {
                        Cow::Borrowed(key) if key == &*domain => Arc::clone(&domain),
                        key => Arc::from(key.as_ref()),
                    };
                    self.index.insert(key, self.members.len());
                    self.members.push(Member {
                        domain,
                        name: Arc::from(name),
                        line: number,
                    });
                }
            },
            Err(reason) => report(problems, suppressed, file_name, number, || {
                format!("{reason}; line ignored")
            }),
        }
    }

    /// Adds the problem that counts the bad lines not listed, if there are any.
    fn report_suppressed(&mut self) {
        if self.suppressed > 0 {
            self.problems.push(RecProblem::error(
                &self.file_name,
                self.lines.len(),
                format!(
                    "{} more bad lines not listed (only the first {MAX_PROBLEMS} are); \
                     is this really a group file?",
                    self.suppressed
                ),
            ));
        }
    }

    /// Identifies this content: two files with the same id have the same content (a clone
    /// keeps the id; every parse or edit makes a new one).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// When this file was made by [`reparsed`](Self::reparsed) from another by appending member
    /// lines: that file's [`id`](Self::id) and member count, which are this file's first
    /// members, with the same problems.
    pub fn extends(&self) -> Option<(u64, usize)> {
        self.extends
    }

    /// The file's name in the groups directory (the one given to [`parse`](Self::parse)).
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The group name from line 1, trimmed.
    pub fn group_name(&self) -> &str {
        &self.group_name
    }

    /// The file name written on line 2, trimmed (may differ from [`file_name`](Self::file_name):
    /// that is a warning).
    pub fn declared_file_name(&self) -> &str {
        &self.declared_file_name
    }

    /// The usable members, in file order.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &Member> + DoubleEndedIterator {
        self.members.iter()
    }

    /// How many usable members the file has.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// How many lines the file has (headers, comments and blank lines included).
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// The member with this domain (case-insensitive; IP addresses compared by value).
    pub fn find(&self, domain: &str) -> Option<&Member> {
        self.index
            .get(domain_key(domain).as_ref())
            .map(|&i| &self.members[i])
    }

    /// Whether the domain is a member.
    pub fn contains(&self, domain: &str) -> bool {
        self.find(domain).is_some()
    }

    /// The ignored lines and the warnings, in line order (empty for a clean file).
    pub fn problems(&self) -> &[RecProblem] {
        &self.problems
    }

    /// The encoding the file was read in (and is written back in).
    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// The file's exact bytes (BOM included when it had one, in its own encoding).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + BOM.len());
        if self.bom {
            out.extend_from_slice(BOM);
        }
        match self.encoding.encode(&self.text) {
            Some(bytes) => out.extend_from_slice(&bytes),
            // Text read from Shift_JIS always encodes back (checked when it was read).
            None => out.extend_from_slice(&self.text),
        }
        out
    }

    /// Whether `bytes` are exactly this file's bytes, without building them (for a UTF-8
    /// file).
    pub fn same_bytes(&self, bytes: &[u8]) -> bool {
        if self.encoding != TextEncoding::Utf8 {
            return self.to_bytes() == bytes;
        }
        let body = if self.bom {
            match bytes.strip_prefix(BOM) {
                Some(rest) => rest,
                None => return false,
            }
        } else {
            bytes
        };
        body == self.text.as_slice()
    }

    /// A copy with `domain;name` appended after the last non-blank line, or an unchanged copy
    /// and `false` when the domain is already a member. The new line uses the file's line
    /// ending; a file without a final newline still has none afterwards.
    ///
    /// Refused with [`GroupError::InvalidMember`] when the domain is neither a DNS name nor an IP
    /// address or the name is empty or holds control characters.
    pub fn with_member_added(
        &self,
        domain: &str,
        name: &str,
    ) -> Result<(RecFile, bool), GroupError> {
        let (file, outcomes, changed) = self
            .with_edits(&[RecEdit::Add { domain, name }])
            .map_err(GroupError::Malformed)?;
        match outcomes.into_iter().next() {
            Some(EditOutcome::Invalid(reason)) => Err(GroupError::InvalidMember(reason)),
            _ => Ok((file, changed)),
        }
    }

    /// A copy without the member line for `domain` (and without any other line naming the same
    /// domain, such as an ignored duplicate, so that the domain is really gone), or an unchanged
    /// copy and `false` when it is not a member. Every other byte is kept.
    pub fn with_member_removed(&self, domain: &str) -> (RecFile, bool) {
        match self.with_edits(&[RecEdit::Remove { domain }]) {
            Ok((file, _, changed)) => (file, changed),
            // Removing a line can neither break the header nor grow the file.
            Err(_) => (self.clone(), false),
        }
    }

    /// Applies `edits` in order, as if one after the other, and builds the result once: the
    /// new file, one outcome per edit, and whether the bytes changed. This is what group commit
    /// needs: a batch of registrations costs one pass over the file.
    ///
    /// `Err` only when the result would be unusable (larger than [`MAX_FILE_SIZE`]).
    #[allow(clippy::type_complexity)]
    pub fn with_edits(
        &self,
        edits: &[RecEdit<'_>],
    ) -> Result<(RecFile, Vec<EditOutcome>, bool), Vec<RecProblem>> {
        let (outcomes, bytes) = self.apply(edits);
        match bytes {
            None => Ok((self.clone(), outcomes, false)),
            Some(bytes) => Ok((self.reparsed(&bytes)?, outcomes, true)),
        }
    }

    /// What `bytes`, the new bytes of this file after [`apply`](Self::apply), parse to: the
    /// same as [`RecFile::parse`], but when the edit only appended lines at the end (a batch of
    /// registrations) only those lines are read, the rest is taken from `self` (about a third
    /// of the cost of a parse of a 10,000-member file).
    pub fn reparsed(&self, bytes: &[u8]) -> Result<RecFile, Vec<RecProblem>> {
        let decoded;
        let body = match (self.bom, bytes.strip_prefix(BOM)) {
            (true, Some(body)) => Some(body),
            // An edit keeps the file's encoding: a UTF-8 file with a bad line is never re-read
            // as Shift_JIS because of it.
            (false, None) if self.encoding == TextEncoding::Utf8 => Some(bytes),
            (false, None) => match decode_as(bytes, self.encoding) {
                Some(text) => {
                    decoded = text;
                    Some(decoded.as_slice())
                }
                None => None,
            },
            _ => None,
        };
        let appends_only = |body: &[u8]| {
            bytes.len() as u64 <= MAX_FILE_SIZE
                && self.suppressed == 0
                && self.lines.last().is_some_and(|s| s.eol != Eol::None)
                && body.starts_with(&self.text)
        };
        let Some(body) = body.filter(|b| appends_only(b)) else {
            return RecFile::parse_as(&self.file_name, bytes, self.encoding);
        };
        let mut file = self.clone();
        file.id = next_id();
        file.extends = Some((self.id, self.members.len()));
        let start = file.text.len();
        file.text.extend_from_slice(&body[start..]);
        for span in split_lines(&body[start..]) {
            file.lines.push(Span {
                start: span.start + start,
                end: span.end + start,
                eol: span.eol,
            });
            file.read_member_line(file.lines.len() - 1);
        }
        file.report_suppressed();
        Ok(file)
    }

    /// [`with_edits`](Self::with_edits) without parsing the result: the outcomes, and the new
    /// bytes when they differ from the old ones. The header lines are never touched, so the new
    /// bytes parse whenever they fit in [`MAX_FILE_SIZE`].
    pub fn apply(&self, edits: &[RecEdit<'_>]) -> (Vec<EditOutcome>, Option<Vec<u8>>) {
        let mut outcomes = Vec::with_capacity(edits.len());
        // Original members taken out, and new members in the order they were added.
        let mut removed: FastSet<String> = FastSet::default();
        let mut appended: Vec<Option<String>> = Vec::new();
        let mut appended_at: FastMap<String, usize> = FastMap::default();

        for edit in edits {
            let outcome = match *edit {
                RecEdit::Add { domain, name } => match check_new_member(domain, name)
                    .and_then(|key| self.check_encodable(domain, name).map(|()| key))
                {
                    Err(reason) => EditOutcome::Invalid(reason),
                    Ok(key) => {
                        let original = self.index.contains_key(key.as_ref())
                            && !removed.contains(key.as_ref());
                        if original || appended_at.contains_key(key.as_ref()) {
                            EditOutcome::AlreadyMember
                        } else {
                            appended_at.insert(key.into_owned(), appended.len());
                            appended.push(Some(format!("{};{}", domain.trim(), name.trim())));
                            EditOutcome::Added
                        }
                    }
                },
                RecEdit::Remove { domain } => {
                    let key = domain_key(domain);
                    if let Some(at) = appended_at.remove(key.as_ref()) {
                        appended[at] = None;
                        EditOutcome::Removed
                    } else if self.index.contains_key(key.as_ref())
                        && removed.insert(key.into_owned())
                    {
                        EditOutcome::Removed
                    } else {
                        EditOutcome::NotMember
                    }
                }
            };
            outcomes.push(outcome);
        }

        if removed.is_empty() && appended.iter().all(Option::is_none) {
            return (outcomes, None);
        }

        // The ending for new lines: the one of the nearest line that has one.
        let eol = self
            .lines
            .iter()
            .rev()
            .map(|s| s.eol)
            .find(|&e| e != Eol::None)
            .unwrap_or(Eol::Lf);
        let final_newline = self.lines.last().is_none_or(|s| s.eol != Eol::None);

        let mut out: Vec<(&[u8], Eol)> = Vec::with_capacity(self.lines.len() + appended.len());
        for (i, span) in self.lines.iter().enumerate() {
            let bytes = &self.text[span.start..span.end];
            if i >= 2
                && !removed.is_empty()
                && line_domain_key(bytes).is_some_and(|k| removed.contains(k.as_ref()))
            {
                continue;
            }
            out.push((bytes, span.eol));
        }
        // New members go after the last non-blank line, so trailing blank lines stay trailing.
        let at = out
            .iter()
            .rposition(|(bytes, _)| !is_blank(bytes))
            .map_or(out.len(), |p| p + 1);
        out.splice(
            at..at,
            appended.iter().flatten().map(|line| (line.as_bytes(), eol)),
        );
        let last = out.len().saturating_sub(1);
        for (i, (line, e)) in out.iter_mut().enumerate() {
            if i < last && *e == Eol::None {
                // A line ending in a bare CR keeps it as text: CRLF after it, so the CR is
                // not read back as part of the new line ending.
                *e = if line.ends_with(b"\r") {
                    Eol::CrLf
                } else {
                    eol
                };
            } else if i == last {
                *e = match (final_newline, *e) {
                    (false, _) => Eol::None,
                    (true, Eol::None) => eol,
                    (true, e) => e,
                };
            }
        }

        let mut bytes = Vec::with_capacity(self.text.len() + BOM.len() + 64 * appended.len());
        if self.bom {
            bytes.extend_from_slice(BOM);
        }
        for (line, e) in &out {
            bytes.extend_from_slice(line);
            bytes.extend_from_slice(e.bytes());
        }
        if self.encoding != TextEncoding::Utf8 {
            // Every line came from the file or passed `check_encodable`.
            if let Some(encoded) = self.encoding.encode(&bytes) {
                bytes = encoded.into_owned();
            }
        }
        let changed = !self.same_bytes(&bytes);
        (outcomes, changed.then_some(bytes))
    }

    /// Refuses a new member line the file's encoding cannot hold.
    fn check_encodable(&self, domain: &str, name: &str) -> Result<(), String> {
        let line = format!("{};{}", domain.trim(), name.trim());
        match self.encoding.encode(line.as_bytes()) {
            Some(_) => Ok(()),
            None => Err(format!(
                "{} is a {} file and the destination name {} has characters {} cannot hold \
                 (save the file as UTF-8)",
                self.file_name,
                self.encoding.name(),
                quote(name.trim()),
                self.encoding.name()
            )),
        }
    }
}

/// FxHash, the hasher of rustc: several times faster than SipHash on short keys. The keys
/// hashed here come from the operator's files, not from the network, so hash flooding is not a
/// concern.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// Records a member-line problem unless the file already has [`MAX_PROBLEMS`].
fn report(
    problems: &mut Vec<RecProblem>,
    suppressed: &mut usize,
    file_name: &str,
    line: usize,
    reason: impl FnOnce() -> String,
) {
    if problems.len() < MAX_PROBLEMS {
        problems.push(RecProblem::error(file_name, line, reason()));
    } else {
        *suppressed += 1;
    }
}

pub use imagecast_shared::domain::domain_key;
use imagecast_shared::domain::parse_ip;

/// Splits into lines at `\n`, recording `\r\n` or `\n` (or none for a last line without one).
fn split_lines(text: &[u8]) -> Vec<Span> {
    let mut lines = Vec::with_capacity(text.len() / 40 + 2);
    let mut start = 0;
    while start < text.len() {
        match text[start..].iter().position(|&b| b == b'\n') {
            Some(offset) => {
                let newline = start + offset;
                let (end, eol) = if newline > start && text[newline - 1] == b'\r' {
                    (newline - 1, Eol::CrLf)
                } else {
                    (newline, Eol::Lf)
                };
                lines.push(Span { start, end, eol });
                start = newline + 1;
            }
            None => {
                lines.push(Span {
                    start,
                    end: text.len(),
                    eol: Eol::None,
                });
                start = text.len();
            }
        }
    }
    lines
}

/// The trimmed text of the `#` comment on header line `i` (0-based), or why it is not one.
fn header_comment<'t>(
    text: &'t [u8],
    lines: &[Span],
    i: usize,
    what: &str,
    example: &str,
) -> Result<&'t str, String> {
    let expected = format!(
        "line {} must be a '#' comment with the {what}, e.g. '{example}'",
        i + 1
    );
    let Some(span) = lines.get(i) else {
        return Err(format!("the file ends early: {expected}"));
    };
    let Ok(line) = std::str::from_utf8(&text[span.start..span.end]) else {
        return Err("neither UTF-8 nor Shift_JIS (save the file as UTF-8)".to_owned());
    };
    let line = line.trim();
    let Some(rest) = line.strip_prefix('#') else {
        return Err(format!("{expected}, not {}", quote(line)));
    };
    let content = rest.trim_start_matches('#').trim();
    if content.is_empty() {
        return Err(format!("the {what} is missing: {expected}"));
    }
    Ok(content)
}

/// Group names must not contain `;` (see the module doc) or control characters.
fn check_group_name(name: &str) -> Result<&str, String> {
    if name.contains(';') {
        return Err(format!(
            "the group name {} contains ';': line 1 must be '# group name', \
             not a member line",
            quote(name)
        ));
    }
    if has_control(name) {
        return Err(format!(
            "the group name {} contains control characters",
            quote(name)
        ));
    }
    Ok(name)
}

/// Splits a trimmed, non-comment line into domain, name and domain key, or says what is wrong.
fn parse_member(line: &str) -> Result<(&str, &str, Cow<'_, str>), String> {
    let Some((domain, name)) = line.split_once(';') else {
        return Err(format!(
            "no ';' between network domain name and destination name in {}",
            quote(line)
        ));
    };
    let domain = domain.trim();
    let name = name.trim();
    let key = check_domain(domain)?;
    check_name(domain, name)?;
    Ok((domain, name, key))
}

/// Validates a member given to an edit; the key on success.
fn check_new_member<'d>(domain: &'d str, name: &str) -> Result<Cow<'d, str>, String> {
    let domain = domain.trim();
    let key = check_domain(domain)?;
    check_name(domain, name.trim())?;
    Ok(key)
}

fn check_name(domain: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!(
            "the destination name after ';' is empty for {}",
            quote(domain)
        ));
    }
    if has_control(name) {
        return Err(format!(
            "the destination name {} contains control characters",
            quote(name)
        ));
    }
    Ok(())
}

/// Whether `s` contains a control character (C0, DEL or C1), byte-wise where it can.
fn has_control(s: &str) -> bool {
    let bytes = s.as_bytes();
    // C1 controls (U+0080..U+009F) are encoded as 0xC2 0x80..0x9F.
    bytes.iter().any(|&b| b < 0x20 || b == 0x7f)
        || (bytes.contains(&0xc2) && s.chars().any(char::is_control))
}

/// Checks that `domain` (trimmed) is an IPv4/IPv6 address or a plausible DNS name: labels of
/// 1–63 letters, digits and inner `-`, joined by dots, 253 characters at most, and not all
/// digits (that would be a mistyped IPv4 address). Returns its [`domain_key`].
fn check_domain(domain: &str) -> Result<Cow<'_, str>, String> {
    if domain.is_empty() {
        return Err("the network domain name before ';' is empty".to_owned());
    }
    if parse_ip(domain).is_some() {
        return Ok(domain_key(domain));
    }
    let not_a_name = || {
        format!(
            "{} is neither a network domain name nor an IP address",
            quote(domain)
        )
    };
    if domain.len() > 253 {
        return Err(format!("{}: longer than 253 characters", not_a_name()));
    }
    let mut all_digits = true;
    for label in domain.split('.') {
        let l = label.as_bytes();
        if l.is_empty() {
            return Err(format!(
                "{}: empty label (a leading, trailing or doubled '.')",
                not_a_name()
            ));
        }
        if l.len() > 63 {
            return Err(format!(
                "{}: a label is longer than 63 characters",
                not_a_name()
            ));
        }
        for &b in l {
            if !(b.is_ascii_alphanumeric() || b == b'-') {
                return Err(format!(
                    "{}: only letters, digits, '-' and '.' are allowed",
                    not_a_name()
                ));
            }
            if !b.is_ascii_digit() {
                all_digits = false;
            }
        }
        if l[0] == b'-' || l[l.len() - 1] == b'-' {
            return Err(format!("{}: a label starts or ends with '-'", not_a_name()));
        }
    }
    if all_digits {
        return Err(format!("{} is not a valid IPv4 address", quote(domain)));
    }
    Ok(domain_key(domain))
}

/// The domain key of a member-like line (no validation), for removing every line of a domain.
fn line_domain_key(bytes: &[u8]) -> Option<Cow<'_, str>> {
    let line = std::str::from_utf8(bytes).ok()?.trim();
    if line.starts_with('#') {
        return None;
    }
    let (domain, _) = line.split_once(';')?;
    let domain = domain.trim();
    (!domain.is_empty()).then(|| domain_key(domain))
}

fn is_blank(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| s.trim().is_empty())
}

/// `s` in double quotes with control characters escaped, cut at [`QUOTE_LIMIT`] characters.
pub(crate) fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DEVELOP: &str = "# product development-related places\n\
                           # develop.rec\n\
                           devl1.hqs.mei.co.jp;development department of the head office\n\
                           devl1.osk.mei.co.jp;development department, the Osaka branch\n";

    fn parse(name: &str, text: &str) -> RecFile {
        RecFile::parse(name, text.as_bytes()).unwrap()
    }

    fn errors(name: &str, text: &[u8]) -> Vec<RecProblem> {
        match RecFile::parse(name, text) {
            Ok(f) => f.problems().to_vec(),
            Err(p) => p,
        }
    }

    #[test]
    fn parses_the_seed_example_exactly() {
        let f = parse("develop.rec", DEVELOP);
        assert_eq!(f.group_name(), "product development-related places");
        assert_eq!(f.declared_file_name(), "develop.rec");
        assert_eq!(f.file_name(), "develop.rec");
        let members: Vec<_> = f
            .members()
            .map(|m| (&*m.domain, &*m.name, m.line))
            .collect();
        assert_eq!(
            members,
            [
                (
                    "devl1.hqs.mei.co.jp",
                    "development department of the head office",
                    3
                ),
                (
                    "devl1.osk.mei.co.jp",
                    "development department, the Osaka branch",
                    4
                ),
            ]
        );
        assert!(f.problems().is_empty());
        assert_eq!(f.to_bytes(), DEVELOP.as_bytes());
        assert_eq!(f.line_count(), 4);
        assert_eq!(
            &*f.find("DEVL1.OSK.mei.co.jp").unwrap().name,
            "development department, the Osaka branch"
        );
        assert!(f.find("devl2.osk.mei.co.jp").is_none());
    }

    #[test]
    fn tolerates_whitespace_comments_blanks_and_ip_addresses() {
        let text = "  #   sales  \n#develop.rec   \n\n  # a comment\n \
                    sale1.hqs.mei.co.jp ;  sales 1  \n\t\n192.168.0.7;printer\n\
                    fe80::1;v6;with;semicolons\n## trailing\n";
        let f = parse("develop.rec", text);
        assert_eq!(f.group_name(), "sales");
        assert!(f.problems().is_empty(), "{:?}", f.problems());
        let m: Vec<_> = f
            .members()
            .map(|m| (&*m.domain, &*m.name, m.line))
            .collect();
        assert_eq!(
            m,
            [
                ("sale1.hqs.mei.co.jp", "sales 1", 5),
                ("192.168.0.7", "printer", 7),
                ("fe80::1", "v6;with;semicolons", 8),
            ]
        );
        assert!(f.contains("FE80:0::1"));
        assert_eq!(f.to_bytes(), text.as_bytes());
    }

    #[test]
    fn double_hash_counts_as_comment_marker() {
        let f = parse("x.rec", "## sales\n# x.rec\n");
        assert_eq!(f.group_name(), "sales");
        assert_eq!(f.member_count(), 0);
    }

    #[test]
    fn header_problems_make_the_file_unusable_with_line_numbers() {
        for (text, line, needle) in [
            ("", 1, "empty"),
            ("# g\n", 2, "ends early"),
            ("# g", 2, "ends early"),
            ("a.jp;x\n# develop.rec\n", 1, "line 1 must be"),
            ("#   \n# develop.rec\n", 1, "group name is missing"),
            ("# a.jp;x\n# develop.rec\n", 1, "contains ';'"),
            ("# g\u{1b}[31m\n# develop.rec\n", 1, "control characters"),
            ("# g\na.jp;x\n", 2, "line 2 must be"),
            ("# g\n#\n", 2, "file name is missing"),
        ] {
            let problems = match RecFile::parse("develop.rec", text.as_bytes()) {
                Ok(_) => panic!("{text:?} parsed"),
                Err(p) => p,
            };
            assert_eq!(problems.len(), 1, "{text:?}: {problems:?}");
            assert_eq!(problems[0].line, line, "{text:?}: {problems:?}");
            assert_eq!(problems[0].severity, Severity::Error);
            assert!(
                problems[0].reason.contains(needle),
                "{text:?}: {}",
                problems[0]
            );
            assert_eq!(problems[0].file, "develop.rec");
        }
        // Both header lines broken: both reported, and member problems too.
        let p = errors("develop.rec", b"a.jp;x\nb.jp;y\nnosemicolon\n");
        assert_eq!(
            p.iter().map(|p| p.line).collect::<Vec<_>>(),
            [1, 2, 3],
            "{p:?}"
        );
    }

    #[test]
    fn invalid_utf8_header_is_reported_at_its_line() {
        let p = errors("develop.rec", b"# caf\xe9\n# develop.rec\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 1);
        assert!(p[0].reason.contains("UTF-8"));
        let p = errors("develop.rec", b"# g\n# develop.rec\xff\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 2);
        assert!(p[0].reason.contains("UTF-8"));
    }

    #[test]
    fn file_name_mismatch_is_a_warning_not_an_error() {
        let f = parse("develop.rec", "# g\n# develop2.rec\na.jp;A\n");
        assert_eq!(f.member_count(), 1);
        assert_eq!(f.declared_file_name(), "develop2.rec");
        let p = f.problems();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 2);
        assert!(p[0].is_warning());
        assert_eq!(
            p[0].to_string(),
            "develop.rec:2: warning: line 2 names the file \"develop2.rec\" but it is called \"develop.rec\""
        );
    }

    #[test]
    fn every_member_problem_is_reported_at_its_line_and_the_rest_is_used() {
        let text = b"# g\n# develop.rec\n\
            good.mei.co.jp;Good\n\
            no-semicolon.mei.co.jp\n\
            ;no domain\n\
            nodomainname.jp;\n\
            bad_underscore.jp;X\n\
            -lead.jp;X\n\
            a..b;X\n\
            GOOD.mei.co.jp;Again\n\
            caf\xe9.jp;X\n\
            1.2.3.400;X\n\
            ok.jp;bell\x07\n\
            last.jp;Last\n";
        let f = RecFile::parse("develop.rec", text).unwrap();
        let got: Vec<(usize, &str)> = f
            .problems()
            .iter()
            .map(|p| (p.line, p.reason.as_str()))
            .collect();
        let expected: [(usize, &str); 10] = [
            (4, "no ';'"),
            (5, "before ';' is empty"),
            (6, "after ';' is empty"),
            (7, "only letters, digits"),
            (8, "starts or ends with '-'"),
            (9, "empty label"),
            (
                10,
                "duplicate domain \"GOOD.mei.co.jp\" (already on line 3)",
            ),
            (11, "neither UTF-8 nor Shift_JIS"),
            (12, "not a valid IPv4 address"),
            (13, "control characters"),
        ];
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for ((line, reason), (want_line, want)) in got.iter().zip(expected) {
            assert_eq!(*line, want_line, "{reason}");
            assert!(reason.contains(want), "line {line}: {reason}");
            assert!(reason.ends_with("line ignored"), "{reason}");
        }
        assert!(f.problems().iter().all(|p| !p.is_warning()));
        let domains: Vec<_> = f.members().map(|m| &*m.domain).collect();
        assert_eq!(domains, ["good.mei.co.jp", "last.jp"]);
        assert_eq!(&*f.find("good.MEI.co.jp").unwrap().name, "Good");
        // Unusable lines are still kept byte for byte.
        assert_eq!(f.to_bytes(), text);
    }

    #[test]
    fn problems_are_capped_per_file() {
        let mut text = String::from("# g\n# x.rec\n");
        for _ in 0..1000 {
            text.push_str("garbage\n");
        }
        text.push_str("ok.jp;OK\n");
        let f = parse("x.rec", &text);
        let p = f.problems();
        assert_eq!(p.len(), MAX_PROBLEMS + 1);
        assert_eq!(p[MAX_PROBLEMS - 1].line, MAX_PROBLEMS + 2);
        assert_eq!(p[MAX_PROBLEMS].line, 1003);
        assert!(p[MAX_PROBLEMS].reason.starts_with("900 more bad lines"));
        assert!(f.contains("ok.jp"));
    }

    #[test]
    fn domain_length_limits() {
        let label63 = "a".repeat(63);
        let ok = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(ok.len(), 253);
        assert!(check_domain(&ok).is_ok());
        let too_long = format!("{ok}c");
        assert!(check_domain(&too_long).unwrap_err().contains("253"));
        let label64 = format!("{}.jp", "a".repeat(64));
        assert!(check_domain(&label64).unwrap_err().contains("63"));
        assert!(check_domain("localhost").is_ok());
        assert!(check_domain("2001:db8::1").is_ok());
        assert!(check_domain("a.jp.").is_err());
        assert!(check_domain("[::1]").is_err());
        // Long quotes are cut.
        assert!(check_domain(&"x_".repeat(500)).unwrap_err().len() < 200);
    }

    #[test]
    fn control_characters_are_found_in_any_range() {
        assert!(!has_control("営業所 sales, dept. 3"));
        assert!(has_control("tab\there"));
        assert!(has_control("del\u{7f}"));
        assert!(has_control("next line\u{85}"));
        assert!(!has_control("\u{a0}non-breaking space"));
    }

    #[test]
    fn appended_registrations_are_read_without_a_full_parse() {
        let f = parse("develop.rec", DEVELOP);
        let (_, bytes) = f.apply(&[
            RecEdit::Add {
                domain: "new1.osk.mei.co.jp",
                name: "new one",
            },
            RecEdit::Add {
                domain: "New2.osk.mei.co.jp",
                name: "new two",
            },
        ]);
        let bytes = bytes.unwrap();
        let g = f.reparsed(&bytes).unwrap();
        assert_eq!(g.extends(), Some((f.id(), f.member_count())));
        assert_ne!(g.id(), f.id());
        assert_eq!(g.to_bytes(), bytes);
        assert_eq!(g.member_count(), f.member_count() + 2);
        assert_eq!(g.find("new2.osk.mei.co.jp").unwrap().line, 6);
        // A withdrawal rewrites lines in the middle: parsed in full.
        let (_, bytes) = g.apply(&[RecEdit::Remove {
            domain: "devl1.hqs.mei.co.jp",
        }]);
        let h = g.reparsed(&bytes.unwrap()).unwrap();
        assert_eq!(h.extends(), None);
        assert_eq!(h.member_count(), g.member_count() - 1);
        assert_eq!(h.find("new1.osk.mei.co.jp").unwrap().line, 4);
    }

    #[test]
    fn problem_display() {
        assert_eq!(
            RecProblem::error("all.rec", 0, "missing").to_string(),
            "all.rec: missing"
        );
        assert_eq!(
            RecProblem::error("x.rec", 7, "bad").to_string(),
            "x.rec:7: bad"
        );
    }

    #[test]
    fn too_large_is_refused() {
        let big = vec![b'#'; MAX_FILE_SIZE as usize + 1];
        let p = RecFile::parse("big.rec", &big).unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 0);
        assert!(p[0].reason.contains("16 MiB"));
    }

    #[test]
    fn add_appends_one_line_and_keeps_everything_else() {
        let text = "# product development-related places\n# develop.rec\n\
                    # head office\n\
                    devl1.hqs.mei.co.jp;development department of the head office\n\
                    \n\
                    # Osaka\n\
                    devl1.osk.mei.co.jp;development department, the Osaka branch\n";
        let f = parse("develop.rec", text);
        let (g, changed) = f
            .with_member_added(" sale3.hqs.mei.co.jp ", " sales 3 ")
            .unwrap();
        assert!(changed);
        let expected = format!("{text}sale3.hqs.mei.co.jp;sales 3\n");
        assert_eq!(String::from_utf8(g.to_bytes()).unwrap(), expected);
        assert_eq!(g.find("sale3.hqs.mei.co.jp").unwrap().line, 8);
        // Already a member (any case): unchanged.
        let (h, changed) = g.with_member_added("SALE3.hqs.mei.co.jp", "other").unwrap();
        assert!(!changed);
        assert_eq!(h.to_bytes(), g.to_bytes());
        // Invalid member refused.
        assert!(matches!(
            f.with_member_added("bad domain", "x"),
            Err(GroupError::InvalidMember(_))
        ));
        assert!(matches!(
            f.with_member_added("ok.jp", "two\nlines"),
            Err(GroupError::InvalidMember(_))
        ));
        assert!(matches!(
            f.with_member_added("ok.jp", "  "),
            Err(GroupError::InvalidMember(_))
        ));
    }

    #[test]
    fn add_goes_before_trailing_blank_lines() {
        let f = parse("x.rec", "# g\n# x.rec\na.jp;A\n\n\n");
        let (g, _) = f.with_member_added("b.jp", "B").unwrap();
        assert_eq!(g.to_bytes(), b"# g\n# x.rec\na.jp;A\nb.jp;B\n\n\n");
        // After a trailing comment, though (the comment is not blank).
        let f = parse("x.rec", "# g\n# x.rec\na.jp;A\n# end\n");
        let (g, _) = f.with_member_added("b.jp", "B").unwrap();
        assert_eq!(g.to_bytes(), b"# g\n# x.rec\na.jp;A\n# end\nb.jp;B\n");
    }

    #[test]
    fn remove_takes_out_only_that_line() {
        let text = "# g\n# x.rec\n# comment\na.jp;A\n\nB.jp;B\n# after b\nc.jp;C\n";
        let f = parse("x.rec", text);
        let (g, changed) = f.with_member_removed("b.JP");
        assert!(changed);
        assert_eq!(
            String::from_utf8(g.to_bytes()).unwrap(),
            "# g\n# x.rec\n# comment\na.jp;A\n\n# after b\nc.jp;C\n"
        );
        assert_eq!(g.find("c.jp").unwrap().line, 7);
        let (h, changed) = g.with_member_removed("b.jp");
        assert!(!changed);
        assert_eq!(h.to_bytes(), g.to_bytes());
    }

    #[test]
    fn remove_also_drops_duplicates_of_the_domain() {
        let f = parse("x.rec", "# g\n# x.rec\na.jp;A\nb.jp;B\nA.JP;again\na.jp;\n");
        assert_eq!(f.problems().len(), 2);
        let (g, changed) = f.with_member_removed("a.jp");
        assert!(changed);
        assert_eq!(g.to_bytes(), b"# g\n# x.rec\nb.jp;B\n");
        assert!(!g.contains("a.jp"));
        assert!(g.problems().is_empty());
    }

    #[test]
    fn crlf_bom_and_missing_final_newline_survive_edits() {
        let text = b"\xEF\xBB\xBF# g\r\n# x.rec\r\na.jp;A\r\nb.jp;B";
        let f = RecFile::parse("x.rec", text).unwrap();
        assert_eq!(f.group_name(), "g");
        assert_eq!(f.member_count(), 2);
        assert_eq!(f.to_bytes(), text);
        assert!(f.same_bytes(text));
        assert!(!f.same_bytes(&text[3..]));

        let (g, _) = f.with_member_added("c.jp", "C").unwrap();
        assert_eq!(
            g.to_bytes(),
            b"\xEF\xBB\xBF# g\r\n# x.rec\r\na.jp;A\r\nb.jp;B\r\nc.jp;C"
        );
        let (h, _) = g.with_member_removed("c.jp");
        assert_eq!(h.to_bytes(), text);
        let (i, _) = f.with_member_removed("a.jp");
        assert_eq!(i.to_bytes(), b"\xEF\xBB\xBF# g\r\n# x.rec\r\nb.jp;B");
        let (j, _) = f.with_member_removed("b.jp");
        assert_eq!(j.to_bytes(), b"\xEF\xBB\xBF# g\r\n# x.rec\r\na.jp;A");

        // CRLF with a final newline.
        let f = RecFile::parse("x.rec", b"# g\r\n# x.rec\r\n").unwrap();
        let (g, _) = f.with_member_added("a.jp", "A").unwrap();
        assert_eq!(g.to_bytes(), b"# g\r\n# x.rec\r\na.jp;A\r\n");
        // Header only, no final newline.
        let f = RecFile::parse("x.rec", b"# g\n# x.rec").unwrap();
        let (g, _) = f.with_member_added("a.jp", "A").unwrap();
        assert_eq!(g.to_bytes(), b"# g\n# x.rec\na.jp;A");
    }

    #[test]
    fn batch_edits_apply_in_order_with_one_outcome_each() {
        let f = parse("x.rec", "# g\n# x.rec\na.jp;A\n");
        let (g, outcomes, changed) = f
            .with_edits(&[
                RecEdit::Add {
                    domain: "b.jp",
                    name: "B",
                },
                RecEdit::Add {
                    domain: "B.jp",
                    name: "B",
                },
                RecEdit::Remove { domain: "a.jp" },
                RecEdit::Remove { domain: "a.jp" },
                RecEdit::Add {
                    domain: "c.jp",
                    name: "C",
                },
                RecEdit::Remove { domain: "c.jp" },
                RecEdit::Add {
                    domain: "a.jp",
                    name: "A2",
                },
                RecEdit::Remove { domain: "zz.jp" },
                RecEdit::Add {
                    domain: "no good",
                    name: "x",
                },
            ])
            .unwrap();
        assert!(changed);
        assert_eq!(
            &outcomes[..8],
            [
                EditOutcome::Added,
                EditOutcome::AlreadyMember,
                EditOutcome::Removed,
                EditOutcome::NotMember,
                EditOutcome::Added,
                EditOutcome::Removed,
                EditOutcome::Added,
                EditOutcome::NotMember,
            ]
        );
        assert!(matches!(outcomes[8], EditOutcome::Invalid(_)));
        assert_eq!(g.to_bytes(), b"# g\n# x.rec\nb.jp;B\na.jp;A2\n");

        // Edits that cancel out leave the bytes alone.
        let (h, outcomes, changed) = f
            .with_edits(&[
                RecEdit::Add {
                    domain: "d.jp",
                    name: "D",
                },
                RecEdit::Remove { domain: "d.jp" },
            ])
            .unwrap();
        assert!(!changed);
        assert_eq!(outcomes, [EditOutcome::Added, EditOutcome::Removed]);
        assert_eq!(h.to_bytes(), f.to_bytes());
    }

    #[test]
    fn parses_ten_thousand_members() {
        let mut text = String::from("# big\n# big.rec\n");
        for i in 0..10_000 {
            text.push_str(&format!(
                "host{i}.branch{}.mei.co.jp;Destination {i}\n",
                i % 50
            ));
        }
        let f = parse("big.rec", &text);
        assert_eq!(f.member_count(), 10_000);
        assert!(f.problems().is_empty());
        assert_eq!(f.find("HOST9999.branch49.mei.co.jp").unwrap().line, 10_002);
    }

    /// A group file saved in Shift_JIS by an older Japanese system: read with its names
    /// right, edited, and written back in Shift_JIS with its own line endings.
    mod shift_jis {
        use super::*;

        fn sjis(text: &str) -> Vec<u8> {
            let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
            assert!(!unmappable);
            bytes.into_owned()
        }

        const FILE: &str = "# 開発関連部署\r\n# develop.rec\r\ndevl1.hqs.mei.co.jp;本社開発部\r\n";

        #[test]
        fn is_read_with_its_names() {
            let bytes = sjis(FILE);
            assert!(std::str::from_utf8(&bytes).is_err(), "really not UTF-8");
            let f = RecFile::parse("develop.rec", &bytes).unwrap();
            assert_eq!(f.encoding(), TextEncoding::ShiftJis);
            assert_eq!(f.group_name(), "開発関連部署");
            let m = f.find("devl1.hqs.mei.co.jp").unwrap();
            assert_eq!(&*m.name, "本社開発部");
            assert!(f.problems().is_empty(), "{:?}", f.problems());
            assert_eq!(f.to_bytes(), bytes);
            assert!(f.same_bytes(&bytes));
            assert!(!f.same_bytes(FILE.as_bytes()));
        }

        #[test]
        fn registrations_are_written_back_in_shift_jis() {
            let bytes = sjis(FILE);
            let f = RecFile::parse("develop.rec", &bytes).unwrap();
            let (g, changed) = f
                .with_member_added("devl1.osk.mei.co.jp", "大阪支店開発部")
                .unwrap();
            assert!(changed);
            let want = sjis(&format!("{FILE}devl1.osk.mei.co.jp;大阪支店開発部\r\n"));
            assert_eq!(g.to_bytes(), want);
            assert_eq!(g.encoding(), TextEncoding::ShiftJis);
            assert_eq!(g.member_count(), 2);
            // What the writer does: the edit's bytes, parsed again, are the same file.
            let (_, edited) = f.apply(&[RecEdit::Add {
                domain: "devl1.osk.mei.co.jp",
                name: "大阪支店開発部",
            }]);
            let edited = edited.unwrap();
            assert_eq!(edited, want);
            let again = f.reparsed(&edited).unwrap();
            assert_eq!(again.to_bytes(), want);
            assert_eq!(
                &*again.find("devl1.osk.mei.co.jp").unwrap().name,
                "大阪支店開発部"
            );
            // And withdrawn again: the original bytes.
            let (h, removed) = g.with_member_removed("devl1.osk.mei.co.jp");
            assert!(removed);
            assert_eq!(h.to_bytes(), bytes);
        }

        #[test]
        fn a_name_shift_jis_cannot_hold_is_refused_with_the_reason() {
            let f = RecFile::parse("develop.rec", &sjis(FILE)).unwrap();
            let err = f
                .with_member_added("devl1.osk.mei.co.jp", "서울 지사")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("develop.rec is a Shift_JIS file") && err.contains("UTF-8"),
                "{err}"
            );
        }

        /// A UTF-8 file with one bad line is not taken for Shift_JIS (its bytes may well be
        /// valid Shift_JIS), and an edit never flips it (found by the property tests).
        #[test]
        fn a_utf8_file_with_a_bad_line_stays_utf8_through_edits() {
            let mut bytes = "# g\n# x.rec\na.example;Café\nb.example;ok\n"
                .as_bytes()
                .to_vec();
            bytes.extend_from_slice(b"c.example;\x82\xa0\n");
            let f = RecFile::parse("x.rec", &bytes).unwrap();
            assert_eq!(f.encoding(), TextEncoding::Utf8);
            assert_eq!(&*f.find("a.example").unwrap().name, "Café");
            let (g, removed) = f.with_member_removed("a.example");
            assert!(removed);
            assert_eq!(g.encoding(), TextEncoding::Utf8, "the edit kept UTF-8");
            let (h, added) = g.with_member_added("d.example", "Zürich").unwrap();
            assert!(added);
            assert_eq!(&*h.find("d.example").unwrap().name, "Zürich");
        }

        #[test]
        fn bytes_that_are_neither_are_reported_by_line() {
            // 0x82 0x20 is no Shift_JIS character, and no UTF-8.
            let bytes = b"# g\n# develop.rec\na.example;ok\nb.example;\x82 bad\n";
            let f = RecFile::parse("develop.rec", bytes).unwrap();
            assert_eq!(f.encoding(), TextEncoding::Utf8);
            assert_eq!(f.member_count(), 1);
            assert!(
                f.problems()[0]
                    .to_string()
                    .contains("develop.rec:4: neither UTF-8 nor Shift_JIS"),
                "{:?}",
                f.problems()
            );
        }
    }
}
