//! The receiver's page check, with HylaFAX's copy-quality defaults: a page is confirmed when at
//! least 95 % of its lines are good and no more than 5 bad lines come in a row; otherwise it
//! is rejected (T.30 RTN) and the sender reports a page error.
//!
//! An MH page is checked line by line ([`super::t4::decode_lines`]); a bad line is replaced by
//! the good line above it, as a fax machine prints it. A Group 4 page travels with error
//! correction (ECM), whose frames carry a check sequence ([`frame_check`]): data that fails it
//! or does not decode is rejected whole, because one bad code spoils every row below it.

use super::{Coding, t4, t6};
use crate::page::{FaxPage, ROW_BYTES, Resolution};

/// The least share of good lines in a confirmed page, in percent (HylaFAX's
/// `PercentGoodLines`).
pub const PERCENT_GOOD_LINES: u32 = 95;
/// The most consecutive bad lines in a confirmed page (HylaFAX's `MaxConsecutiveBadLines`).
pub const MAX_CONSECUTIVE_BAD_LINES: u32 = 5;

/// What the receiver found in one page.
#[derive(Debug, Clone)]
pub struct PageCheck {
    /// Lines received (good and bad).
    pub lines: u32,
    /// Lines that decoded to a full row.
    pub good_lines: u32,
    /// The longest run of consecutive bad lines.
    pub max_bad_run: u32,
    /// The page as it prints: bad lines repeat the line above (white at the top).
    pub page: FaxPage,
    /// Why the page was refused outright (ECM frame check failed, G4 data broken), if it was.
    pub fatal: Option<String>,
}

impl PageCheck {
    /// True when the page meets the copy-quality thresholds (see the module doc).
    pub fn confirmed(&self) -> bool {
        self.fatal.is_none()
            && self.lines > 0
            && u64::from(self.good_lines) * 100
                >= u64::from(self.lines) * u64::from(PERCENT_GOOD_LINES)
            && self.max_bad_run <= MAX_CONSECUTIVE_BAD_LINES
    }

    /// Why the page is refused, for the sender and the logs; `None` when it is confirmed.
    pub fn reason(&self) -> Option<String> {
        if self.confirmed() {
            return None;
        }
        Some(match &self.fatal {
            Some(reason) => reason.clone(),
            None => format!(
                "{} of {} lines good, {} bad in a row (needs {PERCENT_GOOD_LINES} % good, at most {MAX_CONSECUTIVE_BAD_LINES} in a row)",
                self.good_lines, self.lines, self.max_bad_run
            ),
        })
    }
}

/// Checks one received page of `rows` announced rows coded with `coding`. `fcs` is the ECM
/// frame check sequence the sender computed, when the call uses error correction.
pub fn check_page(
    data: &[u8],
    coding: Coding,
    resolution: Resolution,
    rows: u32,
    fcs: Option<u32>,
) -> PageCheck {
    let whole_page_refused = |reason: String| PageCheck {
        lines: rows,
        good_lines: 0,
        max_bad_run: rows,
        page: FaxPage::white(resolution, rows),
        fatal: Some(reason),
    };
    if fcs.is_some_and(|expected| frame_check(data) != expected) {
        return whole_page_refused("the error-correction frame check failed".into());
    }
    match coding {
        Coding::G4 => match t6::decode(data, resolution, rows) {
            Ok(page) => PageCheck {
                lines: rows,
                good_lines: rows,
                max_bad_run: 0,
                page,
                fatal: None,
            },
            Err(e) => whole_page_refused(e.to_string()),
        },
        Coding::Mh => {
            let lines = t4::decode_lines(data);
            // Lines whose EOLs were lost run together into fewer, longer bad lines: the
            // missing ones count as bad too, next to the worst run.
            let printed = (lines.len() as u32).max(rows);
            let mut page = FaxPage::white(resolution, printed);
            let (mut good, mut run, mut max_run) = (0u32, 0u32, 0u32);
            let mut previous = vec![0u8; ROW_BYTES];
            for y in 0..printed {
                match lines.get(y as usize) {
                    Some(Some(row)) => {
                        good += 1;
                        run = 0;
                        previous.copy_from_slice(row);
                    }
                    Some(None) => {
                        run += 1;
                        max_run = max_run.max(run);
                    }
                    None => {}
                }
                page.row_mut(y).copy_from_slice(&previous);
            }
            let missing = rows.saturating_sub(lines.len() as u32);
            PageCheck {
                lines: printed,
                good_lines: good,
                max_bad_run: max_run + missing,
                page,
                fatal: None,
            }
        }
    }
}

/// CRC-32 (IEEE) of `data`: the frame check sequence of the simulated ECM frames.
pub fn frame_check(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Damages `data` the way a noisy line does, for the `page-error` fault: a band of bytes in
/// the middle of the page is scrambled, so far more than 5 lines in a row are lost.
pub fn corrupt(data: &mut [u8]) {
    let len = data.len();
    let (start, end) = (len / 4, len * 3 / 4);
    let mut state = 0x9e37_79b9u32;
    for byte in &mut data[start..end] {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *byte ^= (state as u8) | 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::{encode, t4::tests::sample_pages};

    #[test]
    fn clean_pages_are_confirmed_bit_for_bit() {
        for page in sample_pages() {
            for coding in [Coding::Mh, Coding::G4] {
                let data = encode(&page, coding);
                let check = check_page(
                    &data,
                    coding,
                    page.resolution,
                    page.rows,
                    Some(frame_check(&data)),
                );
                assert!(check.confirmed(), "{coding:?}: {:?}", check.reason());
                assert_eq!(check.page, page);
            }
        }
    }

    #[test]
    fn a_corrupted_page_is_rejected() {
        for page in sample_pages().into_iter().filter(|p| p.rows >= 40) {
            let mut mh = encode(&page, Coding::Mh);
            corrupt(&mut mh);
            let check = check_page(&mh, Coding::Mh, page.resolution, page.rows, None);
            assert!(!check.confirmed(), "MH page of {} rows passed", page.rows);
            assert!(check.reason().unwrap().contains("lines good"));

            let mut g4 = encode(&page, Coding::G4);
            let fcs = frame_check(&g4);
            corrupt(&mut g4);
            let check = check_page(&g4, Coding::G4, page.resolution, page.rows, Some(fcs));
            assert!(!check.confirmed());
            assert!(check.reason().unwrap().contains("frame check"));
        }
    }

    #[test]
    fn a_few_scattered_bad_lines_still_pass() {
        let page = sample_pages().swap_remove(1); // 200 structured rows
        let mut data = encode(&page, Coding::Mh);
        // Damage two lines far apart: 198 of 200 good is above 95 %.
        for at in [data.len() / 5, data.len() * 4 / 5] {
            data[at] ^= 0xff;
        }
        let check = check_page(&data, Coding::Mh, page.resolution, page.rows, None);
        assert!(check.good_lines < check.lines);
        assert!(check.confirmed(), "{:?}", check.reason());
    }
}
