//! Recordings people can watch: the screens of a headless run written as an asciicast v2 file
//! (`imagecast demo --script F --headless --record OUT.cast`), which `asciinema play` replays.
//!
//! The file is a header line, then one output event `[time, "o", data]` per changed screen:
//! the whole screen redrawn with ANSI colours. Time is the run's own, plus a pause after each
//! key so that a person can follow what was pressed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// The pause added after each key or touch, for watching.
const PER_KEY: Duration = Duration::from_millis(350);

/// An asciicast v2 file being written.
pub struct Recorder {
    out: BufWriter<File>,
    started: Instant,
    keys: u32,
    last: Option<Buffer>,
}

impl Recorder {
    /// Creates `path` and writes the header for a `width`×`height` terminal.
    pub fn create(path: &Path, width: u16, height: u16, title: &str) -> anyhow::Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = serde_json::json!({
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": timestamp,
            "title": title,
            "env": { "TERM": "xterm-256color" },
        });
        writeln!(out, "{header}")?;
        Ok(Self {
            out,
            started: Instant::now(),
            keys: 0,
            last: None,
        })
    }

    /// A key or touch was fed to the panel.
    pub fn key(&mut self) {
        self.keys += 1;
    }

    /// Records the screen if it changed since the last frame.
    pub fn frame(&mut self, buf: &Buffer) -> anyhow::Result<()> {
        if self.last.as_ref() == Some(buf) {
            return Ok(());
        }
        let time = self.started.elapsed() + PER_KEY * self.keys;
        let event = serde_json::json!([time.as_secs_f64(), "o", ansi(buf)]);
        writeln!(self.out, "{event}")?;
        self.last = Some(buf.clone());
        Ok(())
    }

    /// Writes what is buffered.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// The buffer as terminal output: home, then every row with its colours and attributes.
pub fn ansi(buf: &Buffer) -> String {
    let mut s = String::from("\x1b[H\x1b[0m");
    let area = buf.area;
    for y in 0..area.height {
        if y > 0 {
            s.push_str("\r\n");
        }
        let mut style = None;
        for x in 0..area.width {
            let cell = &buf[(area.x + x, area.y + y)];
            let now = (cell.fg, cell.bg, cell.modifier);
            if style != Some(now) {
                s.push_str(&sgr(now.0, now.1, now.2));
                style = Some(now);
            }
            s.push_str(cell.symbol());
        }
        s.push_str("\x1b[0m");
    }
    s
}

/// The SGR sequence that sets these colours and attributes from a reset.
fn sgr(fg: Color, bg: Color, m: Modifier) -> String {
    let mut codes = vec!["0".to_owned()];
    for (flag, code) in [
        (Modifier::BOLD, "1"),
        (Modifier::DIM, "2"),
        (Modifier::ITALIC, "3"),
        (Modifier::UNDERLINED, "4"),
        (Modifier::REVERSED, "7"),
    ] {
        if m.contains(flag) {
            codes.push(code.to_owned());
        }
    }
    codes.extend(color(fg, 30));
    codes.extend(color(bg, 40));
    format!("\x1b[{}m", codes.join(";"))
}

/// A colour's SGR code, `base` 30 for the foreground and 40 for the background.
fn color(c: Color, base: u8) -> Option<String> {
    let basic = |n: u8| Some((base + n).to_string());
    let bright = |n: u8| Some((base + 60 + n).to_string());
    match c {
        Color::Reset => None,
        Color::Black => basic(0),
        Color::Red => basic(1),
        Color::Green => basic(2),
        Color::Yellow => basic(3),
        Color::Blue => basic(4),
        Color::Magenta => basic(5),
        Color::Cyan => basic(6),
        Color::Gray => basic(7),
        Color::DarkGray => bright(0),
        Color::LightRed => bright(1),
        Color::LightGreen => bright(2),
        Color::LightYellow => bright(3),
        Color::LightBlue => bright(4),
        Color::LightMagenta => bright(5),
        Color::LightCyan => bright(6),
        Color::White => bright(7),
        Color::Indexed(i) => Some(format!("{};5;{i}", base + 8)),
        Color::Rgb(r, g, b) => Some(format!("{};2;{r};{g};{b}", base + 8)),
    }
}

#[cfg(test)]
mod tests {
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    use super::*;

    #[test]
    fn a_recording_is_a_header_then_output_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast");
        let mut r = Recorder::create(&path, 10, 2, "t").unwrap();
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 2));
        buf.set_string(0, 0, "Hi", Style::default().fg(Color::Green));
        r.frame(&buf).unwrap();
        r.frame(&buf).unwrap(); // unchanged: not recorded again
        r.key();
        buf.set_string(0, 1, "there", Style::default().add_modifier(Modifier::BOLD));
        r.frame(&buf).unwrap();
        r.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(
            (lines[0]["width"].clone(), lines[0]["height"].clone()),
            (10.into(), 2.into())
        );
        assert_eq!(lines[1][1], "o");
        let first = lines[1][2].as_str().unwrap();
        assert!(first.starts_with("\x1b[H"), "{first:?}");
        assert!(first.contains("\x1b[0;32mHi"), "{first:?}");
        let t1 = lines[1][0].as_f64().unwrap();
        let t2 = lines[2][0].as_f64().unwrap();
        assert!(
            t2 >= t1 + PER_KEY.as_secs_f64(),
            "a key adds a pause: {t1} {t2}"
        );
        assert!(lines[2][2].as_str().unwrap().contains("\x1b[0;1mthere"));
    }
}
