//! ITU-T T.4 Group 3 one-dimensional coding (Modified Huffman), with the run-length code
//! tables of the `fax` crate (`fax::maps::{white, black}`).
//!
//! Each row is an EOL (`000000000001`) followed by its runs, alternating white and black and
//! starting with a (possibly empty) white run; a run of 64 or more pixels is a make-up code
//! followed by a terminating code. The page ends with RTC, six EOLs. No fill bits are used.
//!
//! [`decode_lines`] reads the data the way a receiving fax machine does: it cuts the bit
//! stream at every EOL and decodes each line on its own, so a damaged line costs that line
//! only and the page check ([`super::check`]) can count good and bad lines.

use fax::maps::{black, white};
use fax::{BitReader, BitWriter, Bits, VecWriter};

use super::{DecodeError, fill_row, runs};
use crate::page::{FAX_WIDTH, FaxPage, MAX_ROWS, ROW_BYTES, Resolution};

/// The end-of-line code: eleven zeros and a one.
const EOL: Bits = Bits { data: 1, len: 12 };
/// EOLs in the return-to-control sequence that ends a page.
const RTC_EOLS: usize = 6;

fn put(writer: &mut VecWriter, bits: Bits) {
    let Ok(()) = writer.write(bits);
}

/// The codes of one run of `n` pixels of one colour: make-up codes, then a terminating code.
fn put_run(writer: &mut VecWriter, is_black: bool, mut n: u32) {
    let code = |n: u32| {
        let n = n as u16;
        let bits = if is_black {
            black::encode(n)
        } else {
            white::encode(n)
        };
        bits.expect("T.4 has a code for every terminating and make-up run length")
    };
    while n >= 2560 {
        put(writer, code(2560));
        n -= 2560;
    }
    if n >= 64 {
        put(writer, code(n & !63));
        n &= 63;
    }
    put(writer, code(n));
}

/// `page` coded as T.4 one-dimensional (MH) data: EOL before every row, RTC at the end.
pub fn encode(page: &FaxPage) -> Vec<u8> {
    let mut writer = VecWriter::with_capacity(page.rows as usize * 64);
    for y in 0..page.rows {
        put(&mut writer, EOL);
        for (i, run) in runs(page.row(y)).into_iter().enumerate() {
            put_run(&mut writer, i % 2 == 1, run);
        }
    }
    for _ in 0..RTC_EOLS {
        put(&mut writer, EOL);
    }
    writer.finish()
}

/// Reads one line's bits; past the end it reads zeros but refuses to consume them.
struct LineReader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl LineReader<'_> {
    fn bit(&self, i: usize) -> u16 {
        if i >= self.end {
            return 0;
        }
        u16::from(self.data[i / 8] >> (7 - i % 8) & 1)
    }
}

impl BitReader for LineReader<'_> {
    type Error = ();

    fn peek(&self, bits: u8) -> Option<u16> {
        if bits > 16 {
            return None;
        }
        Some((0..usize::from(bits)).fold(0, |acc, i| acc << 1 | self.bit(self.pos + i)))
    }

    fn consume(&mut self, bits: u8) -> Result<(), ()> {
        if self.pos + usize::from(bits) > self.end {
            return Err(());
        }
        self.pos += usize::from(bits);
        Ok(())
    }

    fn bits_to_byte_boundary(&self) -> u8 {
        ((8 - self.pos % 8) % 8) as u8
    }
}

/// One run: make-up codes and a terminating code of one colour.
fn read_run(reader: &mut LineReader<'_>, is_black: bool) -> Option<u32> {
    let mut sum = 0u32;
    // A run of a fax row needs at most two make-up codes (2560 + 1728) and a terminating one.
    for _ in 0..4 {
        let n = if is_black {
            black::decode(reader)?
        } else {
            white::decode(reader)?
        };
        sum = sum.checked_add(u32::from(n))?;
        if n < 64 {
            return Some(sum);
        }
    }
    None
}

/// The line between bits `start` and `end`, decoded into a packed row; `None` if it does not
/// hold exactly one row of [`FAX_WIDTH`] pixels followed by nothing but zero fill.
fn decode_line(data: &[u8], start: usize, end: usize) -> Option<Vec<u8>> {
    let mut reader = LineReader {
        data,
        pos: start,
        end,
    };
    let mut transitions = Vec::new();
    let mut x = 0u32;
    let mut is_black = false;
    while x < FAX_WIDTH {
        x = x.checked_add(read_run(&mut reader, is_black)?)?;
        transitions.push(x);
        is_black = !is_black;
    }
    if x != FAX_WIDTH || (reader.pos..end).any(|i| reader.bit(i) != 0) {
        return None;
    }
    let mut row = vec![0; ROW_BYTES];
    fill_row(&transitions, &mut row);
    Some(row)
}

