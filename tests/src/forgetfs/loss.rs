//! The power-loss choice: which unsynced changes survive, drawn from a seed so that a failing
//! run replays.

use std::collections::VecDeque;

/// What becomes of a file's unsynced data at a power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFate {
    /// It reached the disk after all.
    Kept,
    /// None of it reached the disk.
    Dropped,
    /// Some 4 KiB blocks did, and the file has its old or its new length.
    Torn,
}

/// How a power loss treats unsynced changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Everything unsynced is lost: the harshest case, where each missing fsync shows.
    DropAll,
    /// Each unsynced change survives or not at random (files: kept, dropped or torn).
    Random,
}

/// The chooser: seeded, or scripted for unit tests.
#[derive(Clone, Debug)]
pub struct Losses {
    state: u64,
    severity: Severity,
    ops: Option<VecDeque<bool>>,
    fates: Option<VecDeque<DataFate>>,
    coins: Option<VecDeque<bool>>,
}

impl Losses {
    /// Choices drawn from `seed` with the given severity.
    pub fn seeded(seed: u64, severity: Severity) -> Self {
        Self {
            state: seed ^ 0x2545_F491_4F6C_DD1D,
            severity,
            ops: None,
            fates: None,
            coins: None,
        }
    }

    /// Every unsynced change is lost.
    pub fn drop_all() -> Self {
        Self::seeded(0, Severity::DropAll)
    }

    /// Scripted choices: which logged operations survive, in log order, and each dirty
    /// file's fate (in no particular file order); once a script runs out, nothing survives.
    pub fn scripted(ops: &[bool], fates: &[DataFate]) -> Self {
        Self {
            ops: Some(ops.iter().copied().collect()),
            fates: Some(fates.iter().copied().collect()),
            ..Self::drop_all()
        }
    }

    /// Scripted coin flips for torn files: first the length (true: the old one), then each
    /// block (true: the new data).
    pub fn script_coins(&mut self, coins: &[bool]) {
        self.coins = Some(coins.iter().copied().collect());
    }

    /// The severity.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    fn next(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        match &mut self.coins {
            Some(c) => c.pop_front().unwrap_or(false),
            None => self.next() & 1 == 1,
        }
    }

    /// Does an unsynced namespace operation survive?
    pub fn keep_op(&mut self) -> bool {
        match &mut self.ops {
            Some(o) => o.pop_front().unwrap_or(false),
            None => self.severity == Severity::Random && self.coin(),
        }
    }

    /// What becomes of a file's unsynced data?
    pub fn data_fate(&mut self) -> DataFate {
        match &mut self.fates {
            Some(f) => f.pop_front().unwrap_or(DataFate::Dropped),
            None if self.severity == Severity::DropAll => DataFate::Dropped,
            None => match self.next() % 3 {
                0 => DataFate::Kept,
                1 => DataFate::Dropped,
                _ => DataFate::Torn,
            },
        }
    }

    /// Does an unsynced change of a file's mode survive?
    pub fn keep_mode(&mut self) -> bool {
        self.ops.is_none() && self.severity == Severity::Random && self.coin()
    }
}
