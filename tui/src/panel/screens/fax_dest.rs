//! The fax destination screen (FIG. 7 modes 2 and 4; issue 12): the ten keys type a number,
//! `#` adds it to the list (several numbers), `*` switches the ten keys to the phone book,
//! where a number key ticks that entry; Start scans the ADF (or takes the stored image) and
//! sends.

use imagecast_shared::fax::FaxBookEntry;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{chrome, peer_name};
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::fax::{FaxSend, FaxSource};
use crate::panel::keys::Key;

/// Most characters of a typed number.
pub const MAX_NUMBER: usize = 24;
/// Most numbers on one fax.
pub const MAX_NUMBERS: usize = 20;

/// The screen's state.
#[derive(Debug)]
pub struct FaxDest {
    /// Where the pages come from.
    pub source: FaxSource,
    /// The number being typed.
    pub typed: String,
    /// Numbers added with `#`.
    pub numbers: Vec<String>,
    /// The phone-book entries this user sees here.
    pub book: Vec<FaxBookEntry>,
    /// Entries ticked, by index.
    pub ticked: Vec<usize>,
    /// The ten keys tick phone-book entries rather than type a number.
    pub book_keys: bool,
    /// Gateways online now, of how many.
    pub online: (usize, usize),
}

impl FaxDest {
    /// The screen for `source`, with the phone book and the gateways' count.
    pub fn new(source: FaxSource, book: Vec<FaxBookEntry>, online: usize, gateways: usize) -> Self {
        Self {
            source,
            typed: String::new(),
            numbers: Vec::new(),
            book,
            ticked: Vec::new(),
            book_keys: false,
            online: (online, gateways),
        }
    }

    fn tick(&mut self, i: usize) -> Action {
        if i >= self.book.len() {
            return Action::Note(format!("The phone book has no entry {}", i + 1));
        }
        if let Some(at) = self.ticked.iter().position(|&t| t == i) {
            self.ticked.remove(at);
        } else {
            self.ticked.push(i);
        }
        Action::None
    }

