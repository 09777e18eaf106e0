//! The panel around the dialogs: the status line (server and connection, this terminal's
//! destination name, the user), the LCD frame, the ten-key pad with Start, Reset and Stop,
//! the incoming deliveries, and the key legend. Works from 80×24 up; narrower or lower
//! terminals get a plain message instead of a broken layout.

use std::cell::RefCell;

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::{App, ReceivedEntry};
use super::keys::{self, Key};
use super::screens::{peer_name, peer_text};
use super::theme::Theme;

/// Smallest size the full panel is drawn at.
pub const MIN_WIDTH: u16 = 60;
/// Smallest height.
pub const MIN_HEIGHT: u16 = 16;

/// Where the parts went.
pub struct Areas {
    /// Inside the LCD frame: the dialog.
    pub lcd: Rect,
    /// The key pad.
    pub keypad: Rect,
}

/// Draws status line, frames, received list and legend; returns the areas to fill.
pub fn draw(f: &mut Frame, app: &App) -> Areas {
    let area = f.area();
    let theme = app.theme;
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "The panel needs at least {MIN_WIDTH}x{MIN_HEIGHT} characters; this terminal is {}x{}. Enlarge it, or press Ctrl-Q to quit.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return Areas {
            lcd: Rect::default(),
            keypad: Rect::default(),
        };
    }
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(10),
            Constraint::Length(1),
        ])
        .split(area);
    // Status line: connection first (it matters most), then the user, then this terminal.
    let user = app.user.as_ref().map_or_else(
        || "not logged in".to_owned(),
        |(u, r)| format!("{u} ({})", r.as_str()),
    );
    let conn = app.conn_short();
    let busy = app
        .busy
        .as_ref()
        .map(|b| format!(" | {b}..."))
        .unwrap_or_default();
    let fixed = conn.chars().count() + user.chars().count() + busy.chars().count() + 8;
    let room = (rows[0].width as usize).saturating_sub(fixed).max(8);
    // The destination name comes from the server.
    let device_name = peer_name(&app.device_name);
    let name: String = if device_name.chars().count() > room {
        let cut: String = device_name.chars().take(room - 1).collect();
        format!("{cut}…")
    } else {
        device_name.into_owned()
    };
    let status = Line::from(vec![
        Span::styled(
            format!(" {conn} "),
            if matches!(app.conn, super::app::Conn::Connected) {
                theme.ok()
            } else {
                theme.error()
            },
        ),
        Span::raw(format!("| {user} | ")),
        Span::styled(name, theme.title()),
        Span::raw(busy),
    ]);
    f.render_widget(Paragraph::new(status), rows[0]);
    // Legend, or a passing note.
    let legend = match &app.note {
        // Notes quote the server's notices and senders.
        Some((text, _)) => Line::styled(format!(" {}", peer_text(text)), theme.ok()),
        // The screen's own keys first, then the shared ones while they fit.
        None => {
            let own = app.screen().legend();
            let full = format!(" {own}  {}", keys::LEGEND_GLOBAL);
            let text = if full.chars().count() <= rows[2].width as usize {
                full
            } else {
                format!(" {own}  ?=help")
            };
            Line::styled(text, theme.dim())
        }
    };
    f.render_widget(Paragraph::new(legend), rows[2]);

    // From 100 columns the received pane takes up to two fifths of the width under the key
    // pad, leaving the LCD at least 72 columns (a destination's name and domain side by
    // side); below, the decorative key pad goes (its keys are in the legend) and the LCD keeps
    // the room.
    let right_w = if rows[1].width >= 100 {
        (rows[1].width * 2 / 5)
            .min(56)
            .min(rows[1].width.saturating_sub(72))
            .max(20)
    } else {
        20.min(rows[1].width / 3)
    };
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Min(30), Constraint::Length(right_w)])
        .split(rows[1]);
    let title = if app.info.kiosk {
        " LCD (kiosk) "
    } else {
        " LCD "
    };
    let lcd_block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.lcd())
        .title(title);
    let lcd = lcd_block.inner(cols[0]);
    f.render_widget(lcd_block, cols[0]);
    let keypad_h = if rows[1].width >= 100 {
        11.min(cols[1].height)
    } else {
        0
    };
    let keypad = Rect {
        height: keypad_h,
        ..cols[1]
    };
    let inbox = Rect {
        y: cols[1].y + keypad_h,
        height: cols[1].height - keypad_h,
        ..cols[1]
    };
    draw_inbox(f, inbox, &theme, &app.received);
    Areas { lcd, keypad }
}

