//! ITU-T T.6 Group 4 coding through the `fax` crate's encoder and decoder.

use fax::decoder::{DecodeStatus, Group4Decoder};
use fax::encoder::Encoder;
use fax::{Color, VecWriter};

use super::{DecodeError, fill_row};
use crate::page::{FAX_WIDTH, FaxPage, ROW_BYTES, Resolution};

/// `page` coded as T.6 data, ended by EOFB.
pub fn encode(page: &FaxPage) -> Vec<u8> {
    let mut encoder = Encoder::new(VecWriter::with_capacity(page.rows as usize * 32));
    for y in 0..page.rows {
        let row = page.row(y);
        let pels = (0..FAX_WIDTH).map(|x| {
            if row[x as usize / 8] & (0x80 >> (x % 8)) != 0 {
                Color::Black
            } else {
                Color::White
            }
        });
        let Ok(()) = encoder.encode_line(pels, FAX_WIDTH);
    }
    let Ok(writer) = encoder.finish();
    writer.finish()
}

/// Decodes up to `rows` rows of T.6 `data`; returns the rows that decoded and, if the data
/// broke or ended early, why.
pub fn decode_rows(data: &[u8], rows: u32) -> (Vec<Vec<u8>>, Option<String>) {
    let reader = data.iter().copied().map(Ok::<u8, std::convert::Infallible>);
    let Ok(mut decoder) = Group4Decoder::new(reader, FAX_WIDTH);
    let mut out = Vec::new();
    while out.len() < rows as usize {
        match decoder.advance() {
            Ok(DecodeStatus::Incomplete) => {
                let transitions = decoder.transition();
                if transitions.iter().any(|&t| t > FAX_WIDTH) {
                    return (out, Some("a line runs past the page width".into()));
                }
                let mut row = vec![0; ROW_BYTES];
                fill_row(transitions, &mut row);
                out.push(row);
            }
            Ok(DecodeStatus::End) => {
                let n = out.len();
                return (out, Some(format!("the data ends after {n} rows")));
            }
            Err(_) => {
                let n = out.len();
                return (out, Some(format!("a code in row {} is invalid", n + 1)));
            }
        }
    }
    (out, None)
}

/// T.6 `data` decoded into a page of `rows` rows.
pub fn decode(data: &[u8], resolution: Resolution, rows: u32) -> Result<FaxPage, DecodeError> {
    match decode_rows(data, rows) {
        (decoded, None) => Ok(FaxPage {
            resolution,
            rows,
            bits: decoded.concat(),
        }),
        (_, Some(reason)) => Err(DecodeError {
            coding: "G4",
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::t4::tests::sample_pages;

    #[test]
    fn g4_round_trips_through_the_fax_crate_decoder() {
        for page in sample_pages() {
            let data = encode(&page);
            let mut rows: Vec<Vec<u8>> = Vec::new();
            fax::decoder::decode_g4(data.iter().copied(), FAX_WIDTH, Some(page.rows), |t| {
                let mut row = vec![0; ROW_BYTES];
                fill_row(t, &mut row);
                rows.push(row);
            })
            .expect("decodes");
            assert_eq!(rows.concat(), page.bits);
            assert_eq!(decode(&data, page.resolution, page.rows).unwrap(), page);
        }
    }

    #[test]
    fn truncated_g4_data_is_an_error() {
        let page = sample_pages().swap_remove(2);
        let data = encode(&page);
        assert!(decode(&data[..data.len() / 3], page.resolution, page.rows).is_err());
    }
}
