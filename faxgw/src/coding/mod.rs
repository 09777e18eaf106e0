//! Fax page coding: ITU-T T.4 Group 3 one-dimensional (Modified Huffman) and T.6 Group 4.
//!
//! - [`t4`]: the MH encoder (the `fax` crate encodes Group 4 only) and a line-by-line MH
//!   decoder that resynchronises on EOL codes, as a fax receiver does.
//! - [`t6`]: Group 4 through the `fax` crate's encoder and decoder.
//! - [`check`]: the receiver's page check (copy quality), HylaFAX's defaults.
//!
//! Encoded data is most significant bit first (TIFF FillOrder 1). MH data is a sequence of
//! `EOL line` pairs ended by RTC (six EOLs), without fill bits (T4Options 0); Group 4 data
//! ends with EOFB.

pub mod check;
pub mod t4;
pub mod t6;

use serde::{Deserialize, Serialize};

use crate::page::FaxPage;

/// How a page's bits are coded on the line and in a TIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Coding {
    /// ITU-T T.4 Group 3 one-dimensional, Modified Huffman (TIFF Compression 3).
    Mh,
    /// ITU-T T.6 Group 4 (TIFF Compression 4); on a fax line only with error correction.
    G4,
}

impl Coding {
    /// The name used in logs, call records and the call log: `MH` or `G4`.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Mh => "MH",
            Coding::G4 => "G4",
        }
    }

    /// The TIFF Compression tag value.
    pub fn tiff_compression(self) -> u16 {
        match self {
            Coding::Mh => 3,
            Coding::G4 => 4,
        }
    }
}

/// A page's data that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{coding} data does not decode: {reason}")]
pub struct DecodeError {
    /// The coding tried (`MH` or `G4`).
    pub coding: &'static str,
    /// Where it went wrong.
    pub reason: String,
}

/// `page` coded with `coding`.
pub fn encode(page: &FaxPage, coding: Coding) -> Vec<u8> {
    match coding {
        Coding::Mh => t4::encode(page),
        Coding::G4 => t6::encode(page),
    }
}

/// `data` decoded into a page of `rows` rows (G4 needs the count; MH data carries its own and
/// must hold exactly `rows` good lines).
pub fn decode(
    data: &[u8],
    coding: Coding,
    resolution: crate::page::Resolution,
    rows: u32,
) -> Result<FaxPage, DecodeError> {
    match coding {
        Coding::Mh => t4::decode(data, resolution, rows),
        Coding::G4 => t6::decode(data, resolution, rows),
    }
}

/// Writes the runs of one decoded line, given as the positions where the colour changes
/// (starting white, as the `fax` crate reports them), into a packed row.
pub(crate) fn fill_row(transitions: &[u32], row: &mut [u8]) {
    row.fill(0);
    let width = (row.len() * 8) as u32;
    for pair in transitions.chunks(2) {
        let start = pair[0].min(width);
        let end = pair.get(1).copied().unwrap_or(width).min(width);
        for x in start..end {
            row[x as usize / 8] |= 0x80 >> (x % 8);
        }
    }
}

/// The run lengths of a packed row, alternating white, black, white…, starting with a
/// (possibly empty) white run; they add up to the row's width.
pub(crate) fn runs(row: &[u8]) -> Vec<u32> {
    let width = (row.len() * 8) as u32;
    let mut out = Vec::new();
    let mut black = false;
    let mut run = 0;
    for x in 0..width {
        let pixel = row[x as usize / 8] & (0x80 >> (x % 8)) != 0;
        if pixel != black {
            out.push(run);
            run = 0;
            black = pixel;
        }
        run += 1;
    }
    out.push(run);
    out
}
