//! The dialogs of FIG. 6–12 and the panel's own views, one module each, behind the closed
//! [`Screen`] enum. A screen handles keys by returning an [`Action`]; it never reaches into the
//! app.

pub mod destinations;
pub mod distribution_mode;
pub mod group_select;
pub mod individual;
pub mod login;
pub mod message;
pub mod mode_select;
pub mod preview;
pub mod progress;
pub mod received;
pub mod specify_image;
pub mod stored;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::app::{Action, Ctx, ImageSource, Returned};
use super::keys::Key;

/// What a group list is fetched for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupsFor {
    /// FIG. 9, for a distribution of this image.
    Distribute(ImageSource),
    /// FIG. 12, registration.
    Register,
    /// FIG. 12, withdrawal.
    Withdraw,
}

/// Every dialog of the panel.
#[derive(Debug)]
pub enum Screen {
    /// FIG. 6.
    Login(login::Login),
    /// FIG. 7.
    ModeSelect(mode_select::ModeSelect),
    /// FIG. 8.
    DistributionMode(distribution_mode::DistributionMode),
    /// FIG. 9.
    Destinations(destinations::Destinations),
    /// FIG. 10.
    Individual(individual::Individual),
    /// FIG. 11.
    SpecifyImage(specify_image::SpecifyImage),
    /// FIG. 12.
    GroupSelect(group_select::GroupSelect),
    /// Pages scanned and per-destination states, then the summary.
    Progress(progress::Progress),
    /// A message to acknowledge.
    Message(message::Message),
    /// The image store (FIG. 19).
    Stored(stored::Stored),
    /// The received list.
    Received(received::ReceivedList),
    /// A page drawn in the terminal.
    Preview(preview::Preview),
}

impl Screen {
    /// Handles a key.
    pub fn key(&mut self, key: Key, ctx: &Ctx) -> Action {
        match self {
            Screen::Login(s) => s.key(key),
            Screen::ModeSelect(s) => s.key(key),
            Screen::DistributionMode(s) => s.key(key),
            Screen::Destinations(s) => s.key(key),
            Screen::Individual(s) => s.key(key),
            Screen::SpecifyImage(s) => s.key(key),
            Screen::GroupSelect(s) => s.key(key),
            Screen::Progress(s) => s.key(key),
            Screen::Message(s) => s.key(key),
            Screen::Stored(s) => s.key(key),
            Screen::Received(s) => s.key(key, ctx),
            Screen::Preview(s) => s.key(key),
        }
    }

    /// Takes a value from a dialog that closed above this one.
    pub fn returned(&mut self, value: Returned) -> Action {
        match (self, value) {
            (Screen::Destinations(s), Returned::Individuals { domains, start }) => {
                s.individuals = domains;
                if start { s.start() } else { Action::None }
            }
            _ => Action::None,
        }
    }

    /// Draws the dialog into the LCD area.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        match self {
            Screen::Login(s) => s.draw(f, area, ctx),
            Screen::ModeSelect(s) => s.draw(f, area, ctx),
            Screen::DistributionMode(s) => s.draw(f, area, ctx),
            Screen::Destinations(s) => s.draw(f, area, ctx),
            Screen::Individual(s) => s.draw(f, area, ctx),
            Screen::SpecifyImage(s) => s.draw(f, area, ctx),
            Screen::GroupSelect(s) => s.draw(f, area, ctx),
            Screen::Progress(s) => s.draw(f, area, ctx),
            Screen::Message(s) => s.draw(f, area, ctx),
            Screen::Stored(s) => s.draw(f, area, ctx),
            Screen::Received(s) => s.draw(f, area, ctx),
            Screen::Preview(s) => s.draw(f, area, ctx),
        }
    }
}

/// Splits `area` into a title line, a body and a hint line at the bottom.
pub fn frame_parts(area: Rect) -> (Rect, Rect, Rect) {
    let title = Rect {
        height: 1.min(area.height),
        ..area
    };
    let hint_h = u16::from(area.height >= 4);
    let hint = Rect {
        y: area.y + area.height.saturating_sub(hint_h),
        height: hint_h,
        ..area
    };
    let body = Rect {
        y: area.y + title.height + u16::from(area.height > 4),
        height: area
            .height
            .saturating_sub(title.height + hint_h + u16::from(area.height > 4)),
        ..area
    };
    (title, body, hint)
}

/// Draws the title and hint lines of a dialog; returns the body area.
pub fn chrome(f: &mut Frame, area: Rect, ctx: &Ctx, title: &str, hint: &str) -> Rect {
    let (t, body, h) = frame_parts(area);
    f.render_widget(
        Paragraph::new(Line::styled(title.to_owned(), ctx.theme.title())),
        t,
    );
    f.render_widget(
        Paragraph::new(Line::styled(hint.to_owned(), ctx.theme.dim())),
        h,
    );
    body
}

/// Registers a touch area for a key.
pub fn hit(ctx: &Ctx, area: Rect, key: Key) {
    ctx.hits.borrow_mut().push((area, key));
}

/// Registers one touch area per visible list row: row `i` of the view is entry `offset + i`.
pub fn hit_rows(ctx: &Ctx, area: Rect, offset: usize, count: usize) {
    for i in 0..area.height as usize {
        if offset + i >= count {
            break;
        }
        let row = Rect {
            y: area.y + i as u16,
            height: 1,
            ..area
        };
        hit(ctx, row, Key::Pick(offset + i));
    }
}
