//! Sample documents for the demo's ADF: three deterministic office pages drawn without fonts
//! ("text" is rows of bars), one per format the ADF reads.
//!
//! | file | what | format |
//! |---|---|---|
//! | `01-sales-report.png` | A4 at 100 dpi (827x1169): title block, text, a table, a bar chart | PNG, RGB |
//! | `02-price-list.tif` | two A4 pages of a price table | TIFF, 8-bit grey, LZW |
//! | `03-memo.jpg` | A5 at 100 dpi (583x827): a memo with a highlighted line and a signature | JPEG, RGB |
//!
//! The same call always writes the same bytes, so tests can compare what arrives with what was
//! sent, and the panel's "refill ADF" can reuse [`write_samples`].

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::Context;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use tiff::encoder::{Compression, Rational, TiffEncoder, colortype};
use tiff::tags::ResolutionUnit;

/// The sample documents' file names, in the order the ADF scans them.
pub const SAMPLE_NAMES: [&str; 3] = ["01-sales-report.png", "02-price-list.tif", "03-memo.jpg"];

/// A4 at 100 dpi.
const A4: (u32, u32) = (827, 1169);
/// A5 at 100 dpi.
const A5: (u32, u32) = (583, 827);

const PAPER: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([20, 20, 20]);
const GREY: Rgb<u8> = Rgb([110, 110, 110]);
const LIGHT: Rgb<u8> = Rgb([220, 220, 220]);
const NAVY: Rgb<u8> = Rgb([25, 45, 110]);
const BLUE: Rgb<u8> = Rgb([40, 90, 190]);
const GREEN: Rgb<u8> = Rgb([40, 150, 80]);
const HIGHLIGHT: Rgb<u8> = Rgb([255, 240, 120]);

/// Writes the three sample documents into `dir` (created if needed), replacing files of the
/// same names, and returns their paths in [`SAMPLE_NAMES`] order.
///
/// Each file is written under a hidden temporary name and then renamed, so an ADF scanning
/// the folder meanwhile never sees half a file.
pub fn write_samples(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let [report, price_list, memo] = SAMPLE_NAMES;
    let files = [
        (report, sales_report_png()?),
        (price_list, price_list_tiff()?),
        (memo, memo_jpeg()?),
    ];
    let mut paths = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// A small deterministic generator (xorshift64) for word widths and chart values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        let span = u64::from(hi.saturating_sub(lo)) + 1;
        lo + u32::try_from(self.next() % span).unwrap_or(0)
    }
}

/// A page being drawn.
struct Sheet {
    img: RgbImage,
    rng: Rng,
}

impl Sheet {
    fn new((w, h): (u32, u32), seed: u64) -> Self {
        Self {
            img: RgbImage::from_pixel(w, h, PAPER),
            rng: Rng(seed | 1),
        }
    }

    /// Fills a rectangle, clipped to the page.
    fn fill(&mut self, x: u32, y: u32, w: u32, h: u32, color: Rgb<u8>) {
        let x1 = x.saturating_add(w).min(self.img.width());
        let y1 = y.saturating_add(h).min(self.img.height());
        for yy in y..y1 {
            for xx in x..x1 {
                self.img.put_pixel(xx, yy, color);
            }
        }
    }

    /// Draws a rectangle's outline `t` pixels thick.
    fn frame(&mut self, x: u32, y: u32, w: u32, h: u32, t: u32, color: Rgb<u8>) {
        self.fill(x, y, w, t, color);
        self.fill(x, y + h - t, w, t, color);
        self.fill(x, y, t, h, color);
        self.fill(x + w - t, y, t, h, color);
    }

    /// One line of "text": words as bars `h` high, filling at most `width` pixels (a shorter
    /// line when `last`, as at the end of a paragraph).
    fn text_line(&mut self, x: u32, y: u32, width: u32, h: u32, color: Rgb<u8>, last: bool) {
        let limit = if last {
            width * self.rng.range(35, 75) / 100
        } else {
            width
        };
        let mut cx = x;
        loop {
            let word = self.rng.range(h * 2, h * 8);
            if cx + word > x + limit {
                break;
            }
            self.fill(cx, y, word, h, color);
            cx += word + h * 3 / 4 + 2;
        }
    }

    /// A paragraph of `lines` lines spaced `pitch` apart; returns the y below it.
    fn paragraph(&mut self, x: u32, y: u32, width: u32, lines: u32, pitch: u32) -> u32 {
        for i in 0..lines {
            self.text_line(x, y + i * pitch, width, 9, INK, i + 1 == lines);
        }
        y + lines * pitch + pitch / 2
    }

