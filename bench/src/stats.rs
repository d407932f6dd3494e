//! Small measurement helpers: latency summaries, process memory, and table printing.

use std::time::Duration;

/// Latencies of individual operations, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<u64>);

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `q` quantile (0..=1) in microseconds; nearest-rank on a sorted copy.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[rank] as f64 / 1000.0
    }

    pub fn max_us(&self) -> f64 {
        self.0.iter().max().map_or(f64::NAN, |&n| n as f64 / 1000.0)
    }

    /// How many took `limit` or longer.
    pub fn at_least(&self, limit: Duration) -> usize {
        let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        self.0.iter().filter(|&&n| n >= limit).count()
    }
}

/// The median of a few per-round figures: robust against a round disturbed by other load.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`), or `None` where unavailable.
pub fn proc_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The CPU time a process has used so far (user and system, all its threads, the exited ones
/// included), from `/proc/<pid>/stat`; `None` where unavailable.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: the fields counted start after it.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    // Fields 14 and 15 of the line (utime, stime) are the 12th and 13th after the name.
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (user + system) as f64 / clock_ticks_per_second(),
    ))
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`), which `/proc` counts CPU time in;
/// 100 where `getconf` cannot say, the value on every Linux this runs on.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .filter(|ticks: &f64| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// A text table printed with aligned columns, first column left-aligned.
#[derive(Debug)]
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: &str, header: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            header: header.iter().map(|&h| h.to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Markdown, so the output pastes into BENCHMARKS.md as it is.
    pub fn print(&self) {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, String::len))
                    .chain([self.header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let text: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        format!("{c:<w$}", w = widths[i])
                    } else {
                        format!("{c:>w$}", w = widths[i])
                    }
                })
                .collect();
            println!("| {} |", text.join(" | "));
        };
        println!("\n### {}\n", self.title);
        line(&self.header);
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| match i {
                0 => format!(" {} ", "-".repeat(w)),
                _ => format!(" {}: ", "-".repeat(w.saturating_sub(1))),
            })
            .collect();
        println!("|{}|", rule.join("|"));
        for row in &self.rows {
            line(row);
        }
    }
}

/// A figure in microseconds with sensible precision.
pub fn us(value: f64) -> String {
    if value.is_nan() {
        "–".to_owned()
    } else if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// A ratio such as `1.73x`.
pub fn ratio(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() || b == 0.0 {
        "–".to_owned()
    } else {
        format!("{:.2}x", a / b)
    }
}

#[cfg(test)]
mod tests {
    use super::process_cpu;
    use std::time::{Duration, Instant};

    #[test]
    fn process_cpu_grows_while_this_process_works() {
        let before = process_cpu(std::process::id()).expect("readable on Linux");
        let start = Instant::now();
        let mut spin = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        let used = process_cpu(std::process::id()).unwrap() - before;
        assert!(used >= Duration::from_millis(100), "counted only {used:?}");
        assert!(process_cpu(u32::MAX).is_none(), "no such process");
    }
}