fn draw_inbox(f: &mut Frame, area: Rect, theme: &Theme, received: &[ReceivedEntry]) {
    if area.height < 3 {
        return;
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.lcd())
        .title(format!(" Received {} ", received.len()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let lines: Vec<Line> = received
        .iter()
        .rev()
        .take(inner.height as usize)
        .map(|e| Line::raw(pane_line(e, inner.width as usize)))
        .collect();
    let text = if lines.is_empty() {
        vec![Line::styled("(F3 lists them)", theme.dim())]
    } else {
        lines
    };
    f.render_widget(Paragraph::new(text), inner);
}

/// One delivery in the received pane: time, pages, then the sender's name, cut with `…` to
/// the pane's width, so two senders whose names begin alike still differ by their pages or
/// time and a cut is visible.
fn pane_line(e: &ReceivedEntry, width: usize) -> String {
    let t = humantime::format_rfc3339_seconds(e.at).to_string();
    let time = t.get(11..16).unwrap_or(&t).to_owned();
    let line = match &e.fax {
        Some(fax) => format!(
            "{time} {}p FAX {}",
            e.pages,
            peer_name(if fax.record.station.is_empty() {
                &fax.record.number
            } else {
                &fax.record.station
            })
        ),
        None => format!(
            "{time} {}p {}{}",
            e.pages,
            if e.realtime { "RT " } else { "" },
            peer_name(&e.received.sender.name)
        ),
    };
    if line.chars().count() <= width {
        return line;
    }
    let cut: String = line.chars().take(width.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// The ten-key pad: each key a touch area.
pub fn draw_keypad(f: &mut Frame, area: Rect, theme: &Theme, hits: &RefCell<Vec<(Rect, Key)>>) {
    if area.height < 5 || area.width < 15 {
        return;
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.lcd())
        .title(" Keys ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let grid: [[(&str, Key); 3]; 4] = [
        [
            ("1", Key::Digit(1)),
            ("2", Key::Digit(2)),
            ("3", Key::Digit(3)),
        ],
        [
            ("4", Key::Digit(4)),
            ("5", Key::Digit(5)),
            ("6", Key::Digit(6)),
        ],
        [
            ("7", Key::Digit(7)),
            ("8", Key::Digit(8)),
            ("9", Key::Digit(9)),
        ],
        [("*", Key::Star), ("0", Key::Digit(0)), ("#", Key::Hash)],
    ];
    let cell_w = (inner.width / 3).max(3);
    let mut y = inner.y;
    for row in grid {
        if y >= inner.y + inner.height {
            return;
        }
        for (i, (label, key)) in row.iter().enumerate() {
            let r = Rect::new(inner.x + i as u16 * cell_w, y, cell_w, 1);
            f.render_widget(
                Paragraph::new(Span::styled(format!("[{label}]"), theme.key())),
                r,
            );
            hits.borrow_mut().push((r, *key));
        }
        y += 1;
    }
    y += 1;
    for (label, key) in [
        ("[ Start ]", Key::Start),
        ("[ Reset ]", Key::Reset),
        ("[ Stop  ]", Key::Stop),
    ] {
        if y >= inner.y + inner.height {
            return;
        }
        let r = Rect::new(inner.x, y, inner.width, 1);
        f.render_widget(Paragraph::new(Span::styled(label, theme.key())), r);
        hits.borrow_mut().push((r, key));
        y += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::panel::app::AppEvent;
    use crate::panel::test_support::{draw, logged_in, screen, two_received};

    #[test]
    fn received_pane_at_80x24() {
        let mut a = logged_in();
        two_received(&mut a);
        insta::assert_snapshot!("home_with_received_pane", screen(&mut a));
    }

    #[test]
    fn small_terminals_and_lost_connections() {
        let mut a = logged_in();
        insta::assert_snapshot!("too_small_terminal", draw(&mut a, 50, 12));
        let mut a = logged_in();
        a.event(AppEvent::Disconnected {
            reason: "connection refused".into(),
            attempt: 3,
            retry_in: Duration::from_secs(0),
        });
        insta::assert_snapshot!(
            "reconnecting_status",
            draw(&mut a, 80, 24).lines().next().unwrap_or_default()
        );
    }

    #[test]
    fn the_received_pane_uses_the_width_of_larger_terminals() {
        let mut a = logged_in();
        two_received(&mut a);
        let s = draw(&mut a, 120, 40);
        assert!(s.contains("1p sales office, the Osaka branch"), "{s}");
    }

    #[test]
    fn larger_terminals_get_the_same_dialogs_with_more_room() {
        let mut a = logged_in();
        let s = draw(&mut a, 120, 40);
        assert!(s.contains("6: Others"));
        assert!(
            s.contains("1-6 choose Enter=Start Esc=log out  ?=help F2/F3 lists c=carry ^Q quit"),
            "the screen's keys, then the shared ones: {s}"
        );
    }

    #[test]
    fn the_legend_names_every_panel_key_at_80_and_140_columns() {
        let mut a = logged_in();
        let last = |s: String| s.lines().last().unwrap_or_default().to_owned();
        let legends = format!(
            "{}\n{}",
            last(draw(&mut a, 80, 24)),
            last(draw(&mut a, 140, 24))
        );
        insta::assert_snapshot!("legend", legends);
    }
}
