//! `marksheet`: printing a mark sheet (FIG. 20) from an A4 page and reading it back, in memory.
//!
//! The page is an A4 sheet at D dpi (210 × 297 mm) with grey lines of "text" on white, as a
//! scanned letter has. `print_ms` times `imagecast::marksheet::print_sheet` (the QR code of the
//! image ID stamped top right); `decode_ms` times `decode_sheet` on the printed sheet, which
//! finds the code in the top-right corner on its fast path. No file is written or read.

use std::time::Instant;

use anyhow::{bail, ensure};
use image::{DynamicImage, GrayImage, Luma};
use imagecast::marksheet::{decode_sheet, print_sheet};
use imagecast::store::ImageId;

use crate::report::{self, Line};

/// An A4 page at `dpi` with lines of grey marks, like typed text.
pub fn page(dpi: u32) -> GrayImage {
    let px = |mm: f64| (mm / 25.4 * f64::from(dpi)).round() as u32;
    let (w, h) = (px(210.0), px(297.0));
    let (margin, line, glyph) = (px(20.0), px(6.0).max(4), px(2.5).max(2));
    GrayImage::from_fn(w, h, |x, y| {
        let inside = x > margin && x < w - margin && y > margin && y < h - margin;
        let in_line = (y - margin.min(y)) % line < glyph;
        let in_word = (x / glyph) % 7 != 0 && ((x / glyph) * 31 + y / line) % 5 != 0;
        if inside && in_line && in_word {
            Luma([60])
        } else {
            Luma([250])
        }
    })
}

/// `marksheet --dpi D --rounds R`.
pub fn marksheet(dpi: u32, rounds: usize) -> anyhow::Result<Line> {
    if !(50..=1200).contains(&dpi) {
        bail!("--dpi must be between 50 and 1200");
    }
    let page = DynamicImage::ImageLuma8(page(dpi));
    let (w, h) = (page.width(), page.height());
    let mut print_ms = Vec::with_capacity(rounds);
    let mut decode_ms = Vec::with_capacity(rounds);
    for r in 0..=rounds {
        let id = ImageId::new(12_345_000 + r as u32)
            .ok_or_else(|| anyhow::anyhow!("image ID out of range"))?;
        let t = Instant::now();
        let sheet = print_sheet(id, &page);
        let printed = t.elapsed();
        let sheet = DynamicImage::ImageRgb8(sheet);
        let t = Instant::now();
        let read = decode_sheet(&sheet)?;
        let decoded = t.elapsed();
        ensure!(read == id, "the sheet of {id} reads {read}");
        // Round 0 warms caches up and is not counted.
        if r > 0 {
            print_ms.push(printed.as_secs_f64() * 1000.0);
            decode_ms.push(decoded.as_secs_f64() * 1000.0);
        }
    }
    Ok(Line::new("marksheet")
        .field("dpi", dpi)
        .num("print_ms_median", report::median(&print_ms))
        .num("decode_ms_median", report::median(&decode_ms))
        .field("page", format!("{w}x{h}"))
        .field("rounds", rounds)
        .num("print_ms_min", report::min(&print_ms))
        .num("print_ms_max", report::max(&print_ms))
        .num("decode_ms_min", report::min(&decode_ms))
        .num("decode_ms_max", report::max(&decode_ms)))
}
