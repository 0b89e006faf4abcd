//! The probe cache: what probing a toolchain learnt (its real executable, install prefix and
//! version) kept on disk, so that a second `livexec run` does not start the toolchain again
//! before the program (a pyenv shim, `javac -version` or `tsc --version` cost 50 ms to
//! half a second each).
//!
//! One small TOML file per runtime id and PATH, `probe-<id>-<hash of PATH>.toml`, in the
//! cache directory ([`ProbeCache::default_dir`]): a shell whose PATH differs (a pyenv shell,
//! `sudo`'s secure path, a profiler that prepends its own directory) keeps an entry of its
//! own instead of overwriting, at each switch, the other's. An entry is used only when
//! everything the probe's answer depends on is unchanged:
//!
//! - the toolchain found (the path from `override_env` or PATH), its canonical path, and its
//!   size, mtime, inode and device (following symlinks: an `update-alternatives` switch or a
//!   reinstall changes them);
//! - the probe itself (the `probe` arguments or the `probe_sh` script, so an edited runtime
//!   file probes again) and PATH (probe scripts look programs up on it);
//! - the executable the probe named still has the size, mtime, inode and device it had, and
//!   the prefix is still a directory.
//!
//! What no key sees (e.g. `pyenv global` choosing another version behind the same shim) is
//! picked up by the service's start and `livexec runtimes`, which always probe and rewrite
//! the cache, or by deleting the cache directory.
//!
//! The cache never fails a run: a missing, unreadable, corrupt or foreign entry is ignored
//! (probed again and rewritten), and a cache that cannot be written is skipped. Because an
//! entry decides which host paths a jail mounts, an entry is trusted only when the file and
//! its directory belong to this process's user and nobody else can write them. Writes go to
//! a temporary file renamed over the entry, so a reader sees a whole entry or none.

use serde::{Deserialize, Serialize};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The variable that names the cache directory explicitly (tests, unusual hosts); an empty
/// value turns the cache off.
pub const CACHE_DIR_ENV: &str = "LIVEXEC_CACHE_DIR";

/// Version of the entry format; an entry of another version is ignored.
const FORMAT: u32 = 1;

/// Where probe results are kept between runs, or nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeCache {
    dir: Option<PathBuf>,
}

/// What a probe learnt about a toolchain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probed {
    /// The real executable.
    pub executable: PathBuf,
    /// The install prefix.
    pub prefix: PathBuf,
    /// The version as the toolchain reports it.
    pub version: String,
}

/// Everything a probe's answer depends on, as compared on a lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProbeKey {
    /// The toolchain as found (override variable or PATH).
    pub candidate: String,
    /// Its canonical path.
    pub canonical: String,
    /// Its identity ([`stamp`]).
    pub stamp: String,
    /// The probe arguments or script.
    pub probe: String,
    /// PATH when it was probed.
    pub path_env: String,
}

/// One cache file.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    format: u32,
    key: ProbeKey,
    executable: String,
    executable_stamp: String,
    prefix: String,
    version: String,
}

/// `size:mtime_s.mtime_ns:inode:device` of `p`, following symlinks; `None` when it cannot
/// be read.
pub(crate) fn stamp(p: &Path) -> Option<String> {
    let m = std::fs::metadata(p).ok()?;
    Some(format!(
        "{}:{}.{:09}:{}:{}",
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ino(),
        m.dev()
    ))
}

impl ProbeKey {
    /// The key of probing `candidate` with `probe`, `None` when the candidate cannot be
    /// read (then nothing is cached).
    pub(crate) fn new(candidate: &Path, probe: String) -> Option<ProbeKey> {
        let path_env = std::env::var_os("PATH").unwrap_or_default();
        Some(ProbeKey {
            candidate: candidate.to_str()?.to_owned(),
            canonical: std::fs::canonicalize(candidate).ok()?.to_str()?.to_owned(),
            stamp: stamp(candidate)?,
            probe,
            path_env: path_env.to_str()?.to_owned(),
        })
    }
}

/// Whether `m` belongs to this process's user and only that user may write it.
fn private(m: &std::fs::Metadata) -> bool {
    m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o022 == 0
}

impl ProbeCache {
    /// The cache in `dir` (created on first write, mode 0700).
    pub fn at(dir: impl Into<PathBuf>) -> ProbeCache {
        ProbeCache {
            dir: Some(dir.into()),
        }
    }

    /// No cache: every lookup misses, nothing is written.
    pub fn off() -> ProbeCache {
        ProbeCache { dir: None }
    }

    /// The cache where this host keeps it: `$LIVEXEC_CACHE_DIR` (empty: off), else
    /// `$XDG_CACHE_HOME/livexec`, else `/var/cache/livexec` (livexec runs as root; that is
    /// where a system service's cache belongs).
    pub fn default_dir() -> ProbeCache {
        let var = |name| std::env::var_os(name).map(PathBuf::from);
        match var(CACHE_DIR_ENV) {
            Some(d) if d.as_os_str().is_empty() => ProbeCache::off(),
            Some(d) => ProbeCache::at(d),
            None => match var("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
                Some(d) => ProbeCache::at(d.join("livexec")),
                None => ProbeCache::at("/var/cache/livexec"),
            },
        }
    }

