//! Every key binding of the panel, in one place.
//!
//! The panel's keys are those of an MFP: the ten keys, `*` and `#`, Start, Reset (back), Stop,
//! and the touch panel's selection. The keyboard maps onto them here; screens only ever see
//! [`Key`].

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// A panel key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A ten key, 0 to 9.
    Digit(u8),
    /// The `*` key (toggles "keep a copy" on FIG. 9).
    Star,
    /// The `#` key.
    Hash,
    /// Start (S): Enter.
    Start,
    /// Reset / back: Esc.
    Reset,
    /// Stop: `x` (cancels the running job).
    Stop,
    /// Move up.
    Up,
    /// Move down.
    Down,
    /// Move left.
    Left,
    /// Move right.
    Right,
    /// Page up in a list.
    PageUp,
    /// Page down in a list.
    PageDown,
    /// Next field.
    Tab,
    /// Previous field.
    BackTab,
    /// Tick a check box / choose.
    Space,
    /// Delete the last digit.
    Backspace,
    /// Delete the selected item (stored images).
    Delete,
    /// Open the image store (F2).
    Stored,
    /// Open the received list (F3).
    Received,
    /// Open a preview of the selection (`p`).
    Preview,
    /// Carry the output tray's newest sheet to the ADF, as an operator carries paper (`c`,
    /// F4).
    Carry,
    /// Quit the panel (Ctrl-Q or F10).
    Quit,
    /// Dial the image server now instead of at the countdown's end (F5, Ctrl-R).
    RetryNow,
    /// Show every key of the screen (`?`, `h`, F1), as lazygit and k9s do.
    Help,
    /// A touch on entry `n` (from 0) of the list on the screen.
    Pick(usize),
}

impl Key {
    /// Maps a terminal key event; `None` for keys the panel does not use (and for releases).
    pub fn from_event(ev: &KeyEvent) -> Option<Key> {
        if ev.kind != KeyEventKind::Press && ev.kind != KeyEventKind::Repeat {
            return None;
        }
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        Some(match ev.code {
            KeyCode::Char('q') | KeyCode::Char('c') if ctrl => Key::Quit,
            KeyCode::F(10) => Key::Quit,
            KeyCode::F(5) => Key::RetryNow,
            KeyCode::Char('r') | KeyCode::Char('R') if ctrl => Key::RetryNow,
            KeyCode::Char(c @ '0'..='9') => Key::Digit(c as u8 - b'0'),
            KeyCode::Char('*') => Key::Star,
            KeyCode::Char('#') => Key::Hash,
            KeyCode::Enter => Key::Start,
            KeyCode::Esc => Key::Reset,
            KeyCode::Char('x') | KeyCode::Char('X') => Key::Stop,
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            KeyCode::Left => Key::Left,
            KeyCode::Right => Key::Right,
            KeyCode::PageUp => Key::PageUp,
            KeyCode::PageDown => Key::PageDown,
            KeyCode::Tab => Key::Tab,
            KeyCode::BackTab => Key::BackTab,
            KeyCode::Char(' ') => Key::Space,
            KeyCode::Backspace => Key::Backspace,
            KeyCode::Delete | KeyCode::Char('d') | KeyCode::Char('D') => Key::Delete,
            KeyCode::F(2) | KeyCode::Char('i') | KeyCode::Char('I') => Key::Stored,
            KeyCode::F(3) | KeyCode::Char('r') | KeyCode::Char('R') => Key::Received,
            KeyCode::Char('p') | KeyCode::Char('P') => Key::Preview,
            KeyCode::F(4) | KeyCode::Char('c') | KeyCode::Char('C') => Key::Carry,
            KeyCode::F(1) | KeyCode::Char('?') | KeyCode::Char('h') | KeyCode::Char('H') => {
                Key::Help
            }
            _ => return None,
        })
    }

    /// Parses a key name as written in walkthrough scripts (`start`, `reset`, `7`, `f2`...).
    pub fn from_name(name: &str) -> Option<Key> {
        let n = name.to_ascii_lowercase();
        if n.len() == 1 {
            if let Some(d) = n.chars().next().and_then(|c| c.to_digit(10)) {
                return Some(Key::Digit(d as u8));
            }
        }
        Some(match n.as_str() {
            "*" | "star" => Key::Star,
            "#" | "hash" => Key::Hash,
            "start" | "enter" | "s" => Key::Start,
            "reset" | "esc" | "back" => Key::Reset,
            "stop" => Key::Stop,
            "up" => Key::Up,
            "down" => Key::Down,
            "left" => Key::Left,
            "right" => Key::Right,
            "pageup" => Key::PageUp,
            "pagedown" => Key::PageDown,
            "tab" => Key::Tab,
            "backtab" => Key::BackTab,
            "space" => Key::Space,
            "backspace" => Key::Backspace,
            "delete" => Key::Delete,
            "stored" | "f2" => Key::Stored,
            "received" | "f3" => Key::Received,
            "preview" => Key::Preview,
            "carry" | "f4" => Key::Carry,
            "quit" => Key::Quit,
            "retry" | "f5" => Key::RetryNow,
            "help" | "?" | "f1" => Key::Help,
            _ => return None,
        })
    }
}

/// The keys every screen shares, after the screen's own in the legend.
pub const LEGEND_GLOBAL: &str = "?=help F2/F3 lists c=carry ^Q quit";

/// The keys every screen shares, as the help lists them.
pub const HELP_GLOBAL: [(&str, &str); 8] = [
    ("? h F1", "this help (any key closes it)"),
    ("x", "Stop: cancel the job in flight"),
    ("F2 i", "the image store"),
    ("F3 r", "the received images"),
    ("c F4", "carry the tray's newest sheet to the ADF"),
    ("F5 Ctrl-R", "offline: dial the image server now"),
    ("Ctrl-Q F10", "quit (a kiosk asks an administrator)"),
    ("mouse", "a click presses what is drawn there"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyboard_maps_onto_panel_keys() {
        let press = |code| KeyEvent::new(code, KeyModifiers::NONE);
        assert_eq!(
            Key::from_event(&press(KeyCode::Char('7'))),
            Some(Key::Digit(7))
        );
        assert_eq!(Key::from_event(&press(KeyCode::Enter)), Some(Key::Start));
        assert_eq!(Key::from_event(&press(KeyCode::Esc)), Some(Key::Reset));
        assert_eq!(
            Key::from_event(&KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            Some(Key::Quit)
        );
        let mut release = press(KeyCode::Char('1'));
        release.kind = KeyEventKind::Release;
        assert_eq!(Key::from_event(&release), None);
        assert_eq!(Key::from_name("START"), Some(Key::Start));
        assert_eq!(Key::from_name("0"), Some(Key::Digit(0)));
        assert_eq!(Key::from_name("bogus"), None);
        // Plain c carries paper; Ctrl-C still quits.
        assert_eq!(
            Key::from_event(&press(KeyCode::Char('c'))),
            Some(Key::Carry)
        );
        assert_eq!(Key::from_event(&press(KeyCode::F(4))), Some(Key::Carry));
        assert_eq!(
            Key::from_event(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Key::Quit)
        );
        assert_eq!(Key::from_name("carry"), Some(Key::Carry));
        for code in [KeyCode::Char('?'), KeyCode::Char('h'), KeyCode::F(1)] {
            assert_eq!(Key::from_event(&press(code)), Some(Key::Help));
        }
    }
}
