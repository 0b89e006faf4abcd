//! Tiers (issue 13): what a key of each tier may do, as data.
//!
//! A tier sets a request rate (a token bucket: `requests_per_second` refilled, `burst` at
//! most), two quotas on executions (`concurrent_executions` QUEUED or RUNNING at once,
//! `executions_per_day` per UTC day) and maxima of one run's `limits` (`memory_mb`, `time_ms`,
//! …) below the server's own ([`crate::RunMaxima`]). A missing setting is no limit.
//!
//! The built-in tiers are `free`, `pro` and `unlimited` ([`Tiers::builtin`]); a TOML file
//! (`LIVEXEC_TIERS=path`, [`Tiers::from_toml`]) replaces tiers of the same name or adds new
//! ones:
//!
//! ```toml
//! [tiers.free]
//! requests_per_second = 5
//! burst = 10
//! concurrent_executions = 1
//! executions_per_day = 200
//! memory_mb = 64
//! time_ms = 2000
//!
//! [tiers.team]
//! requests_per_second = 50
//! concurrent_executions = 20
//! memory_mb = 1024
//! ```
//!
//! A key's tier is [`livexec_core::ApiKey::tier`]; a name no tier has is treated as `free`
//! (warned about once). An open service ([`livexec_core::Caller::Open`]) has no tier: only the
//! server's maxima apply.

use crate::maxima::{RunMaxima, FLOORS};
use livexec_core::{ApiKey, Caller, LimitOverrides};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

/// The tier that keys naming an unknown tier get.
pub const FALLBACK_TIER: &str = "free";

/// What one tier allows. `None` is no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The tier's name (`free`, `pro`, …); set from the table's name in a file.
    #[serde(skip_deserializing)]
    pub name: String,
    /// Requests per second one key may make on average (token bucket refill).
    pub requests_per_second: Option<u32>,
    /// Requests one key may make at once after being idle (the bucket's size); defaults to
    /// `requests_per_second`.
    pub burst: Option<u32>,
    /// Executions of one key QUEUED or RUNNING at once.
    pub concurrent_executions: Option<u32>,
    /// Executions one key may create per UTC day.
    pub executions_per_day: Option<u32>,
    /// Largest `limits.memory_mb` of one run, MiB (also the default when lower than the
    /// service's).
    pub memory_mb: Option<u64>,
    /// Largest `limits.time_ms` (wall clock of each run), ms.
    pub time_ms: Option<u64>,
    /// Largest `limits.cpu_time_ms`, ms.
    pub cpu_time_ms: Option<u64>,
    /// Largest `limits.output_bytes` (each output stream), bytes.
    pub output_bytes: Option<u64>,
    /// Largest `limits.pids` (processes plus threads).
    pub pids: Option<u32>,
    /// Largest `limits.compile_time_ms`, ms.
    pub compile_time_ms: Option<u64>,
    /// Largest `limits.compile_memory_mb`, MiB.
    pub compile_memory_mb: Option<u64>,
    /// Most test cases of one run.
    pub tests: Option<usize>,
    /// Live event streams (`GET /executions/:id/events`) one key holds open at once on one
    /// API process; past it a stream is refused with 429 (so one key cannot take every
    /// subscription of `LIVEXEC_MAX_SUBSCRIPTIONS` from the others).
    pub event_streams: Option<u32>,
    /// Sessions one key holds at once (created, not yet deleted); past it creating one is
    /// 429 until the key deletes one (or retention does).
    pub sessions: Option<u32>,
}

impl Tier {
    /// A tier without any limit.
    pub fn unlimited(name: &str) -> Tier {
        Tier {
            name: name.to_owned(),
            requests_per_second: None,
            burst: None,
            concurrent_executions: None,
            executions_per_day: None,
            memory_mb: None,
            time_ms: None,
            cpu_time_ms: None,
            output_bytes: None,
            pids: None,
            compile_time_ms: None,
            compile_memory_mb: None,
            tests: None,
            event_streams: None,
            sessions: None,
        }
    }

    /// The token bucket of this tier: (requests per second, burst), when it limits requests.
    pub fn rate(&self) -> Option<(u32, u32)> {
        let rps = self.requests_per_second?;
        Some((rps, self.burst.unwrap_or(rps)))
    }

