//! The scaled setup for tests: a fresh PostgreSQL database and a fresh Redis key prefix per
//! test, from `DATABASE_URL` (postgres://…) and `REDIS_URL` (local defaults when unset). The
//! tests using it are `#[ignore]`d with the reason (`livexec_testkit`'s rule).

use livexec_testkit::TestDatabase;

/// One test's PostgreSQL database and Redis prefix.
pub struct Scaled {
    /// URL of the test's own database.
    pub database_url: String,
    /// The Redis to use.
    pub redis_url: String,
    /// The test's own key prefix.
    pub prefix: String,
    /// `None` once cleaned up.
    db: Option<TestDatabase>,
}

/// The scaled setup; panics with the reason when PostgreSQL is unreachable.
pub async fn scaled() -> Scaled {
    let admin_url = livexec_testkit::postgres_url();
    let redis_url = livexec_testkit::redis_url();
    let db = TestDatabase::create(&admin_url).await;
    Scaled {
        database_url: db.url().to_owned(),
        redis_url,
        prefix: livexec_testkit::unique_name(),
        db: Some(db),
    }
}

impl Scaled {
    /// Server settings naming this database, Redis and prefix.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), self.database_url.clone()),
            ("REDIS_URL".into(), self.redis_url.clone()),
            ("LIVEXEC_REDIS_PREFIX".into(), self.prefix.clone()),
        ]
    }

    /// Delete every Redis key of this test's prefix (Redis "lost its data", for us only).
    pub async fn wipe_redis(&self) -> usize {
        livexec_testkit::delete_keys(&self.redis_url, &self.prefix).await
    }

    /// Drop the database and the Redis keys.
    pub async fn cleanup(mut self) {
        self.wipe_redis().await;
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }
}

/// A test that failed before [`Scaled::cleanup`] leaks nothing either.
impl Drop for Scaled {
    fn drop(&mut self) {
        let Some(db) = self.db.take() else { return };
        let (url, prefix) = (self.redis_url.clone(), self.prefix.clone());
        let name = db.name().to_owned();
        let cleaned = livexec_testkit::on_own_runtime(async move {
            livexec_testkit::delete_keys(&url, &prefix).await;
            db.cleanup().await;
        });
        if !cleaned {
            eprintln!("warning: could not drop test database {name} or its Redis keys");
        }
    }
}

/// `[(String, String)]` → `[(&str, &str)]` for [`super::Server::start`].
pub fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
