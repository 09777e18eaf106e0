//! Styles. Under `NO_COLOR` only REVERSED and BOLD mark focus (crossterm's colour reset would
//! otherwise drop them); colours are indexed, which works over SSH.

use ratatui::style::{Color, Modifier, Style};

/// The styles the panel draws with.
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    /// True when colours are used.
    pub color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set (to anything non-empty).
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// A colourless theme (tests and snapshots).
    pub fn plain() -> Self {
        Self { color: false }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    /// Ordinary text.
    pub fn text(&self) -> Style {
        Style::default()
    }

    /// The focused entry.
    pub fn focus(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    /// Dialog titles and this terminal's name in the status line.
    pub fn title(&self) -> Style {
        self.fg(Color::Indexed(14)).add_modifier(Modifier::BOLD)
    }

    /// Good news.
    pub fn ok(&self) -> Style {
        self.fg(Color::Indexed(10))
    }

    /// Bad news.
    pub fn error(&self) -> Style {
        self.fg(Color::Indexed(9)).add_modifier(Modifier::BOLD)
    }

    /// Secondary text.
    pub fn dim(&self) -> Style {
        if self.color {
            self.fg(Color::Indexed(8))
        } else {
            Style::default()
        }
    }

    /// The LCD frame.
    pub fn lcd(&self) -> Style {
        self.fg(Color::Indexed(6))
    }

    /// Keys of the key pad.
    pub fn key(&self) -> Style {
        self.fg(Color::Indexed(11)).add_modifier(Modifier::BOLD)
    }
}
