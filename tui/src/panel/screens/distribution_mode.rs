//! FIG. 8: distribution mode.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::{GroupsFor, Screen, chrome, hit_rows, specify_image};
use crate::panel::app::{Action, Ctx, ImageSource};
use crate::panel::jobs::{Job, Purpose};
use crate::panel::keys::Key;
use crate::panel::menu::{Menu, MenuKey};
use crate::panel::strings;

/// FIG. 8's state.
#[derive(Debug)]
pub struct DistributionMode {
    /// The four modes.
    pub menu: Menu,
}

impl Default for DistributionMode {
    fn default() -> Self {
        Self::new()
    }
}

impl DistributionMode {
    /// The dialog.
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
        let groups = |purpose| {
            Action::Run(Job::FetchGroups {
                client: None,
                purpose,
            })
        };
        match chosen {
            Some(0) => groups(GroupsFor::Distribute(ImageSource::Adf)),
            Some(1) => Action::Push(Screen::SpecifyImage(specify_image::SpecifyImage::new(
                Purpose::Distribute,
            ))),
            Some(2) => groups(GroupsFor::Register),
            Some(3) => groups(GroupsFor::Withdraw),
            _ => Action::None,
        }
    }

    /// Draws the dialog.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let body = chrome(
            f,
            area,
            ctx,
            strings::DIST_MODE_TITLE,
            "Number key chooses. Reset goes back.",
        );
        hit_rows(ctx, body, 0, self.menu.items.len());
        self.menu.draw(f, body, &ctx.theme);
    }
}