/// The lines of MH `data`, each decoded on its own: `Some(row)` for a good line, `None` for a
/// damaged one. The empty lines of RTC at the end are not lines. At most
/// [`MAX_ROWS`]` + 1` lines are returned: a longer page is not a fax page, and hostile data
/// must not make the receiver hold millions of rows.
pub fn decode_lines(data: &[u8]) -> Vec<Option<Vec<u8>>> {
    let total = data.len() * 8;
    // Bit positions just after each EOL (eleven or more zeros, then a one).
    let mut starts = Vec::new();
    // Where each EOL's eleven zeros begin: the end of the line before it.
    let mut ends = Vec::new();
    let mut zeros = 0usize;
    for i in 0..total {
        if data[i / 8] >> (7 - i % 8) & 1 == 0 {
            zeros += 1;
        } else {
            if zeros >= 11 {
                ends.push(i - 11);
                starts.push(i + 1);
            }
            zeros = 0;
        }
    }
    let mut segments: Vec<(usize, usize)> = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = ends.get(k + 1).copied().unwrap_or(total);
        segments.push((start, end.max(start)));
    }
    let is_empty = |&(s, e): &(usize, usize)| (s..e).all(|i| data[i / 8] >> (7 - i % 8) & 1 == 0);
    while segments.last().is_some_and(is_empty) {
        segments.pop();
    }
    segments
        .into_iter()
        .take(MAX_ROWS as usize + 1)
        .map(|(s, e)| decode_line(data, s, e))
        .collect()
}

/// MH `data` decoded into a page that must hold exactly `rows` good lines.
pub fn decode(data: &[u8], resolution: Resolution, rows: u32) -> Result<FaxPage, DecodeError> {
    let lines = decode_lines(data);
    let error = |reason: String| DecodeError {
        coding: "MH",
        reason,
    };
    if lines.len() != rows as usize {
        return Err(error(format!(
            "{} lines where {rows} were expected",
            lines.len()
        )));
    }
    let mut page = FaxPage::white(resolution, rows);
    for (y, line) in lines.into_iter().enumerate() {
        let row = line.ok_or_else(|| error(format!("line {} is damaged", y + 1)))?;
        page.row_mut(y as u32).copy_from_slice(&row);
    }
    Ok(page)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A deterministic pseudo-random generator, so failures repeat.
    pub(crate) struct Lcg(pub u64);
    impl Lcg {
        pub(crate) fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }
    }

    /// Pages that exercise the coders: random noise, runs of every length, text-like blocks,
    /// all white and all black.
    pub(crate) fn sample_pages() -> Vec<FaxPage> {
        let mut rng = Lcg(7);
        let mut noise = FaxPage::white(Resolution::Fine, 60);
        noise.bits.iter_mut().for_each(|b| *b = rng.next() as u8);
        let mut structured = FaxPage::white(Resolution::Standard, 200);
        for y in 0..200u32 {
            // Runs of every length from 1 to 200, and rows ending black.
            let mut x = 0u32;
            let mut black = y % 2 == 0;
            let mut len = 1 + y;
            while x < FAX_WIDTH {
                for i in x..(x + len).min(FAX_WIDTH) {
                    structured.set(i, y, black);
                }
                x += len;
                len = (len * 7 + 3) % 200 + 1;
                black = !black;
            }
        }
        let mut text = FaxPage::white(Resolution::Fine, 300);
        for y in 20..280 {
            for x in (100..1600).filter(|x| (x / 9 + y / 13) % 3 == 0) {
                text.set(x, y, true);
            }
        }
        let mut black = FaxPage::white(Resolution::Standard, 40);
        black.bits.fill(0xff);
        let mut edges = FaxPage::white(Resolution::Standard, 3);
        edges.set(0, 0, true);
        edges.set(FAX_WIDTH - 1, 1, true);
        vec![
            noise,
            structured,
            text,
            FaxPage::white(Resolution::Standard, 1100),
            black,
            edges,
        ]
    }

    /// The `fax` crate's own Group 3 decoder: the reference the encoder is checked against.
    fn fax_crate_decode(data: &[u8], resolution: Resolution) -> FaxPage {
        let mut rows: Vec<Vec<u8>> = Vec::new();
        fax::decoder::decode_g3(data.iter().copied(), |t| {
            let mut row = vec![0; ROW_BYTES];
            fill_row(t, &mut row);
            rows.push(row);
        })
        .expect("the fax crate decodes the data");
        FaxPage {
            resolution,
            rows: rows.len() as u32,
            bits: rows.concat(),
        }
    }

    #[test]
    fn mh_round_trips_through_the_fax_crate_decoder() {
        for page in sample_pages() {
            let data = encode(&page);
            assert_eq!(fax_crate_decode(&data, page.resolution), page);
            assert_eq!(decode(&data, page.resolution, page.rows).unwrap(), page);
        }
    }

    #[test]
    fn an_all_white_line_is_the_1728_makeup_and_a_zero_run() {
        let data = encode(&FaxPage::white(Resolution::Standard, 1));
        // EOL, white 1728 make-up (010011011), white 0 (00110101), then RTC.
        let bits: String = data.iter().map(|b| format!("{b:08b}")).collect();
        assert!(bits.starts_with("000000000001" /* EOL */));
        assert!(bits[12..].starts_with("01001101100110101000000000001"));
    }

    #[test]
    fn a_damaged_line_costs_that_line_only() {
        let page = sample_pages().swap_remove(2);
        let mut data = encode(&page);
        let middle = data.len() / 2;
        data[middle] ^= 0x5a;
        let lines = decode_lines(&data);
        let bad = lines.iter().filter(|l| l.is_none()).count();
        assert!((1..=3).contains(&bad), "{bad} bad lines");
        assert!(lines.len() >= page.rows as usize - 2);
        assert!(decode(&data, page.resolution, page.rows).is_err());
    }
}
