//! FIG. 10: individual destinations from `all.rec`, each with a check box, scrolling.
//!
//! A row is "[x] name  domain". When it is too wide, the name is cut (ending in `…`) so the
//! domain stays readable: two terminals may share a name, never a domain.

use std::collections::BTreeSet;

use imagecast_shared::msg::Destination;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{ListItem, ListState};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::{chrome, hit_rows};
use crate::panel::app::{Action, Ctx, Returned};
use crate::panel::keys::Key;
use crate::panel::strings;

/// FIG. 10's state.
#[derive(Debug)]
pub struct Individual {
    /// Every destination.
    pub destinations: Vec<Destination>,
    /// Ticked rows.
    pub ticked: BTreeSet<usize>,
    /// The highlighted row.
    pub list: ListState,
}

impl Individual {
    /// The list, with `ticked` domains already ticked.
    pub fn new(destinations: Vec<Destination>, ticked: &[String]) -> Self {
        let ticked = destinations
            .iter()
            .enumerate()
            .filter(|(_, d)| ticked.iter().any(|t| t.eq_ignore_ascii_case(&d.domain)))
            .map(|(i, _)| i)
            .collect();
        let mut list = ListState::default();
        if !destinations.is_empty() {
            list.select(Some(0));
        }
        Self {
            destinations,
            ticked,
            list,
        }
    }

    fn toggle(&mut self, i: usize) {
        if i < self.destinations.len() && !self.ticked.remove(&i) {
            self.ticked.insert(i);
        }
    }

    fn domains(&self) -> Vec<String> {
        self.ticked
            .iter()
            .filter_map(|&i| self.destinations.get(i).map(|d| d.domain.clone()))
            .collect()
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        let n = self.destinations.len();
        match key {
            Key::Up => self.list.select_previous(),
            Key::Down if self.list.selected().is_some_and(|i| i + 1 < n) => {
                self.list.select_next();
            }
            Key::PageUp => self.list.scroll_up_by(8),
            Key::PageDown => {
                let next = self
                    .list
                    .selected()
                    .map_or(0, |i| (i + 8).min(n.saturating_sub(1)));
                self.list.select(Some(next));
            }
            Key::Space => {
                if let Some(i) = self.list.selected() {
                    self.toggle(i);
                }
            }
            Key::Pick(i) => {
                self.list.select(Some(i));
                self.toggle(i);
            }
            Key::Start => {
                return Action::Return(Returned::Individuals {
                    domains: self.domains(),
                    start: true,
                });
            }
            Key::Reset => {
                return Action::Return(Returned::Individuals {
                    domains: self.domains(),
                    start: false,
                });
            }
            _ => {}
        }
        Action::None
    }

    /// Draws the dialog.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = format!(
            "{} ({} of {} ticked)",
            strings::INDIVIDUAL_TITLE,
            self.ticked.len(),
            self.destinations.len()
        );
        let body = chrome(
            f,
            area,
            ctx,
            &title,
            "Space ticks, Start sends, Reset goes back.",
        );
        let items: Vec<ListItem> = self
            .destinations
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mark = if self.ticked.contains(&i) {
                    "[x]"
                } else {
                    "[ ]"
                };
                let (name, domain) = row(
                    &format!("{mark} {}", super::peer_name(&d.name)),
                    &format!("  {}", super::peer_name(&d.domain)),
                    usize::from(body.width),
                );
                ListItem::new(Line::from(vec![
                    Span::raw(name),
                    Span::styled(domain, ctx.theme.dim()),
                ]))
            })
            .collect();
        let total = super::pick_list(f, ctx, body, items, &mut self.list);
        hit_rows(ctx, body, self.list.offset(), total);
    }
}

/// The fewest columns of "[x] name" kept when the domain is too long to keep whole.
const MIN_HEAD: usize = 16;

/// A row's two parts, "[x] name" and "  domain", fitted to `width` columns: the name is cut
/// first, so the domain stays whole; a domain too long for that is cut after the first
/// [`MIN_HEAD`] columns of the name.
fn row(head: &str, tail: &str, width: usize) -> (String, String) {
    if head.width() + tail.width() <= width {
        return (head.to_owned(), tail.to_owned());
    }
    if width >= tail.width() + MIN_HEAD {
        return (cut(head, width - tail.width()), tail.to_owned());
    }
    let head = cut(head, MIN_HEAD.min(width));
    let room = width - head.width();
    (head, cut(tail, room))
}

/// `s` cut to at most `width` columns at a character boundary, ending in `…` when cut.
fn cut(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::{App, AppEvent};
    use crate::panel::jobs::JobResult;
    use crate::panel::test_support::{dest, draw, fig09, keys, screen, seed_destinations};

    /// FIG. 10 over FIG. 9 with groups 2 and 4 ticked.
    fn fig10(destinations: Vec<Destination>) -> App {
        let mut a = fig09(&[Key::Digit(2), Key::Digit(4), Key::Star]);
        a.event(AppEvent::Job(JobResult::Destinations(destinations)));
        a
    }

    #[test]
    fn fig10_at_80x24() {
        let mut a = fig10(seed_destinations());
        keys(
            &mut a,
            &[
                Key::Down,
                Key::Down,
                Key::Space,
                Key::Down,
                Key::Down,
                Key::Space,
            ],
        );
        insta::assert_snapshot!("fig10_individual_destinations", screen(&mut a));
    }

    #[test]
    fn long_names_are_cut_with_an_ellipsis_and_keep_the_domain() {
        let mut a = fig10(vec![
            dest(
                "sale1.osk.mei.co.jp",
                "sales office of the Osaka branch, second floor, beside the lifts",
            ),
            dest(
                "kyo1.kyo.mei.co.jp",
                "京都支店の営業所、二階のエレベーターの横",
            ),
            dest(
                "a-very-long-domain-name.for-a-terminal.of-the-osaka.branch.mei.co.jp",
                "planning section",
            ),
            dest("sale1.ngy.mei.co.jp", "sales office, the Nagoya branch"),
        ]);
        insta::assert_snapshot!("fig10_long_names", screen(&mut a));
    }

    #[test]
    fn rows_are_cut_by_display_width_at_character_boundaries() {
        assert_eq!(
            row("[ ] short", "  a.example", 40),
            ("[ ] short".to_owned(), "  a.example".to_owned())
        );
        let (name, domain) = row("[ ] 京都支店の営業所", "  kyo1.kyo.mei.co.jp", 37);
        assert_eq!(domain, "  kyo1.kyo.mei.co.jp");
        assert_eq!(name, "[ ] 京都支店の営…");
        assert!(name.width() + domain.width() <= 37);
        let (name, domain) = row("[x] planning section", "  long.domain.example.com", 24);
        assert_eq!(name, "[x] planning se…");
        assert_eq!(domain, "  long.…");
        assert_eq!(cut("abc", 0), "");
        assert_eq!(cut("abcdef", 4), "abc…");
    }

    /// From 100 columns the LCD keeps room for every seed destination's name and domain in
    /// full, beside the key pad and the received pane.
    #[test]
    fn names_and_domains_are_whole_at_100x30() {
        let mut a = fig10(seed_destinations());
        let s = draw(&mut a, 100, 30);
        assert!(s.contains("[1]"), "the key pad is drawn:\n{s}");
        for d in seed_destinations() {
            assert!(
                s.contains(&format!("{}  {}", d.name, d.domain)),
                "{} cut:\n{s}",
                d.domain
            );
        }
    }
}
