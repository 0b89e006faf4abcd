//! Test support shared by livexec's integration tests and benches; a dev-dependency only.
//!
//! It owns three things that every crate's tests used to write for themselves:
//!
//! - **The service rule.** A test that needs PostgreSQL or Redis reads `DATABASE_URL` /
//!   `REDIS_URL` ([`postgres_url`], [`redis_url`], [`service_url`]). When the variable is unset
//!   the test prints a loud `SKIPPED` line and returns, unless `LIVEXEC_REQUIRE_SERVICES=1`
//!   (CI), where it panics with the reason instead: no test passes silently without its service
//!   there. [`skip`] applies the same rule to any other missing prerequisite.
//! - **Throwaway PostgreSQL databases.** [`TestDatabase`] creates `livexec_t_<uuid>` through an
//!   admin URL and drops it `WITH (FORCE)` afterwards.
//! - **Unique names** for databases and Redis key prefixes ([`unique_name`]), and deleting a
//!   prefix's keys ([`delete_keys`]).

use sqlx::Connection;
use std::io::Write;

/// The variable that turns a SKIPPED test into a failing one when set to `1`.
pub const REQUIRE_SERVICES: &str = "LIVEXEC_REQUIRE_SERVICES";

/// Whether `LIVEXEC_REQUIRE_SERVICES=1`: missing services fail tests instead of skipping them.
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES).as_deref() == Ok("1")
}

/// Skip the current test for `reason`: print a loud `SKIPPED` line, or panic with the reason
/// under `LIVEXEC_REQUIRE_SERVICES=1`. The caller returns right after.
///
/// The line goes straight to the stderr handle, which the test harness does not capture, so
/// the skip shows in every run, not only in failures.
#[track_caller]
pub fn skip(reason: &str) {
    let test = current_test();
    if services_required() {
        panic!("{test}: {reason}; {REQUIRE_SERVICES}=1 makes that a failure");
    }
    // One write, so parallel tests' lines do not interleave mid-line.
    let line = format!("\n!!!!! SKIPPED {test}: {reason} !!!!!\n\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The test running on this thread (the harness names each test's thread after it).
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" && !name.starts_with("tokio-") => name.to_owned(),
        _ => "this test".to_owned(),
    }
}

/// The value of the service variable `var`, or `None` after [`skip`] when it is unset or
/// empty. `example` is a value to suggest in the message (`redis://127.0.0.1:6379`).
#[track_caller]
pub fn service_url(var: &str, example: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            skip(&format!("{var} is unset (set {var}={example} to run)"));
            None
        }
    }
}

/// Whether `url` is a PostgreSQL URL (`postgres:` or `postgresql:`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// `DATABASE_URL` when it is a PostgreSQL URL, else `None` after [`skip`].
#[track_caller]
pub fn postgres_url() -> Option<String> {
    const EXAMPLE: &str = "postgres://postgres@127.0.0.1:5432/postgres";
    let url = service_url("DATABASE_URL", EXAMPLE)?;
    if is_postgres_url(&url) {
        return Some(url);
    }
    skip(&format!(
        "DATABASE_URL is not a PostgreSQL URL (set DATABASE_URL={EXAMPLE} to run)"
    ));
    None
}

/// `REDIS_URL`, else `None` after [`skip`].
#[track_caller]
pub fn redis_url() -> Option<String> {
    service_url("REDIS_URL", "redis://127.0.0.1:6379")
}

/// A fresh name `livexec_t_<uuid>`, valid as a PostgreSQL database name and a Redis key prefix.
pub fn unique_name() -> String {
    format!("livexec_t_{}", uuid::Uuid::new_v4().simple())
}

/// `url` with its database (the path) replaced by `database`; the query string is kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    format!("{}/{database}{query}", &base[..host_end])
}

/// A fresh PostgreSQL database of one test, made through an admin URL.
///
/// It is not dropped by `Drop`: call [`TestDatabase::cleanup`] once nothing needs it (after
/// closing the pools on it is polite, but `WITH (FORCE)` ends what is still connected).
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Create a database [`unique_name`] through `admin_url` (typically [`postgres_url`]).
    /// Panics when PostgreSQL is unreachable: the URL was given, so that is a failure.
    pub async fn create(admin_url: &str) -> TestDatabase {
        let name = unique_name();
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        TestDatabase {
            url: with_database(admin_url, &name),
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of the new database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drop the database `WITH (FORCE)`, ending connections still open on it. Panics when that
    /// fails (a leaked database is worth knowing about). It opens its own admin connection, so
    /// it may run on any runtime, e.g. a fresh one in a `Drop`.
    pub async fn cleanup(self) {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|e| panic!("dropping {}: PostgreSQL unreachable: {e}", self.name));
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("DROP DATABASE {}: {e}", self.name));
        let _ = admin.close().await;
    }
}

/// Delete every Redis key under `prefix` (`<prefix>:*`, the layout of livexec's queue and bus)
/// on `url`; returns how many there were.
pub async fn delete_keys(url: &str, prefix: &str) -> usize {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("deleting keys under {prefix}: Redis unreachable: {e}"));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
    keys.len()
}

/// Run `work` to completion on a current-thread runtime of its own thread, for clean-up in a
/// `Drop` (which may run inside a test's runtime, where blocking on it is not allowed, or while
/// a failed test unwinds). `false` if `work` panicked; never panics itself.
pub fn on_own_runtime(work: impl std::future::Future<Output = ()> + Send + 'static) -> bool {
    std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(work),
            Err(e) => panic!("cannot build a clean-up runtime: {e}"),
        }
    })
    .join()
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    #[test]
    fn unique_names_are_unique_identifiers() {
        let (a, b) = (unique_name(), unique_name());
        assert_ne!(a, b);
        assert!(a.starts_with("livexec_t_"));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    }

    #[test]
    fn postgres_urls_are_recognised() {
        assert!(is_postgres_url("postgres://h/db"));
        assert!(is_postgres_url("postgresql://h/db"));
        assert!(!is_postgres_url("sqlite://x.db"));
        assert!(!is_postgres_url("postgresx://h"));
    }
}
