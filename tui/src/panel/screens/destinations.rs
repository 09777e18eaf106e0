//! FIG. 9: destination selection. "0: To specify individual destinations" is drawn by the
//! panel itself; the server's groups follow, numbered from 1. Several numbers may be entered;
//! Start scans and distributes.

use std::collections::BTreeSet;

use imagecast_shared::msg::GroupEntry;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{ListItem, ListState, Paragraph};

use super::{chrome, hit_rows, peer_name};
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::ImageSource;
use crate::panel::jobs::server::{Distribute, FetchDestinations};
use crate::panel::keys::Key;
use crate::panel::strings;

/// FIG. 9's state.
#[derive(Debug)]
pub struct Destinations {
    /// The image to distribute.
    pub source: ImageSource,
    /// The server's groups, numbered from 1.
    pub groups: Vec<GroupEntry>,
    /// Chosen groups (indices into `groups`).
    pub chosen: BTreeSet<usize>,
    /// Individual destinations ticked on FIG. 10.
    pub individuals: Vec<String>,
    /// Keep the scan in memory and print a mark sheet.
    pub keep: bool,
    /// Row 0 is the individual entry, row `i + 1` group `i`.
    pub list: ListState,
    /// Digits typed so far of a number that may grow.
    pub typed: Option<usize>,
    /// The last complaint.
    pub error: Option<String>,
}

impl Destinations {
    /// The dialog for `source` with the server's `groups`.
    pub fn new(source: ImageSource, groups: Vec<GroupEntry>) -> Self {
        let mut list = ListState::default();
        list.select(Some(0));
        Self {
            source,
            groups,
            chosen: BTreeSet::new(),
            individuals: Vec::new(),
            keep: false,
            list,
            typed: None,
            error: None,
        }
    }

    fn toggle(&mut self, group: usize) {
        if !self.chosen.remove(&group) {
            self.chosen.insert(group);
        }
        self.list.select(Some(group + 1));
        self.error = None;
    }

    fn individual(&self) -> Action {
        Action::run(FetchDestinations)
    }

    /// Start: distribute to what was chosen.
    pub fn start(&mut self) -> Action {
        if self.chosen.is_empty() && self.individuals.is_empty() {
            self.error = Some(
                "Choose at least one group with its number, or individual destinations with 0."
                    .into(),
            );
            return Action::None;
        }
        Action::run(Distribute {
            source: self.source.clone(),
            groups: self
                .chosen
                .iter()
                .filter_map(|&i| self.groups.get(i).map(|g| g.name.clone()))
                .collect(),
            destinations: self.individuals.clone(),
            keep: self.keep && self.source == ImageSource::Adf,
        })
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        let n = self.groups.len();
        match key {
            Key::Digit(d) => {
                let value = self.typed.unwrap_or(0) * 10 + d as usize;
                if self.typed.is_none() && value == 0 {
                    return self.individual();
                }
                if value == 0 || value > n {
                    self.typed = None;
                    self.error = Some(format!("There is no group {value}."));
                } else if value * 10 > n {
                    self.typed = None;
                    self.toggle(value - 1);
                } else {
                    self.typed = Some(value);
                    self.list.select(Some(value));
                }
            }
            Key::Up => {
                self.typed = None;
                self.list.select_previous();
            }
            Key::Down => {
                self.typed = None;
                if self.list.selected().is_some_and(|i| i < n) {
                    self.list.select_next();
                }
            }
            Key::Space | Key::Pick(_) => {
                let row = match key {
                    Key::Pick(i) => Some(i),
                    _ => self.typed.take().or(self.list.selected()),
                };
                match row {
                    Some(0) => return self.individual(),
                    Some(r) if r <= n => self.toggle(r - 1),
                    _ => {}
                }
            }
            Key::Star if self.source == ImageSource::Adf => {
                self.keep = !self.keep;
            }
            Key::Star => {
                return Action::Note(
                    "* keeps a scan; this image is in the image store already.".to_owned(),
                );
            }
            Key::Backspace => self.typed = None,
            Key::Start => {
                if let Some(v) = self.typed.take() {
                    self.toggle(v - 1);
                    return Action::None;
                }
                return self.start();
            }
            Key::Reset => return Action::Back,
            _ => {}
        }
        Action::None
    }

