//! The exchange folder: where numbers are held, faults kept and calls logged (layout in the
//! [module doc](super)).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::faults::{Fault, Faults, OnLine, Ring};
use super::{CallRecord, SimError, check_number};

/// The longest a number rings before the call counts as not answered.
pub const MAX_RING_TIME: Duration = Duration::from_secs(10);

/// A simulated telephone exchange: a folder shared by every process on this machine that
/// takes part in the network. Cheap to clone; holds no open files.
#[derive(Debug, Clone)]
pub struct Exchange {
    dir: PathBuf,
    ring_time: Duration,
    time_scale: f64,
}

impl Exchange {
    /// Opens (creating if needed) the exchange in `dir`, ringing for [`MAX_RING_TIME`] and
    /// moving pages at machine speed.
    pub fn open(dir: &Path) -> Result<Exchange, SimError> {
        for sub in ["lines", "faults"] {
            imagecast_shared::private::create_dir_all(&dir.join(sub))
                .map_err(|e| SimError::io(dir, e))?;
        }
        let lock = dir.join("exchange.lock");
        if !lock.exists() {
            imagecast_shared::private::open_options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock)
                .map_err(|e| SimError::io(&lock, e))?;
        }
        Ok(Exchange {
            dir: dir.to_path_buf(),
            ring_time: MAX_RING_TIME,
            time_scale: 0.0,
        })
    }

    /// The same exchange with calls from this process ringing for `ring_time` (at most
    /// [`MAX_RING_TIME`]) before they count as not answered: short in tests.
    pub fn with_ring_time(mut self, ring_time: Duration) -> Exchange {
        self.ring_time = ring_time.min(MAX_RING_TIME);
        self
    }

    /// The same exchange with calls from this process taking `scale` times the time a real
    /// V.17 (14 400 bit/s) call takes: 0 (the default) is machine speed, 1 real time, 0.1 ten
    /// times faster than real. For demos.
    pub fn with_time_scale(mut self, scale: f64) -> Exchange {
        self.time_scale = if scale.is_finite() {
            scale.max(0.0)
        } else {
            0.0
        };
        self
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long a call from this process rings before it counts as not answered.
    pub fn ring_time(&self) -> Duration {
        self.ring_time
    }

    /// The time scale of calls from this process (see [`Exchange::with_time_scale`]).
    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }

    /// The folder of a held number.
    pub(crate) fn line_dir(&self, number: &str) -> PathBuf {
        self.dir.join("lines").join(number)
    }

    fn faults_file(&self, number: &str) -> PathBuf {
        self.dir.join("faults").join(format!("{number}.toml"))
    }

    /// Runs `f` holding the exchange lock, which serialises fault updates and call-log lines
    /// across processes.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, SimError>) -> Result<T, SimError> {
        let path = self.dir.join("exchange.lock");
        let file = imagecast_shared::private::open_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| SimError::io(&path, e))?;
        file.lock().map_err(|e| SimError::io(&path, e))?;
        let out = f();
        let _ = file.unlock();
        out
    }

    fn read_faults(&self, number: &str) -> Result<Faults, SimError> {
        let path = self.faults_file(number);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| SimError::Faults {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Faults::default()),
            Err(e) => Err(SimError::io(&path, e)),
        }
    }

    fn write_faults(&self, number: &str, faults: &Faults) -> Result<(), SimError> {
        let path = self.faults_file(number);
        if faults.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SimError::io(&path, e)),
                _ => Ok(()),
            };
        }
        let text = toml::to_string(faults).map_err(|e| SimError::Faults {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let part = path.with_extension("toml.part");
        imagecast_shared::private::write(&part, text.as_bytes())
            .map_err(|e| SimError::io(&part, e))?;
        std::fs::rename(&part, &path).map_err(|e| SimError::io(&path, e))
    }

    /// Sets `fault` on `number` (replacing a fault of the same kind); the next calls to it
    /// see it.
    pub fn set_fault(&self, number: &str, fault: Fault) -> Result<(), SimError> {
        check_number(number)?;
        self.locked(|| {
            let mut faults = self.read_faults(number)?;
            faults.set(fault);
            self.write_faults(number, &faults)
        })
    }

    /// The faults set on `number`.
    pub fn faults(&self, number: &str) -> Result<Faults, SimError> {
        check_number(number)?;
        self.locked(|| self.read_faults(number))
    }

    /// Clears every fault on every number.
    pub fn clear_faults(&self) -> Result<(), SimError> {
        self.locked(|| {
            let dir = self.dir.join("faults");
            let entries = std::fs::read_dir(&dir).map_err(|e| SimError::io(&dir, e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| SimError::io(&path, e))?;
            }
            Ok(())
        })
    }

    pub(crate) fn take_ring(&self, number: &str) -> Result<Ring, SimError> {
        self.locked(|| {
            let mut faults = self.read_faults(number)?;
            let ring = faults.take_ring();
            if ring != Ring::Normal {
                self.write_faults(number, &faults)?;
            }
            Ok(ring)
        })
    }

    pub(crate) fn take_on_line(&self, number: &str) -> Result<OnLine, SimError> {
        self.locked(|| {
            let mut faults = self.read_faults(number)?;
            let on_line = faults.take_on_line();
            if on_line != OnLine::default() {
                self.write_faults(number, &faults)?;
            }
            Ok(on_line)
        })
    }

    /// Appends one call to the call log (`calls.log`).
    pub(crate) fn log_call(&self, record: &CallRecord) -> Result<(), SimError> {
        use std::io::Write;
        let path = self.dir.join("calls.log");
        let line = record.to_line();
        self.locked(|| {
            let mut file = imagecast_shared::private::open_options()
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|e| SimError::io(&path, e))?;
            file.write_all(line.as_bytes())
                .map_err(|e| SimError::io(&path, e))
        })
    }

    /// Every call made on this exchange, oldest first.
    pub fn calls(&self) -> Result<Vec<CallRecord>, SimError> {
        let path = self.dir.join("calls.log");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SimError::io(&path, e)),
        };
        Ok(text.lines().filter_map(CallRecord::from_line).collect())
    }

    /// The numbers held right now, with the station holding each.
    pub fn numbers(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.dir.join("lines")) else {
            return out;
        };
        for entry in entries.flatten() {
            let number = entry.file_name().to_string_lossy().into_owned();
            let holder = entry.path().join("holder");
            let Ok(file) = File::open(&holder) else {
                continue;
            };
            // A holder file whose lock can be taken is left over from a process that died.
            if file.try_lock_shared().is_ok() {
                continue;
            }
            let station = std::fs::read_to_string(&holder)
                .ok()
                .and_then(|t| t.lines().nth(1).map(str::to_string))
                .unwrap_or_default();
            out.push((number, station));
        }
        out.sort();
        out
    }
}

/// Seconds since the epoch, for call records.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
