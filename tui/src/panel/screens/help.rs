//! The help overlay (`?`, `h`, F1): every key of the screen below it, then the keys every
//! screen shares, as lazygit's and k9s's help do. Any key closes it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::chrome;
use crate::panel::app::{Action, Ctx};
use crate::panel::keys::{self, Key};

/// The help overlay's state: what it lists.
#[derive(Debug)]
pub struct Help {
    /// The screen it is for.
    pub title: &'static str,
    /// That screen's keys: (key, what it does).
    pub keys: &'static [(&'static str, &'static str)],
}

impl Help {
    /// Handles a key: any key closes the help.
    pub fn key(&mut self, _key: Key) -> Action {
        Action::Back
    }

    /// Draws the list.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let body = chrome(
            f,
            area,
            ctx,
            &format!("Keys: {}", self.title),
            "Any key closes this help.",
        );
        let row = |(k, what): &(&str, &str)| {
            Line::from(vec![
                Span::styled(format!("{k:<11}"), ctx.theme.title()),
                Span::raw(format!(" {what}")),
            ])
        };
        let mut lines: Vec<Line> = self.keys.iter().map(row).collect();
        lines.push(Line::raw(""));
        lines.extend(keys::HELP_GLOBAL.iter().map(row));
        super::hit(ctx, body, Key::Reset);
        f.render_widget(Paragraph::new(lines), body);
    }
}

#[cfg(test)]
mod tests {
    use crate::panel::keys::Key;
    use crate::panel::screens::Screen;
    use crate::panel::test_support::{keys, logged_in, screen};

    #[test]
    fn help_lists_the_keys_of_the_screen_below_and_any_key_closes_it() {
        let mut a = logged_in();
        keys(&mut a, &[Key::Digit(6), Key::Help]);
        let s = screen(&mut a);
        assert!(s.contains("Keys: distribution mode"), "{s}");
        assert!(s.contains("1-5"), "{s}");
        assert!(s.contains("Ctrl-Q F10"), "{s}");
        a.key(Key::Digit(1));
        assert!(matches!(a.screen(), Screen::DistributionMode(_)));
        assert!(a.take_jobs().is_empty(), "the key only closed the help");
        a.key(Key::Stored);
        let _ = a.take_jobs();
        a.event(crate::panel::app::AppEvent::Job(
            crate::panel::jobs::JobResult::Stored(crate::store::Listing::default()),
        ));
        a.key(Key::Help);
        let s = screen(&mut a);
        assert!(
            s.contains("Delete d"),
            "the image store's Delete is listed: {s}"
        );
        insta::assert_snapshot!("help_image_store", s);
    }
}
