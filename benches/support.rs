//! Small pieces every benchmark harness shares: knobs read from the
//! environment and the Markdown cells of a timing row. Each bench uses part
//! of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::time::Duration;

/// The number in environment variable `name`, or `default` when it is unset
/// or not a number, so a bench run can be shortened without editing code.
pub fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `median | min | max | count` of `samples` in milliseconds, the cells every
/// timing table in BENCHMARKS.md uses.
pub fn cells(samples: &[Duration]) -> String {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let median = ms.get(ms.len() / 2).copied().unwrap_or_default();
    let min = ms.first().copied().unwrap_or_default();
    let max = ms.last().copied().unwrap_or_default();
    format!("{median:.2} | {min:.2} | {max:.2} | {}", ms.len())
}
