//! FIG. 10: individual destinations from `all.rec`, each with a check box, scrolling.

use std::collections::BTreeSet;

use imagecast_shared::msg::Destination;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState};

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
                ListItem::new(Line::from(vec![
                    Span::raw(format!("{mark} {}", super::peer_name(&d.name))),
                    Span::styled(
                        format!("  {}", super::peer_name(&d.domain)),
                        ctx.theme.dim(),
                    ),
                ]))
            })
            .collect();
        let total = items.len();
        f.render_stateful_widget(
            List::new(items).highlight_style(ctx.theme.focus()),
            body,
            &mut self.list,
        );
        hit_rows(ctx, body, self.list.offset(), total);
    }
}