    /// A table: a shaded header row, then rows of bars; the last column's bars are
    /// right-aligned like figures. Returns the y below it.
    fn table(&mut self, x: u32, y: u32, cols: &[u32], rows: u32, row_h: u32) -> u32 {
        let width: u32 = cols.iter().sum();
        let height = row_h * (rows + 1);
        self.fill(x, y, width, row_h, LIGHT);
        for r in 0..=rows {
            let ry = y + r * row_h;
            let last_col = cols.len().saturating_sub(1);
            let mut cx = x;
            for (c, cw) in cols.iter().enumerate() {
                let bar_h = 8;
                let by = ry + (row_h - bar_h) / 2;
                let (bar_w, color) = if r == 0 {
                    (cw * 45 / 100, INK)
                } else {
                    (self.rng.range(cw * 25 / 100, cw * 70 / 100), GREY)
                };
                let bx = if c == last_col && r > 0 {
                    cx + cw - 10 - bar_w
                } else {
                    cx + 10
                };
                self.fill(bx, by, bar_w, bar_h, color);
                cx += cw;
            }
        }
        // The grid on top of the cells.
        for r in 0..=rows + 1 {
            let t = if r <= 1 || r == rows + 1 { 2 } else { 1 };
            self.fill(x, y + r * row_h, width + 1, t, INK);
        }
        let mut cx = x;
        for cw in cols {
            self.fill(cx, y, 1, height + 1, INK);
            cx += cw;
        }
        self.fill(x + width - 1, y, 2, height + 2, INK);
        y + height + 24
    }

    /// `n` small squares centred at the foot of the page: the page number.
    fn page_number(&mut self, n: u32) {
        let (w, h) = self.img.dimensions();
        let size = 8;
        let total = n * size + (n - 1) * 6;
        let x0 = (w - total) / 2;
        for i in 0..n {
            self.fill(x0 + i * (size + 6), h - 40, size, size, INK);
        }
    }
}

/// Page 1 of the sales report: title block, text, a table and a bar chart.
fn sales_report() -> RgbImage {
    let mut s = Sheet::new(A4, 0x5a1e_5001);
    let (m, w) = (60, A4.0 - 120);
    // Title block: a framed box with the title, a subtitle and a logo.
    s.frame(m, 50, w, 110, 3, INK);
    s.fill(m + 20, 72, 380, 28, INK);
    s.text_line(m + 20, 115, 300, 10, GREY, false);
    s.text_line(m + 20, 135, 220, 10, GREY, false);
    s.fill(m + w - 110, 63, 84, 84, NAVY);
    s.fill(m + w - 88, 85, 40, 40, PAPER);
    s.fill(m + w - 78, 95, 20, 20, NAVY);
    // Date line at the right.
    s.fill(m + w - 160, 180, 160, 10, GREY);
    let y = s.paragraph(m, 220, w, 6, 22);
    // Section heading and the table.
    s.fill(m, y, 240, 16, NAVY);
    let y = s.table(m, y + 34, &[280, 150, 137, 140], 8, 30);
    // Section heading and the bar chart: two series over six months.
    s.fill(m, y, 200, 16, NAVY);
    let (cx, cy, ch) = (m + 40, y + 40, 260);
    s.fill(cx, cy, 2, ch, INK);
    s.fill(cx, cy + ch, w - 80, 2, INK);
    for tick in 1..=4 {
        s.fill(cx - 8, cy + ch - tick * ch / 5, 8, 1, INK);
        s.fill(cx + 2, cy + ch - tick * ch / 5, w - 82, 1, LIGHT);
    }
    for month in 0..6 {
        let bx = cx + 30 + month * 105;
        let a = s.rng.range(ch * 30 / 100, ch * 95 / 100);
        let b = s.rng.range(ch * 20 / 100, ch * 80 / 100);
        s.fill(bx, cy + ch - a, 34, a, BLUE);
        s.fill(bx + 38, cy + ch - b, 34, b, GREEN);
        s.fill(bx + 10, cy + ch + 12, 52, 8, GREY);
    }
    let y = cy + ch + 50;
    s.paragraph(m, y, w, 3, 22);
    // Footer rule and page number.
    s.fill(m, A4.1 - 70, w, 1, GREY);
    s.page_number(1);
    s.img
}

/// The two pages of the price list, in grey.
fn price_list_pages() -> [image::GrayImage; 2] {
    let (m, w) = (60, A4.0 - 120);
    let mut one = Sheet::new(A4, 0x0091_ce11);
    one.fill(m, 60, w, 50, INK);
    one.fill(m + 20, 75, 300, 20, PAPER);
    one.text_line(m, 140, w / 2, 10, GREY, false);
    let y = one.paragraph(m, 175, w, 3, 22);
    one.table(m, y, &[330, 160, 217], 26, 30);
    one.page_number(1);

    let mut two = Sheet::new(A4, 0x0091_ce12);
    two.fill(m, 60, w, 6, INK);
    two.text_line(m, 80, w / 3, 10, GREY, false);
    let y = two.table(m, 110, &[330, 160, 217], 14, 30);
    let y = two.paragraph(m, y + 10, w, 5, 22);
    // Signature line and stamp box.
    two.fill(m + w - 260, y + 60, 260, 1, INK);
    two.frame(m + w - 90, y + 80, 80, 80, 2, INK);
    two.page_number(2);
    [one, two].map(|s| DynamicImage::ImageRgb8(s.img).to_luma8())
}

