//! Result lines (`prefix key=value ...`, the shape the peer harness in `shared/bench` prints and
//! its `summarize.py` reads) and the statistics behind them.

use std::fmt;

/// One machine-readable result line.
pub struct Line {
    prefix: &'static str,
    fields: Vec<(String, String)>,
}

impl Line {
    /// A line starting with `prefix`.
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            fields: Vec::new(),
        }
    }

    /// Adds `key=value`.
    pub fn field(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.fields.push((key.to_owned(), value.to_string()));
        self
    }

    /// Adds `key=value` with a number rounded to three significant digits.
    pub fn num(self, key: &str, value: f64) -> Self {
        self.field(key, sig3(value))
    }

    /// Adds `key_median`, `key_min` and `key_max` of the samples.
    pub fn spread(self, key: &str, samples: &[f64]) -> Self {
        self.num(&format!("{key}_median"), median(samples))
            .num(&format!("{key}_min"), min(samples))
            .num(&format!("{key}_max"), max(samples))
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix)?;
        for (k, v) in &self.fields {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// A number with three significant digits, without exponent, for reading by eye and by script.
pub fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return "nan".to_owned();
    }
    if v == 0.0 {
        return "0".to_owned();
    }
    let digits = v.abs().log10().floor() as i32;
    let decimals = (2 - digits).clamp(0, 9) as usize;
    format!("{v:.decimals$}")
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The median (mean of the two middle samples for an even count); NaN when empty.
pub fn median(samples: &[f64]) -> f64 {
    let v = sorted(samples);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The nearest-rank percentile `p` (0–100); NaN when empty.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let v = sorted(samples);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The smallest sample; NaN when empty.
pub fn min(samples: &[f64]) -> f64 {
    sorted(samples).first().copied().unwrap_or(f64::NAN)
}

/// The largest sample; NaN when empty.
pub fn max(samples: &[f64]) -> f64 {
    sorted(samples).last().copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(median(&v), 3.0);
        assert_eq!(median(&[1.0, 2.0]), 1.5);
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 99.0), 5.0);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 99.0), 99.0);
        assert_eq!(sig3(0.123456), "0.123");
        assert_eq!(sig3(2912.7), "2913");
        assert_eq!(sig3(12.34), "12.3");
    }
}