    fn add_typed(&mut self) -> Option<Action> {
        if self.typed.is_empty() {
            return None;
        }
        if self.numbers.len() >= MAX_NUMBERS {
            return Some(Action::Note(format!(
                "At most {MAX_NUMBERS} numbers on one fax"
            )));
        }
        let n = std::mem::take(&mut self.typed);
        if !self.numbers.contains(&n) {
            self.numbers.push(n);
        }
        None
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Star => {
                self.book_keys = !self.book_keys;
                Action::None
            }
            // 1..9 are entries 1..9, 0 is the tenth.
            Key::Digit(d) if self.book_keys => self.tick(if d == 0 { 9 } else { d as usize - 1 }),
            Key::Digit(d) => {
                if self.typed.chars().count() < MAX_NUMBER {
                    self.typed.push(char::from(b'0' + d));
                }
                Action::None
            }
            Key::Pick(i) => self.tick(i),
            // `#` with nothing typed: the communication records.
            Key::Hash if self.typed.is_empty() => {
                Action::run(crate::panel::jobs::fax::FetchFaxRecords)
            }
            Key::Hash | Key::Tab => self.add_typed().unwrap_or(Action::None),
            Key::Backspace => {
                if self.typed.pop().is_none() {
                    self.numbers.pop();
                }
                Action::None
            }
            Key::Start => {
                if let Some(a) = self.add_typed() {
                    return a;
                }
                if self.numbers.is_empty() && self.ticked.is_empty() {
                    return Action::Note(
                        "Type a number (# adds it) or tick a phone-book entry (* then its number)"
                            .to_owned(),
                    );
                }
                Action::run(FaxSend {
                    source: self.source,
                    numbers: self.numbers.clone(),
                    books: self
                        .ticked
                        .iter()
                        .filter_map(|&i| self.book.get(i))
                        .map(|e| e.name.clone())
                        .collect(),
                })
            }
            Key::Reset => Action::Back,
            _ => Action::None,
        }
    }

    /// Draws the screen.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = match self.source {
            FaxSource::Adf => "Facsimile transmission: destinations".to_owned(),
            FaxSource::Stored(id) => format!("Fax stored image {id}: destinations"),
        };
        let hint = if self.book_keys {
            "Number keys tick entries. *: type numbers. Start sends."
        } else {
            "Type a number, # adds it (none: records). *: book."
        };
        let body = chrome(f, area, ctx, &title, hint);
        let mut lines = vec![
            Line::styled(
                format!(
                    "Number: {}{}",
                    self.typed,
                    if self.book_keys { "" } else { "_" }
                ),
                if self.book_keys {
                    ctx.theme.dim()
                } else {
                    ctx.theme.focus()
                },
            ),
            Line::from(if self.numbers.is_empty() {
                "To: (no number yet)".to_owned()
            } else {
                format!("To: {}", self.numbers.join(", "))
            }),
            Line::styled(
                format!(
                    "{} of {} fax gateway(s) online",
                    self.online.0, self.online.1
                ),
                ctx.theme.dim(),
            ),
            Line::styled(
                if self.book.is_empty() {
                    "Phone book: no entries for you here".to_owned()
                } else {
                    "Phone book (* then the entry's number):".to_owned()
                },
                if self.book_keys {
                    ctx.theme.focus()
                } else {
                    ctx.theme.text()
                },
            ),
        ];
        let first = body.y + lines.len() as u16;
        for (i, e) in self.book.iter().enumerate() {
            let key = if i < 9 {
                (i + 1).to_string()
            } else if i == 9 {
                "0".to_owned()
            } else {
                " ".to_owned()
            };
            lines.push(Line::from(format!(
                "[{}] {key}: {}  {}  {}",
                if self.ticked.contains(&i) { "x" } else { " " },
                peer_name(&e.name),
                peer_name(&e.number),
                crate::pc::fax::book_visibility(e),
            )));
        }
        let rows = Rect {
            y: first,
            height: (body.y + body.height).saturating_sub(first),
            ..body
        };
        super::hit_rows(ctx, rows, 0, self.book.len());
        f.render_widget(Paragraph::new(lines), body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::App;
    use crate::panel::jobs::Job;
    use crate::panel::screens::Screen;
    use crate::panel::test_support::{keys, logged_in, screen};

    fn book() -> Vec<FaxBookEntry> {
        vec![
            FaxBookEntry {
                name: "Acme Trading".into(),
                number: "0665550199".into(),
                shared: true,
                labels: vec![],
            },
            FaxBookEntry {
                name: "Acme (Mr Sato, direct)".into(),
                number: "0665550199".into(),
                shared: false,
                labels: vec!["user 1001".into()],
            },
        ]
    }

    fn at_dest() -> App {
        let mut a = logged_in();
        a.apply(Action::Push(Screen::FaxDest(FaxDest::new(
            FaxSource::Adf,
            book(),
            2,
            2,
        ))));
        a
    }

    fn dest(a: &App) -> &FaxDest {
        match a.screen() {
            Screen::FaxDest(d) => d,
            other => panic!("not the fax destination screen: {other:?}"),
        }
    }

    #[test]
    fn ten_keys_type_numbers_and_star_switches_to_the_phone_book() {
        let mut a = at_dest();
        keys(
            &mut a,
            &[Key::Digit(5), Key::Digit(5), Key::Hash, Key::Digit(7)],
        );
        assert_eq!(dest(&a).numbers, ["55"]);
        assert_eq!(dest(&a).typed, "7");
        keys(&mut a, &[Key::Star, Key::Digit(2), Key::Digit(9)]);
        assert_eq!(dest(&a).ticked, [1]);
        assert!(
            a.note
                .as_ref()
                .is_some_and(|(n, _)| n.contains("no entry 9"))
        );
        keys(&mut a, &[Key::Star, Key::Backspace, Key::Backspace]);
        assert!(dest(&a).typed.is_empty());
        assert!(
            dest(&a).numbers.is_empty(),
            "Backspace on an empty box removes the last number"
        );
        a.key(Key::Start);
        let jobs = a.take_jobs();
        assert!(
            matches!(&jobs[..], [Job::FaxSend(s)] if s.numbers.is_empty() && s.books == ["Acme (Mr Sato, direct)"]),
            "{jobs:?}"
        );
        assert!(matches!(a.screen(), Screen::FaxProgress(_)));
    }

    #[test]
    fn start_with_no_destination_says_why() {
        let mut a = at_dest();
        a.key(Key::Start);
        assert!(a.take_jobs().is_empty());
        assert!(
            a.note
                .as_ref()
                .is_some_and(|(n, _)| n.contains("Type a number"))
        );
        keys(&mut a, &[Key::Digit(1), Key::Start]);
        let jobs = a.take_jobs();
        assert!(
            matches!(&jobs[..], [Job::FaxSend(s)] if s.numbers == ["1"]),
            "{jobs:?}"
        );
    }

    #[test]
    fn snapshot_destinations() {
        let mut a = at_dest();
        keys(
            &mut a,
            &[
                Key::Digit(0),
                Key::Digit(3),
                Key::Hash,
                Key::Digit(6),
                Key::Star,
                Key::Digit(1),
            ],
        );
        insta::assert_snapshot!("fax_destinations", screen(&mut a));
    }
}