/// The memo: header, To/From/Date/Subject, a highlighted line, a signature.
fn memo() -> RgbImage {
    let mut s = Sheet::new(A5, 0x3e30_0003);
    let (m, w) = (45, A5.0 - 90);
    s.fill(m, 40, 150, 34, INK);
    s.fill(m, 84, w, 3, INK);
    for (i, value) in [200u32, 260, 120, 330].into_iter().enumerate() {
        let y = 105 + i as u32 * 26;
        s.fill(m, y, 60, 10, GREY);
        s.fill(m + 80, y, value, 10, INK);
    }
    s.fill(m, 215, w, 1, GREY);
    let y = s.paragraph(m, 240, w, 3, 20);
    // A highlighted line: the marker first, the words over it.
    s.fill(m - 4, y - 4, w * 7 / 10 + 8, 17, HIGHLIGHT);
    s.text_line(m, y, w * 7 / 10, 9, INK, false);
    let y = s.paragraph(m, y + 30, w, 6, 20);
    // A handwritten-looking signature: a wavy pen stroke.
    let sig_x = m + w - 200;
    let sig_y = y + 60;
    let mut prev = None;
    for i in 0..180u32 {
        let t = i as f32 / 12.0;
        let dy = (t.sin() * 14.0 + (t * 2.7).cos() * 6.0) as i32;
        let yy = u32::try_from(sig_y as i32 + dy).unwrap_or(sig_y);
        // Joined to the previous point, so steep parts of the stroke have no gaps.
        let top = prev.map_or(yy, |p: u32| p.min(yy));
        let bottom = prev.map_or(yy, |p: u32| p.max(yy));
        s.fill(sig_x + i, top, 2, bottom - top + 3, NAVY);
        prev = Some(yy);
    }
    s.fill(sig_x, sig_y + 30, 190, 1, GREY);
    s.img
}

fn sales_report_png() -> anyhow::Result<Vec<u8>> {
    let mut bytes = Cursor::new(Vec::new());
    sales_report()
        .write_to(&mut bytes, ImageFormat::Png)
        .context("cannot encode the sample sales report")?;
    Ok(bytes.into_inner())
}

fn price_list_tiff() -> anyhow::Result<Vec<u8>> {
    let mut bytes = Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut bytes)
            .context("cannot start the sample price list")?
            .with_compression(Compression::Lzw);
        for page in price_list_pages() {
            let mut img = enc
                .new_image::<colortype::Gray8>(page.width(), page.height())
                .context("cannot encode the sample price list")?;
            img.resolution(ResolutionUnit::Inch, Rational { n: 100, d: 1 });
            img.write_data(page.as_raw())
                .context("cannot encode the sample price list")?;
        }
    }
    Ok(bytes.into_inner())
}

fn memo_jpeg() -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 85)
        .encode_image(&memo())
        .context("cannot encode the sample memo")?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paper::{Adf, decode_pages};

    #[test]
    fn samples_decode_with_the_right_pages_and_are_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_samples(dir.path()).unwrap();
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, SAMPLE_NAMES);

        let report = decode_pages(&paths[0]).unwrap();
        assert_eq!(report.len(), 1);
        assert_eq!((report[0].width(), report[0].height()), A4);
        let g = report[0].to_luma8();
        assert!(g.get_pixel(5, 5).0[0] > 240, "paper is white");
        assert!(g.get_pixel(61, 51).0[0] < 40, "the title frame is inked");

        let prices = decode_pages(&paths[1]).unwrap();
        assert_eq!(prices.len(), 2);
        for page in &prices {
            assert_eq!((page.width(), page.height()), A4);
        }
        assert!(prices[1].to_luma8().get_pixel(61, 61).0[0] < 40);

        let memo = decode_pages(&paths[2]).unwrap();
        assert_eq!(memo.len(), 1);
        assert_eq!((memo[0].width(), memo[0].height()), A5);
        assert!(memo[0].to_luma8().get_pixel(50, 50).0[0] < 60, "MEMO block");

        // The ADF takes them, in this order, with four pages in all.
        let scan = Adf::new(dir.path()).scan().unwrap();
        assert!(scan.refused.is_empty(), "{:?}", scan.refused);
        assert_eq!(scan.total_pages(), 4);

        let first: Vec<_> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
        let again = tempfile::tempdir().unwrap();
        for (p, bytes) in write_samples(again.path()).unwrap().iter().zip(&first) {
            assert_eq!(&std::fs::read(p).unwrap(), bytes, "{}", p.display());
        }
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