    /// Draws the dialog.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = match &self.source {
            ImageSource::Adf => strings::DEST_TITLE.to_owned(),
            ImageSource::Stored(id) => format!("{} for image {id}", strings::DEST_TITLE),
        };
        // `*` keeps a scan; a stored image is kept already.
        let hint = match &self.source {
            ImageSource::Adf => "Numbers tick, 0 individual, * keep, Start sends.",
            ImageSource::Stored(_) => "Numbers tick, 0 individual, Start sends.",
        };
        let body = chrome(f, area, ctx, &title, hint);
        let mut footer = Vec::new();
        if let Some(t) = self.typed {
            footer.push(Line::raw(format!("Number: {t}_  (next digit, or Space)")));
        } else if let Some(e) = &self.error {
            // The message wraps: it is never cut off at the LCD's edge.
            for l in super::wrap(e, body.width as usize) {
                footer.push(Line::styled(l, ctx.theme.error()));
            }
        } else {
            footer.push(Line::raw(""));
        }
        let keep_row = footer.len() as u16;
        if self.source == ImageSource::Adf {
            let mark = if self.keep { "[x]" } else { "[ ]" };
            footer.push(Line::raw(format!("{mark} {}", strings::KEEP_COPY)));
        }
        let footer_h = (footer.len() as u16).max(2).min(body.height);
        let list_area = Rect {
            height: body.height - footer_h,
            ..body
        };
        let mut items = vec![ListItem::new(format!(
            "{}{}",
            strings::INDIVIDUAL_ENTRY,
            if self.individuals.is_empty() {
                String::new()
            } else {
                format!(" ({} ticked)", self.individuals.len())
            }
        ))];
        for (i, g) in self.groups.iter().enumerate() {
            let mark = if self.chosen.contains(&i) {
                "[x]"
            } else {
                "[ ]"
            };
            items.push(ListItem::new(Line::from(vec![
                Span::raw(format!("{mark} {}: {}", i + 1, peer_name(&g.name))),
                Span::styled(format!(" ({})", g.members), ctx.theme.dim()),
            ])));
        }
        let total = super::pick_list(f, ctx, list_area, items, &mut self.list);
        hit_rows(ctx, list_area, self.list.offset(), total);
        let footer_area = Rect {
            y: body.y + list_area.height,
            height: footer_h,
            ..body
        };
        if self.source == ImageSource::Adf && keep_row < footer_h {
            super::hit(
                ctx,
                Rect {
                    y: footer_area.y + keep_row,
                    height: 1,
                    ..footer_area
                },
                Key::Star,
            );
        }
        f.render_widget(Paragraph::new(footer), footer_area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::AppEvent;
    use crate::panel::jobs::{GroupsFor, Job, JobResult};
    use crate::panel::screens::Screen;
    use crate::panel::test_support::{fig09, keys, logged_in, screen, seed_destinations, the_job};

    #[test]
    fn destination_numbers_tick_groups_and_start_distributes_to_them() {
        let mut a = fig09(&[]);
        a.key(Key::Start);
        assert!(screen(&mut a).contains("Choose at least one group"));
        keys(
            &mut a,
            &[Key::Digit(2), Key::Digit(4), Key::Digit(9), Key::Star],
        );
        let s = screen(&mut a);
        assert!(s.contains("[x] 2: all sales offices"), "{s}");
        assert!(
            s.contains("[x] 4: product development-related places"),
            "{s}"
        );
        assert!(s.contains("There is no group 9."), "{s}");
        assert!(s.contains("[x] * Keep in memory"), "{s}");
        a.key(Key::Digit(0));
        assert!(matches!(the_job(&mut a), Job::FetchDestinations(_)));
        a.event(AppEvent::Job(JobResult::Destinations(seed_destinations())));
        keys(&mut a, &[Key::Down, Key::Down, Key::Space, Key::Pick(5)]);
        a.key(Key::Start);
        match the_job(&mut a) {
            Job::Distribute(Distribute {
                source,
                groups,
                destinations,
                keep,
            }) => {
                assert_eq!(source, ImageSource::Adf);
                assert_eq!(
                    groups,
                    ["all sales offices", "product development-related places"]
                );
                assert_eq!(destinations, ["devl1.hqs.mei.co.jp", "devl1.osk.mei.co.jp"]);
                assert!(keep);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(a.screen(), Screen::Progress(_)));
        assert!(a.busy.is_some());
        // A second job while one runs is refused with a note.
        a.key(Key::Stored);
        assert!(a.take_jobs().is_empty());
        assert!(a.note.as_ref().is_some_and(|n| n.0.contains("busy")));
        a.key(Key::Stop);
        assert!(matches!(the_job(&mut a), Job::Cancel));
    }

    #[test]
    fn many_groups_take_two_digit_numbers() {
        let mut a = logged_in();
        let groups: Vec<GroupEntry> = (1..=12)
            .map(|i| GroupEntry {
                name: format!("group {i}"),
                file: format!("g{i}.rec"),
                members: 1,
            })
            .collect();
        a.event(AppEvent::Job(JobResult::Groups {
            purpose: GroupsFor::Distribute(ImageSource::Adf),
            groups,
        }));
        keys(
            &mut a,
            &[
                Key::Digit(1),
                Key::Digit(2),
                Key::Digit(1),
                Key::Space,
                Key::Digit(7),
            ],
        );
        let s = screen(&mut a);
        assert!(s.contains("[x] 12: group 12"), "{s}");
        assert!(s.contains("[x] 1: group 1"), "{s}");
        assert!(s.contains("[x] 7: group 7"), "{s}");
        assert!(s.contains("[ ] 2: group 2"), "{s}");
    }

    #[test]
    fn fig09_at_80x24() {
        let mut a = fig09(&[Key::Digit(2), Key::Digit(4), Key::Star]);
        insta::assert_snapshot!("fig09_destinations", screen(&mut a));
    }
}