    /// The server's maxima `server` with this tier's below them.
    pub fn maxima(&self, server: &RunMaxima) -> RunMaxima {
        let min = |s: u64, t: Option<u64>| t.map_or(s, |t| t.min(s));
        RunMaxima {
            time_ms: min(server.time_ms, self.time_ms),
            cpu_time_ms: min(server.cpu_time_ms, self.cpu_time_ms),
            memory_mb: min(server.memory_mb, self.memory_mb),
            pids: self.pids.map_or(server.pids, |p| p.min(server.pids)),
            output_bytes: min(server.output_bytes, self.output_bytes),
            compile_time_ms: min(server.compile_time_ms, self.compile_time_ms),
            compile_memory_mb: min(server.compile_memory_mb, self.compile_memory_mb),
            tests: self.tests.map_or(server.tests, |t| t.min(server.tests)),
            file_bytes: server.file_bytes,
            request_bytes: server.request_bytes,
        }
    }

    /// Fill the limits a run left unset with this tier's caps where the service's default
    /// (`defaults`, what the worker would use) is higher, so that a run that asks nothing
    /// still stays within the tier and the worker needs no tier knowledge.
    pub fn clamp_defaults(&self, limits: &mut LimitOverrides, defaults: &LimitOverrides) {
        fn fill<T: Copy + Ord>(asked: &mut Option<T>, cap: Option<T>, default: Option<T>) {
            if let (None, Some(cap)) = (*asked, cap) {
                // No default known means no limit by default: the cap applies.
                if default.is_none_or(|d| d > cap) {
                    *asked = Some(cap);
                }
            }
        }
        fill(&mut limits.time_ms, self.time_ms, defaults.time_ms);
        fill(
            &mut limits.cpu_time_ms,
            self.cpu_time_ms,
            defaults.cpu_time_ms,
        );
        fill(&mut limits.memory_mb, self.memory_mb, defaults.memory_mb);
        fill(&mut limits.pids, self.pids, defaults.pids);
        fill(
            &mut limits.output_bytes,
            self.output_bytes,
            defaults.output_bytes,
        );
        fill(
            &mut limits.compile_time_ms,
            self.compile_time_ms,
            defaults.compile_time_ms,
        );
        fill(
            &mut limits.compile_memory_mb,
            self.compile_memory_mb,
            defaults.compile_memory_mb,
        );
    }

    /// The quotas this tier puts on creating executions.
    pub fn quota(&self) -> livexec_core::Quota {
        livexec_core::Quota {
            tier: self.name.clone(),
            concurrent: self.concurrent_executions,
            per_day: self.executions_per_day,
            sessions: self.sessions,
        }
    }

    /// Every problem of this tier's settings.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let name = &self.name;
        if self.requests_per_second == Some(0) {
            out.push(format!(
                "tiers.{name}.requests_per_second must be at least 1 (leave it out for no limit)"
            ));
        }
        if self.burst.is_some() && self.requests_per_second.is_none() {
            out.push(format!(
                "tiers.{name}.burst needs requests_per_second (the rate that refills it)"
            ));
        }
        if self.burst == Some(0) {
            out.push(format!("tiers.{name}.burst must be at least 1"));
        }
        if self.event_streams == Some(0) {
            out.push(format!("tiers.{name}.event_streams must be at least 1"));
        }
        if self.sessions == Some(0) {
            out.push(format!("tiers.{name}.sessions must be at least 1"));
        }
        if self.concurrent_executions == Some(0) {
            out.push(format!(
                "tiers.{name}.concurrent_executions must be at least 1"
            ));
        }
        let f = FLOORS;
        let floors: [(&str, Option<u64>, u64); 7] = [
            ("memory_mb", self.memory_mb, f.memory_mb),
            ("time_ms", self.time_ms, f.time_ms),
            ("cpu_time_ms", self.cpu_time_ms, f.cpu_time_ms),
            ("output_bytes", self.output_bytes, f.output_bytes),
            ("pids", self.pids.map(u64::from), u64::from(f.pids)),
            ("compile_time_ms", self.compile_time_ms, f.compile_time_ms),
            (
                "compile_memory_mb",
                self.compile_memory_mb,
                f.compile_memory_mb,
            ),
        ];
        for (key, value, floor) in floors {
            if let Some(v) = value.filter(|v| *v < floor) {
                out.push(format!(
                    "tiers.{name}.{key} must be at least {floor} (the floor of limits.{key}), got {v}"
                ));
            }
        }
        out
    }
}

/// The tiers of this service, by name; cheap to clone.
#[derive(Debug, Clone)]
pub struct Tiers {
    by_name: Arc<BTreeMap<String, Arc<Tier>>>,
    /// Unknown tier names already warned about.
    warned: Arc<Mutex<HashSet<String>>>,
}

