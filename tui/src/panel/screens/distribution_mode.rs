//! FIG. 8: distribution mode, with a fifth entry: sending to a terminal in real time
//! (seed 004).

use ratatui::Frame;
use ratatui::layout::Rect;

use super::Screen;
use super::specify_image::{Purpose, SpecifyImage};
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::relay::FetchTerminals;
use crate::panel::jobs::server::FetchGroups;
use crate::panel::jobs::{GroupsFor, ImageSource};
use crate::panel::keys::Key;
use crate::panel::menu::{Menu, MenuKey};
use crate::panel::strings;

/// FIG. 8's state.
#[derive(Debug)]
pub struct DistributionMode {
    /// The five modes.
    pub menu: Menu,
}

impl Default for DistributionMode {
    fn default() -> Self {
        Self::new()
    }
}

impl DistributionMode {
    /// The dialog, the first mode highlighted.
    pub fn new() -> Self {
        Self {
            menu: Menu::new(
                strings::DIST_MODES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            ),
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        let chosen = match key {
            Key::Pick(i) => Some(i),
            Key::Reset => return Action::Back,
            k => match self.menu.key(k) {
                MenuKey::Chosen(i) => Some(i),
                _ => None,
            },
        };
        let groups = |purpose| Action::run(FetchGroups { purpose });
        match chosen {
            Some(0) => groups(GroupsFor::Distribute(ImageSource::Adf)),
            Some(1) => Action::Push(Screen::SpecifyImage(SpecifyImage::new(Purpose::Distribute))),
            Some(2) => groups(GroupsFor::Register),
            Some(3) => groups(GroupsFor::Withdraw),
            Some(4) => Action::run(FetchTerminals),
            _ => Action::None,
        }
    }

    /// Draws the dialog.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        super::menu_dialog(
            f,
            area,
            ctx,
            strings::DIST_MODE_TITLE,
            "Number key chooses. Reset goes back.",
            &mut self.menu,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::test_support::{logged_in, screen};

    #[test]
    fn fig08_at_80x24() {
        let mut a = logged_in();
        a.key(Key::Digit(6));
        insta::assert_snapshot!("fig08_distribution_mode", screen(&mut a));
    }
}
