//! A numbered menu (FIG. 7, 8, 12): entries numbered from 1, chosen by their number key as on
//! a ten-key pad, or with the arrows and Start.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState};

use super::keys::Key;
use super::theme::Theme;

/// What a key did to a menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MenuKey {
    /// The key means nothing to a menu.
    Ignored,
    /// The highlight moved.
    Moved,
    /// Entry `n` (from 0) was chosen.
    Chosen(usize),
}

/// A numbered menu's state.
#[derive(Clone, Debug, Default)]
pub struct Menu {
    /// The entries, without their numbers.
    pub items: Vec<String>,
    /// The highlighted entry.
    pub state: ListState,
    /// Digits typed so far when there are ten or more entries.
    pub typed: Option<usize>,
    /// Entries drawn greyed out (not available; the dialog says why).
    pub greyed: Vec<usize>,
}

impl Menu {
    /// A menu of `items`, the first highlighted.
    pub fn new(items: Vec<String>) -> Self {
        let mut state = ListState::default();
        if !items.is_empty() {
            state.select(Some(0));
        }
        Self {
            items,
            state,
            typed: None,
            greyed: Vec::new(),
        }
    }

    /// The highlighted entry.
    pub fn selected(&self) -> Option<usize> {
        self.state.selected().filter(|&i| i < self.items.len())
    }

    /// Handles a key. A number key chooses its entry at once when it cannot start a longer
    /// number; otherwise it waits for the next digit or Start.
    pub fn key(&mut self, key: Key) -> MenuKey {
        let n = self.items.len();
        match key {
            Key::Digit(d) => {
                let value = self.typed.unwrap_or(0) * 10 + d as usize;
                if value == 0 || value > n {
                    self.typed = None;
                    return MenuKey::Ignored;
                }
                if value * 10 > n {
                    self.typed = None;
                    self.state.select(Some(value - 1));
                    MenuKey::Chosen(value - 1)
                } else {
                    self.typed = Some(value);
                    self.state.select(Some(value - 1));
                    MenuKey::Moved
                }
            }
            Key::Up => {
                self.typed = None;
                self.state.select_previous();
                MenuKey::Moved
            }
            Key::Down => {
                self.typed = None;
                if self.selected().is_some_and(|i| i + 1 < n) {
                    self.state.select_next();
                }
                MenuKey::Moved
            }
            Key::Start | Key::Space => {
                self.typed = None;
                self.selected().map_or(MenuKey::Ignored, MenuKey::Chosen)
            }
            _ => MenuKey::Ignored,
        }
    }

    /// Draws the entries as "N: entry", the highlighted one reversed.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, theme: &Theme) {
        let items: Vec<ListItem> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let text = format!("{}: {s}", i + 1);
                ListItem::new(Line::from(vec![if self.greyed.contains(&i) {
                    Span::styled(text, theme.dim())
                } else {
                    Span::raw(text)
                }]))
            })
            .collect();
        let list = List::new(items).highlight_style(theme.focus());
        f.render_stateful_widget(list, area, &mut self.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_keys_choose_and_long_menus_wait_for_the_second_digit() {
        let mut m = Menu::new((1..=4).map(|i| format!("e{i}")).collect());
        assert_eq!(m.key(Key::Digit(3)), MenuKey::Chosen(2));
        assert_eq!(m.key(Key::Digit(9)), MenuKey::Ignored);
        assert_eq!(m.key(Key::Digit(0)), MenuKey::Ignored);
        let mut m = Menu::new((1..=12).map(|i| format!("e{i}")).collect());
        assert_eq!(m.key(Key::Digit(1)), MenuKey::Moved);
        assert_eq!(m.key(Key::Digit(2)), MenuKey::Chosen(11));
        assert_eq!(m.key(Key::Digit(1)), MenuKey::Moved);
        assert_eq!(m.key(Key::Start), MenuKey::Chosen(0));
        assert_eq!(m.key(Key::Digit(5)), MenuKey::Chosen(4));
        m.key(Key::Up);
        assert_eq!(m.selected(), Some(3));
    }
}