impl Default for Tiers {
    fn default() -> Self {
        Tiers::builtin()
    }
}

/// The shape of a tiers file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TiersFile {
    #[serde(default)]
    tiers: BTreeMap<String, Tier>,
}

impl Tiers {
    /// The built-in tiers: `free` (128 MiB and 5 s per run, 10 requests/s with bursts of 20,
    /// 2 executions at once, 1 000 a day, 10 open event streams, 1 000 sessions), `pro`
    /// (512 MiB and 30 s per run, 50 requests/s with bursts of 100, 10 at once, 50 000 a day,
    /// 100 open event streams, 100 000 sessions) and `unlimited` (the server's maxima only).
    pub fn builtin() -> Tiers {
        let free = Tier {
            requests_per_second: Some(10),
            burst: Some(20),
            concurrent_executions: Some(2),
            executions_per_day: Some(1_000),
            memory_mb: Some(128),
            time_ms: Some(5_000),
            cpu_time_ms: Some(5_000),
            output_bytes: Some(1 << 20),
            tests: Some(16),
            event_streams: Some(10),
            sessions: Some(1_000),
            ..Tier::unlimited("free")
        };
        let pro = Tier {
            requests_per_second: Some(50),
            burst: Some(100),
            concurrent_executions: Some(10),
            executions_per_day: Some(50_000),
            memory_mb: Some(512),
            time_ms: Some(30_000),
            cpu_time_ms: Some(30_000),
            event_streams: Some(100),
            sessions: Some(100_000),
            ..Tier::unlimited("pro")
        };
        Tiers::of([free, pro, Tier::unlimited("unlimited")])
    }

    fn of(tiers: impl IntoIterator<Item = Tier>) -> Tiers {
        Tiers {
            by_name: Arc::new(
                tiers
                    .into_iter()
                    .map(|t| (t.name.clone(), Arc::new(t)))
                    .collect(),
            ),
            warned: Arc::default(),
        }
    }

    /// The built-in tiers with those of a TOML file's text over them (a tier of the same name
    /// is replaced whole). Every problem of the file in one message.
    pub fn from_toml(text: &str) -> Result<Tiers, String> {
        let file: TiersFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut tiers: BTreeMap<String, Tier> = Tiers::builtin()
            .by_name
            .iter()
            .map(|(n, t)| (n.clone(), (**t).clone()))
            .collect();
        let mut problems = Vec::new();
        for (name, mut tier) in file.tiers {
            let valid_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_name {
                problems.push(format!(
                    "tier name {name:?} must be 1 to 64 letters, digits, - or _"
                ));
            }
            tier.name = name.clone();
            problems.extend(tier.problems());
            tiers.insert(name, tier);
        }
        if !tiers.contains_key(FALLBACK_TIER) {
            problems.push(format!("the {FALLBACK_TIER} tier must exist"));
        }
        match problems.is_empty() {
            true => Ok(Tiers::of(tiers.into_values())),
            false => Err(problems.join("; ")),
        }
    }

