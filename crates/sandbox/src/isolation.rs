//! What this host's jails are made of ([`Isolation`]): the layers in use and the fallbacks
//! the kernel forced, in one value that `livexec runtimes` prints and `/health` shows.

use std::fmt;

use crate::{CgroupMode, ProcIsolation};

/// The isolation of this host's jails, as detected when the [`crate::Sandbox`] started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Isolation {
    /// How memory, CPU and process limits are enforced.
    pub cgroup: CgroupMode,
    /// Jails are created straight inside their cgroup (`clone3(CLONE_INTO_CGROUP)`, cgroup
    /// v2); on v1 the child joins its cgroups right after `clone`, before any of its setup.
    pub clone_into_cgroup: bool,
    /// What the jails' `/proc` shows.
    pub proc: ProcIsolation,
    /// The Landlock ABI the kernel offers (`None`: no Landlock; writes are then confined by
    /// the read-only mounts alone).
    pub landlock_abi: Option<u32>,
    /// The run uids: first id and how many.
    pub uids: (u32, u32),
}

impl fmt::Display for Isolation {
    /// One line, e.g. `cgroup v1 (joined after clone; CLONE_INTO_CGROUP needs v2); pid 1
    /// livexec-init (exec); run uids 2000000000+4096; seccomp allow-list; landlock ABI 6;
    /// /proc masked, …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cgroup)?;
        match (self.cgroup, self.clone_into_cgroup) {
            (CgroupMode::V2, true) => f.write_str(" (clone3 into the cgroup)")?,
            (CgroupMode::RlimitsOnly, _) => {}
            _ => f.write_str(" (joined after clone; CLONE_INTO_CGROUP needs v2)")?,
        }
        write!(
            f,
            "; pid 1 livexec-init (exec); run uids {}+{}; seccomp allow-list; ",
            self.uids.0, self.uids.1
        )?;
        match self.landlock_abi {
            Some(abi) => write!(f, "landlock ABI {abi}")?,
            None => f.write_str("no landlock (kernel < 5.13)")?,
        }
        write!(f, "; /proc {}", self.proc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_every_layer_and_fallback() {
        let i = Isolation {
            cgroup: CgroupMode::V1,
            clone_into_cgroup: false,
            proc: ProcIsolation {
                own_clocks: true,
                neutral_mount_sources: false,
            },
            landlock_abi: None,
            uids: (2_000_000_000, 4096),
        };
        let s = i.to_string();
        assert!(s.starts_with("cgroup v1 (joined after clone"), "{s}");
        assert!(s.contains("run uids 2000000000+4096"), "{s}");
        assert!(s.contains("no landlock"), "{s}");
        assert!(s.ends_with("host device names"), "{s}");
        let v2 = Isolation {
            cgroup: CgroupMode::V2,
            clone_into_cgroup: true,
            landlock_abi: Some(6),
            ..i
        };
        assert!(v2
            .to_string()
            .starts_with("cgroup v2 (clone3 into the cgroup)"));
        assert!(v2.to_string().contains("landlock ABI 6"));
    }
}
