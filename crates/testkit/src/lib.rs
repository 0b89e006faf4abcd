//! Test support shared by livexec's integration tests and benches; a dev-dependency only.
//!
//! It owns three things that every crate's tests used to write for themselves:
//!
//! - **The service rule.** A test that needs PostgreSQL, Redis or a browser is marked
//!   `#[ignore = "needs PostgreSQL: …"]`, so a plain `cargo test` counts it as ignored and says
//!   why; `cargo test -- --include-ignored` (the README's test command, and CI's) runs it. Such a
//!   test reads its service's address with [`postgres_url`] / [`redis_url`]: `DATABASE_URL` /
//!   `REDIS_URL`, else the local default. When the service is not there the test fails with
//!   the reason ([`TestDatabase::create`], [`delete_keys`] and the tests' own connects panic
//!   naming the URL): no test passes without what it needs.
//! - **Throwaway PostgreSQL databases.** [`TestDatabase`] creates `livexec_t_<uuid>` through an
//!   admin URL and drops it `WITH (FORCE)` afterwards.
//! - **Unique names** for databases and Redis key prefixes ([`unique_name`]), and deleting a
//!   prefix's keys ([`delete_keys`]).

use sqlx::Connection;

/// `DATABASE_URL` when unset: the local PostgreSQL of a development or CI machine.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `REDIS_URL` when unset: the local Redis of a development or CI machine.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The value of `var`, or `default` when it is unset or empty.
fn env_or(var: &str, default: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => default.to_owned(),
    }
}

/// Whether `url` is a PostgreSQL URL (`postgres:` or `postgresql:`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// The PostgreSQL admin URL of a test that needs one: `DATABASE_URL`, else
/// [`DEFAULT_POSTGRES_URL`]. Panics when `DATABASE_URL` is not a PostgreSQL URL (a test run
/// with `DATABASE_URL=sqlite:…` asked for something else).
#[track_caller]
pub fn postgres_url() -> String {
    let url = env_or("DATABASE_URL", DEFAULT_POSTGRES_URL);
    assert!(
        is_postgres_url(&url),
        "this test needs PostgreSQL, but DATABASE_URL is not a postgres:// URL \
         (unset it for {DEFAULT_POSTGRES_URL}, or set a PostgreSQL URL)"
    );
    url
}

/// The Redis URL of a test that needs one: `REDIS_URL`, else [`DEFAULT_REDIS_URL`].
pub fn redis_url() -> String {
    env_or("REDIS_URL", DEFAULT_REDIS_URL)
}

/// Whether a bench should include `var`'s service: the variable is set and not empty.
/// Benches measure only what was asked for; tests never use this (they are `#[ignore]`d).
pub fn bench_wants(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
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
            .unwrap_or_else(|e| {
                panic!("this test needs PostgreSQL at {admin_url} (DATABASE_URL): unreachable: {e}")
            });
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
    let client = redis::Client::open(url)
        .unwrap_or_else(|e| panic!("REDIS_URL {url} is not a Redis URL: {e}"));
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("this test needs Redis at {url} (REDIS_URL): unreachable: {e}"));
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
