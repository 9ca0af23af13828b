//! The process's CPU time, memory, threads and open files, read from
//! `/proc/self` at every scrape under the names Prometheus's own clients
//! use (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …).
//! Linux only: elsewhere nothing is reported.

use nix::unistd::{SysconfVar, sysconf};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// The process, as `/proc/self/stat` and `/proc/self/fd` describe it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    virtual_bytes: u64,
    resident_bytes: u64,
    threads: u64,
}

/// Reports [`ProcessStats`] and the open file count.
#[derive(Debug)]
pub struct ProcessCollector {
    ticks_per_second: f64,
    page_bytes: u64,
}

impl ProcessCollector {
    /// Asks the system once for its clock tick and page size.
    pub fn new() -> Self {
        let ask = |var| sysconf(var).ok().flatten().filter(|v| *v > 0);
        ProcessCollector {
            ticks_per_second: ask(SysconfVar::CLK_TCK).map_or(100.0, |t| t as f64),
            page_bytes: ask(SysconfVar::PAGE_SIZE)
                .and_then(|p| u64::try_from(p).ok())
                .unwrap_or(4096),
        }
    }

    fn stats(&self) -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        parse_stat(&stat, self.ticks_per_second, self.page_bytes)
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(stats) = self.stats() {
            let cpu = ConstCounter::new(stats.cpu_seconds);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu",
                "User and system CPU time the process used.",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?)?;
            let gauges = [
                (
                    "process_resident_memory",
                    "Resident memory size.",
                    Some(Unit::Bytes),
                    stats.resident_bytes,
                ),
                (
                    "process_virtual_memory",
                    "Virtual memory size.",
                    Some(Unit::Bytes),
                    stats.virtual_bytes,
                ),
                ("process_threads", "OS threads.", None, stats.threads),
            ];
            for (name, help, unit, value) in gauges {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(
                    name,
                    help,
                    unit.as_ref(),
                    gauge.metric_type(),
                )?)?;
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let gauge = ConstGauge::new(u64::try_from(fds.count()).unwrap_or(u64::MAX));
            gauge.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Open file descriptors.",
                None,
                gauge.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// The fields of `/proc/self/stat` (see proc(5)) that matter here. The
/// command name (field 2) is in parentheses and may hold spaces or
/// parentheses itself, so fields are counted after its last `)`.
fn parse_stat(stat: &str, ticks_per_second: f64, page_bytes: u64) -> Option<ProcessStats> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field n of proc(5) (1-based) is fields[n - 3]: fields 1 and 2 are before.
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let ticks = field(14)?.saturating_add(field(15)?);
    Some(ProcessStats {
        cpu_seconds: ticks as f64 / ticks_per_second,
        threads: field(20)?,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)?.saturating_mul(page_bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis, as proc(5) allows.
        let stat = "4242 (out rig) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    250 50 0 0 20 0 7 0 1000 123456789 300 18446744073709551615";
        let stats = parse_stat(stat, 100.0, 4096).expect("parsed");
        assert_eq!(
            stats,
            ProcessStats {
                cpu_seconds: 3.0,
                threads: 7,
                virtual_bytes: 123_456_789,
                resident_bytes: 300 * 4096,
            }
        );
        assert_eq!(parse_stat("4242 (outrig) S 1", 100.0, 4096), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let stats = ProcessCollector::new().stats().expect("/proc/self/stat");
        assert!(stats.resident_bytes > 0 && stats.virtual_bytes >= stats.resident_bytes);
        assert!(stats.threads >= 1);
    }
}
