//! The default number of ONNX Runtime intra-op threads: one per physical core.
//!
//! ONNX Runtime's own default is one intra-op thread per physical core
//! (`docs/performance/tune-performance/threading.md` in its repository). The engine
//! sets the count itself so that it also honours the process's CPU affinity and cgroup
//! quota, which `std::thread::available_parallelism` reads.
//!
//! NOTE: the machines this was built on have one hardware thread per core, so the
//! speed of one thread per core against one per hardware thread was not measured.
//!
//! On Linux the cores are counted from `/sys/devices/system/cpu/cpuN/topology`, over
//! the CPUs of `Cpus_allowed_list` in `/proc/self/status`. Elsewhere, or when those
//! files cannot be read, every CPU counts as a core.

use std::collections::BTreeSet;
use std::path::Path;

/// Returns the number of intra-op threads to use by default: the physical cores
/// this process may run on, at most `available_parallelism`, and at least 1.
pub fn default_threads() -> usize {
    let available = std::thread::available_parallelism().map_or(1, |count| count.get());
    let cores = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| allowed_cpus(&status))
        .and_then(|cpus| physical_cores(Path::new("/sys/devices/system/cpu"), &cpus));
    cores.map_or(available, |cores| cores.min(available)).max(1)
}

/// Parses the `Cpus_allowed_list` line of `/proc/self/status`, such as `0-3,8,10-11`.
fn allowed_cpus(status: &str) -> Option<Vec<usize>> {
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?;
    let mut cpus: Vec<usize> = Vec::new();
    for range in list.trim().split(',') {
        match range.split_once('-') {
            Some((first, last)) => {
                let (first, last): (usize, usize) = (first.parse().ok()?, last.parse().ok()?);
                cpus.extend(first..=last);
            }
            None => cpus.push(range.parse().ok()?),
        }
    }
    Some(cpus)
}

/// Counts the distinct (package, core) pairs of `cpus` under a sysfs CPU folder, or
/// returns `None` when a CPU's topology cannot be read.
fn physical_cores(sysfs_cpus: &Path, cpus: &[usize]) -> Option<usize> {
    let read = |cpu: usize, file: &str| -> Option<u64> {
        let path = sysfs_cpus.join(format!("cpu{cpu}/topology/{file}"));
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    };
    let mut cores = BTreeSet::new();
    for &cpu in cpus {
        cores.insert((read(cpu, "physical_package_id")?, read(cpu, "core_id")?));
    }
    (!cores.is_empty()).then_some(cores.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a sysfs CPU folder whose CPU `n` is on (package, core) `topology[n]`.
    fn fake_sysfs(topology: &[(u64, u64)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (cpu, (package, core)) in topology.iter().enumerate() {
            let folder = dir.path().join(format!("cpu{cpu}/topology"));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("physical_package_id"), format!("{package}\n")).unwrap();
            std::fs::write(folder.join("core_id"), format!("{core}\n")).unwrap();
        }
        dir
    }

    #[test]
    fn parses_cpu_ranges() {
        let status = "Name:\tbge-m3\nCpus_allowed_list:\t0-3,8,10-11\nMems_allowed:\t1\n";
        assert_eq!(allowed_cpus(status), Some(vec![0, 1, 2, 3, 8, 10, 11]));
    }

    #[test]
    fn missing_or_invalid_list_is_none() {
        assert_eq!(allowed_cpus("Name:\tbge-m3\n"), None);
        assert_eq!(allowed_cpus("Cpus_allowed_list:\t0-x\n"), None);
    }

    #[test]
    fn counts_sibling_threads_once() {
        // Two cores with two hardware threads each, the siblings of CPU n at n + 2.
        let sysfs = fake_sysfs(&[(0, 0), (0, 1), (0, 0), (0, 1)]);
        assert_eq!(physical_cores(sysfs.path(), &[0, 1, 2, 3]), Some(2));
        assert_eq!(physical_cores(sysfs.path(), &[0, 2]), Some(1));
    }

    #[test]
    fn counts_cores_per_package() {
        let sysfs = fake_sysfs(&[(0, 0), (1, 0)]);
        assert_eq!(physical_cores(sysfs.path(), &[0, 1]), Some(2));
    }

    #[test]
    fn unreadable_topology_is_none() {
        let sysfs = fake_sysfs(&[(0, 0)]);
        assert_eq!(physical_cores(sysfs.path(), &[0, 1]), None);
        assert_eq!(physical_cores(sysfs.path(), &[]), None);
    }

    #[test]
    fn default_is_within_available_cpus() {
        let available = std::thread::available_parallelism().unwrap().get();
        let threads = default_threads();
        assert!(threads >= 1, "{threads}");
        assert!(threads <= available, "{threads} > {available}");
    }
}
