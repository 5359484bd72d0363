//! What the operating system says about the generator process itself: how
//! long its threads waited for a CPU (the run-queue delay), how much CPU it
//! used, and how many CPUs it may use (affinity and cgroup quota). The
//! generator's health ([`crate::report::generator`] judges it) is read from
//! these, sampled at the run's start, once a second and at its end.
//!
//! Linux only: elsewhere, or where `/proc` is not mounted, the run-queue
//! delay reads as not measured (`None`) and the allowance as the affinity
//! (or the machine's parallelism).

use std::time::Duration;

/// The process at one instant: cumulative since each thread started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessSample {
    /// Time its threads spent runnable but waiting for a CPU, summed over
    /// the threads alive now (`/proc/self/task/*/schedstat`, 2nd field);
    /// None when not readable.
    pub run_queue: Option<Duration>,
    /// Times its threads were put on a CPU (3rd field), summed likewise.
    pub slices: u64,
    /// CPU time used, user + system (`getrusage(RUSAGE_SELF)`).
    pub cpu: Duration,
}

impl ProcessSample {
    /// The process now.
    pub fn now() -> ProcessSample {
        let (run_queue, slices) = match run_queue_now() {
            Some((wait, slices)) => (Some(wait), slices),
            None => (None, 0),
        };
        ProcessSample {
            run_queue,
            slices,
            cpu: process_cpu(),
        }
    }

    /// What happened between `earlier` and this sample. A thread that
    /// ended in between takes its share with it, so a delta never goes
    /// below zero.
    pub fn since(&self, earlier: &ProcessSample) -> ProcessSample {
        ProcessSample {
            run_queue: match (self.run_queue, earlier.run_queue) {
                (Some(now), Some(then)) => Some(now.saturating_sub(then)),
                _ => None,
            },
            slices: self.slices.saturating_sub(earlier.slices),
            cpu: self.cpu.saturating_sub(earlier.cpu),
        }
    }
}

/// CPU time (user + system) this process has used.
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Sum over this process's threads of (run-queue wait, time slices).
fn run_queue_now() -> Option<(Duration, u64)> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut wait_ns = 0u64;
    let mut slices = 0u64;
    let mut any = false;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: skip it.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some((wait, n)) = parse_schedstat(&text) {
            wait_ns = wait_ns.saturating_add(wait);
            slices = slices.saturating_add(n);
            any = true;
        }
    }
    any.then_some((Duration::from_nanos(wait_ns), slices))
}

/// `schedstat`: "on-CPU ns, run-queue wait ns, time slices".
fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_whitespace().skip(1);
    let wait = fields.next()?.parse().ok()?;
    let slices = fields.next()?.parse().ok()?;
    Some((wait, slices))
}

/// How many CPUs the process may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuAllowance {
    /// CPUs in its affinity mask (`sched_getaffinity`).
    pub affinity: usize,
    /// Its cgroup's CPU quota in CPUs (v2 `cpu.max`, v1
    /// `cpu.cfs_quota_us / cpu.cfs_period_us`, the tightest up the
    /// hierarchy); None without a quota.
    pub quota: Option<f64>,
}

impl CpuAllowance {
    /// The process's allowance now.
    pub fn now() -> CpuAllowance {
        CpuAllowance {
            affinity: affinity_cpus(),
            quota: cgroup_quota(),
        }
    }

    /// The CPUs it may use: the lesser of the two.
    pub fn cpus(&self) -> f64 {
        let affinity = self.affinity.max(1) as f64;
        self.quota.map_or(affinity, |q| q.min(affinity))
    }
}

fn affinity_cpus() -> usize {
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes
    // into the set we pass; CPU_COUNT only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let n = libc::CPU_COUNT(&set);
            if n > 0 {
                return n as usize;
            }
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The tightest CPU quota of this process's cgroup and its parents.
fn cgroup_quota() -> Option<f64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut tightest: Option<f64> = None;
    let mut keep = |q: Option<f64>| {
        if let Some(q) = q {
            tightest = Some(tightest.map_or(q, |t: f64| t.min(q)));
        }
    };
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            for dir in ancestors("/sys/fs/cgroup", path) {
                let max = std::fs::read_to_string(format!("{dir}/cpu.max")).ok();
                keep(max.as_deref().and_then(parse_cpu_max));
            }
        } else if controllers.split(',').any(|c| c == "cpu") {
            for base in ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"] {
                for dir in ancestors(base, path) {
                    let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
                    keep(parse_cfs(
                        read("cpu.cfs_quota_us").as_deref(),
                        read("cpu.cfs_period_us").as_deref(),
                    ));
                }
            }
        }
    }
    tightest
}

/// `base/path`, then each parent up to `base`.
fn ancestors(base: &str, path: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut path = path.trim_end_matches('/').to_string();
    loop {
        dirs.push(format!("{base}{path}"));
        match path.rfind('/') {
            Some(at) if !path.is_empty() => path.truncate(at),
            _ => break,
        }
    }
    dirs
}

/// v2 `cpu.max`: "max 100000" (no quota) or "150000 100000" (1.5 CPUs).
fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut fields = text.split_whitespace();
    let quota: f64 = fields.next()?.parse().ok()?;
    let period: f64 = fields.next()?.parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// v1: quota −1 is no quota.
fn parse_cfs(quota: Option<&str>, period: Option<&str>) -> Option<f64> {
    let quota: f64 = quota?.trim().parse().ok()?;
    let period: f64 = period?.trim().parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_and_quotas_parse() {
        assert_eq!(parse_schedstat("123 456 7\n"), Some((456, 7)));
        assert_eq!(parse_schedstat("123\n"), None);
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cfs(Some("-1\n"), Some("100000\n")), None);
        assert_eq!(parse_cfs(Some("50000\n"), Some("100000\n")), Some(0.5));
        assert_eq!(
            ancestors("/sys/fs/cgroup", "/a/b"),
            ["/sys/fs/cgroup/a/b", "/sys/fs/cgroup/a", "/sys/fs/cgroup"]
        );
        assert_eq!(ancestors("/sys/fs/cgroup", "/"), ["/sys/fs/cgroup"]);
    }

    #[test]
    fn the_allowance_is_the_lesser_of_affinity_and_quota() {
        let a = CpuAllowance {
            affinity: 4,
            quota: Some(1.5),
        };
        assert_eq!(a.cpus(), 1.5);
        let b = CpuAllowance {
            affinity: 2,
            quota: None,
        };
        assert_eq!(b.cpus(), 2.0);
        assert!(CpuAllowance::now().cpus() >= 0.01);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_run_queue_and_cpu_time() {
        let before = ProcessSample::now();
        // Burn a little CPU so the counters move.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = ProcessSample::now();
        assert!(after.run_queue.is_some());
        assert!(after.slices > 0);
        assert!(after.since(&before).cpu > Duration::ZERO);
        assert!(before.since(&after).cpu == Duration::ZERO);
    }
}