    /// The directory, when the cache is on.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn file(&self, id: &str, key: &ProbeKey) -> Option<PathBuf> {
        use std::hash::{Hash, Hasher};
        // Only a file name: the entry itself holds the whole PATH and is compared in full. A
        // Rust release that hashes otherwise costs one probe per runtime.
        let mut h = std::hash::DefaultHasher::new();
        key.path_env.hash(&mut h);
        // Runtime ids are lowercase letters, digits, `-` and `_`: a plain file name.
        let name = format!("probe-{id}-{:016x}.toml", h.finish());
        Some(self.dir.as_ref()?.join(name))
    }

    /// The cached answer for runtime `id` under `key`, when it is still valid.
    pub(crate) fn get(&self, id: &str, key: &ProbeKey) -> Option<Probed> {
        let file = self.file(id, key)?;
        let dir_meta = std::fs::symlink_metadata(self.dir.as_ref()?).ok()?;
        let file_meta = std::fs::symlink_metadata(&file).ok()?;
        if !dir_meta.is_dir() || !file_meta.is_file() || !private(&dir_meta) || !private(&file_meta)
        {
            return None;
        }
        let text = std::fs::read_to_string(&file).ok()?;
        let entry: Entry = toml::from_str(&text).ok()?;
        if entry.format != FORMAT || entry.key != *key {
            return None;
        }
        let executable = PathBuf::from(entry.executable);
        let prefix = PathBuf::from(entry.prefix);
        if stamp(&executable)? != entry.executable_stamp || !prefix.is_dir() {
            return None;
        }
        Some(Probed {
            executable,
            prefix,
            version: entry.version,
        })
    }

    /// Keep `probed` for runtime `id` under `key`. Best effort: a cache that cannot be
    /// written costs only a probe next time, never an error.
    pub(crate) fn put(&self, id: &str, key: &ProbeKey, probed: &Probed) {
        let (Some(dir), Some(file)) = (self.dir.as_ref(), self.file(id, key)) else {
            return;
        };
        let (Some(executable), Some(prefix), Some(executable_stamp)) = (
            probed.executable.to_str(),
            probed.prefix.to_str(),
            stamp(&probed.executable),
        ) else {
            return;
        };
        let entry = Entry {
            format: FORMAT,
            key: key.clone(),
            executable: executable.to_owned(),
            executable_stamp,
            prefix: prefix.to_owned(),
            version: probed.version.clone(),
        };
        let Ok(text) = toml::to_string(&entry) else {
            return;
        };
        let _ = write_atomically(dir, &file, text.as_bytes());
    }
}

/// Write `bytes` to `file` in `dir` (created 0700) through a private temporary file renamed
/// over it.
fn write_atomically(dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file.file_name().and_then(|n| n.to_str()).unwrap_or("probe"),
        std::process::id()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes));
    match written.and_then(|()| std::fs::rename(&tmp, file)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probed(dir: &Path) -> Probed {
        Probed {
            executable: dir.join("tool"),
            prefix: dir.to_path_buf(),
            version: "1.2.3".into(),
        }
    }

    fn setup() -> (tempfile::TempDir, ProbeCache, ProbeKey) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tool"), "#!/bin/sh\n").unwrap();
        let cache = ProbeCache::at(dir.path().join("cache"));
        let key = ProbeKey::new(&dir.path().join("tool"), "--probe".into()).unwrap();
        (dir, cache, key)
    }

    #[test]
    fn an_entry_is_found_under_its_key_only() {
        let (dir, cache, key) = setup();
        assert_eq!(cache.get("x", &key), None);
        cache.put("x", &key, &probed(dir.path()));
        assert_eq!(cache.get("x", &key), Some(probed(dir.path())));
        assert_eq!(cache.get("y", &key), None, "another runtime's entry");
        let other_probe = ProbeKey {
            probe: "--other".into(),
            ..key.clone()
        };
        assert_eq!(cache.get("x", &other_probe), None);
        let mode = std::fs::metadata(cache.dir().unwrap()).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_corrupt_or_foreign_entry_is_ignored_and_rewritten() {
        let (dir, cache, key) = setup();
        cache.put("x", &key, &probed(dir.path()));
        let file = cache.file("x", &key).unwrap();
        std::fs::write(&file, "format = 1\nkey = [garbage").unwrap();
        assert_eq!(cache.get("x", &key), None);
        cache.put("x", &key, &probed(dir.path()));
        assert!(cache.get("x", &key).is_some());
        // Writable by others: not trusted (it decides what a jail mounts).
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        assert_eq!(cache.get("x", &key), None);
    }

    #[test]
    fn each_path_keeps_its_own_entry() {
        let (dir, cache, key) = setup();
        let other_path = ProbeKey {
            path_env: format!("/opt/profiler/bin:{}", key.path_env),
            ..key.clone()
        };
        let elsewhere = Probed {
            version: "9.9.9".into(),
            ..probed(dir.path())
        };
        cache.put("x", &key, &probed(dir.path()));
        cache.put("x", &other_path, &elsewhere);
        assert_eq!(cache.get("x", &key), Some(probed(dir.path())));
        assert_eq!(cache.get("x", &other_path), Some(elsewhere));
        assert_ne!(cache.file("x", &key), cache.file("x", &other_path));
    }

    #[test]
    fn a_changed_executable_invalidates_the_entry() {
        let (dir, cache, key) = setup();
        cache.put("x", &key, &probed(dir.path()));
        std::fs::write(dir.path().join("tool"), "#!/bin/sh\n# a new version\n").unwrap();
        assert_eq!(cache.get("x", &key), None);
    }

    #[test]
    fn an_unwritable_cache_is_skipped_silently() {
        let (dir, _, key) = setup();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let cache = ProbeCache::at(dir.path().join("file").join("cache"));
        cache.put("x", &key, &probed(dir.path()));
        assert_eq!(cache.get("x", &key), None);
        assert_eq!(ProbeCache::off().get("x", &key), None);
    }
}