    /// The tiers of the file at `path` over the built-in ones (see [`Tiers::from_toml`]).
    pub fn from_file(path: &std::path::Path) -> Result<Tiers, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the tiers file {}: {e}", path.display()))?;
        Tiers::from_toml(&text).map_err(|e| format!("the tiers file {}: {e}", path.display()))
    }

    /// The tier named `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<Arc<Tier>> {
        self.by_name.get(name).cloned()
    }

    /// Whether a tier is named `name` (for key creation to refuse unknown tiers).
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The tiers' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Every tier, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Tier> {
        self.by_name.values().map(|t| t.as_ref())
    }

    /// The tier of `key`: its own, or [`FALLBACK_TIER`] when no tier has that name (warned
    /// about once per name).
    pub fn of_key(&self, key: &ApiKey) -> Arc<Tier> {
        if let Some(tier) = self.get(&key.tier) {
            return tier;
        }
        if let Ok(mut warned) = self.warned.lock() {
            if warned.insert(key.tier.clone()) {
                tracing::warn!(key_id = %key.id, tier = %key.tier, fallback = FALLBACK_TIER,
                    "a key names a tier that does not exist; it gets the fallback tier");
            }
        }
        self.get(FALLBACK_TIER)
            .unwrap_or_else(|| Arc::new(Tier::unlimited(FALLBACK_TIER)))
    }

    /// The tier of `caller`: `None` for an open service (only the server's maxima apply).
    pub fn of_caller(&self, caller: &Caller) -> Option<Arc<Tier>> {
        match caller {
            Caller::Open => None,
            Caller::Key(key) => Some(self.of_key(key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_the_originals_example() {
        let t = Tiers::builtin();
        let free = t.get("free").unwrap();
        assert_eq!((free.memory_mb, free.time_ms), (Some(128), Some(5_000)));
        assert_eq!(free.rate(), Some((10, 20)));
        let pro = t.get("pro").unwrap();
        assert_eq!((pro.memory_mb, pro.time_ms), (Some(512), Some(30_000)));
        assert_eq!(*t.get("unlimited").unwrap(), Tier::unlimited("unlimited"));
        assert!(t.contains("pro") && !t.contains("gold"));
    }

    #[test]
    fn a_file_replaces_and_adds_tiers() {
        let t = Tiers::from_toml(
            "[tiers.free]\nexecutions_per_day = 3\n\n[tiers.team]\nrequests_per_second = 5\nmemory_mb = 1024\n",
        )
        .unwrap();
        let free = t.get("free").unwrap();
        assert_eq!(free.executions_per_day, Some(3));
        assert_eq!(free.memory_mb, None, "a replaced tier is replaced whole");
        assert_eq!(t.get("team").unwrap().rate(), Some((5, 5)));
        assert!(t.contains("pro"), "built-ins not named stay");
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = Tiers::from_toml("[tiers.free]\nmemory_mib = 3\n").unwrap_err();
        assert!(err.contains("memory_mib"), "{err}");
        let err = Tiers::from_toml("[tiers.free]\nmemory_mb = \"lots\"\n").unwrap_err();
        assert!(err.contains("memory_mb"), "{err}");
        let err = Tiers::from_toml("[tiers.x]\nburst = 0\nrequests_per_second = 0\n").unwrap_err();
        assert!(
            err.contains("tiers.x.requests_per_second must be at least 1"),
            "{err}"
        );
        assert!(err.contains("tiers.x.burst must be at least 1"), "{err}");
        let err = Tiers::from_toml("[tiers.x]\nburst = 5\nmemory_mb = 1\n").unwrap_err();
        assert!(err.contains("burst needs requests_per_second"), "{err}");
        assert!(
            err.contains("tiers.x.memory_mb must be at least 8"),
            "{err}"
        );
        let err = Tiers::from_toml("[tiers.\"a b\"]\n").unwrap_err();
        assert!(err.contains("tier name \"a b\""), "{err}");
        let err = Tiers::from_toml("[free]\n").unwrap_err();
        assert!(err.contains("free"), "{err}");
        assert!(
            Tiers::from_toml("").is_ok(),
            "an empty file keeps the built-ins"
        );
    }

    #[test]
    fn maxima_are_the_lower_of_server_and_tier() {
        let free = Tiers::builtin().get("free").unwrap();
        let m = free.maxima(&RunMaxima::default());
        assert_eq!((m.memory_mb, m.time_ms), (128, 5_000));
        let small = RunMaxima {
            memory_mb: 64,
            ..RunMaxima::default()
        };
        assert_eq!(free.maxima(&small).memory_mb, 64);
    }

    #[test]
    fn defaults_are_clamped_only_where_higher() {
        let free = Tiers::builtin().get("free").unwrap();
        let defaults = LimitOverrides {
            time_ms: Some(30_000),
            memory_mb: Some(64),
            ..LimitOverrides::default()
        };
        let mut asked = LimitOverrides {
            output_bytes: Some(10),
            ..LimitOverrides::default()
        };
        free.clamp_defaults(&mut asked, &defaults);
        assert_eq!(asked.time_ms, Some(5_000), "30 s default → the tier's 5 s");
        assert_eq!(asked.memory_mb, None, "a lower default stays");
        assert_eq!(asked.cpu_time_ms, Some(5_000), "no default: the cap");
        assert_eq!(asked.output_bytes, Some(10), "what was asked stays");
    }

    #[test]
    fn unknown_tiers_fall_back_to_free() {
        let key = ApiKey {
            id: uuid::Uuid::now_v7(),
            name: "k".into(),
            tier: "gold".into(),
            admin: false,
            created_at: chrono::Utc::now(),
            revoked_at: None,
        };
        let t = Tiers::builtin();
        assert_eq!(t.of_key(&key).name, "free");
        assert_eq!(t.of_key(&key).name, "free");
        assert!(t.of_caller(&Caller::Open).is_none());
    }
}
