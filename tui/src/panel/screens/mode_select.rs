//! FIG. 7: mode selection.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::{chrome, distribution_mode, hit_rows, message, specify_image};
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::{Job, Purpose};
use crate::panel::keys::Key;
use crate::panel::menu::{Menu, MenuKey};
use crate::panel::screens::Screen;
use crate::panel::strings;

/// FIG. 7's state.
#[derive(Debug)]
pub struct ModeSelect {
    /// The six modes.
    pub menu: Menu,
}

impl Default for ModeSelect {
    fn default() -> Self {
        Self::new()
    }
}

impl ModeSelect {
    /// The dialog, "Copy" highlighted.
    pub fn new() -> Self {
        Self {
            menu: Menu::new(strings::MODES.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        let chosen = match key {
            Key::Pick(i) => Some(i),
            Key::Reset => return Action::Logout,
            k => match self.menu.key(k) {
                MenuKey::Chosen(i) => Some(i),
                _ => None,
            },
        };
        match chosen {
            Some(0) => Action::Run(Job::Copy),
            Some(1) | Some(3) => Action::Push(Screen::Message(message::Message::info(
                strings::MODES[chosen.unwrap_or(1)],
                vec![strings::NO_FAX_GATEWAY.to_owned()],
            ))),
            Some(2) => Action::Push(Screen::SpecifyImage(specify_image::SpecifyImage::new(
                Purpose::TakeOut,
            ))),
            Some(4) => Action::Push(Screen::SpecifyImage(specify_image::SpecifyImage::new(
                Purpose::Process,
            ))),
            Some(5) => Action::Push(Screen::DistributionMode(
                distribution_mode::DistributionMode::new(),
            )),
            _ => Action::None,
        }
    }

    /// Draws the dialog.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let body = chrome(
            f,
            area,
            ctx,
            strings::MODE_TITLE,
            "Number key chooses. Reset logs out.",
        );
        hit_rows(ctx, body, 0, self.menu.items.len());
        self.menu.draw(f, body, &ctx.theme);
    }
}
