//! The scaled setup for tests: a fresh PostgreSQL database and a fresh Redis key prefix per
//! test, from `DATABASE_URL` (postgres://…) and `REDIS_URL`. Without them the test is skipped
//! loudly, unless `LIVEXEC_REQUIRE_SERVICES=1` (CI), where it fails.

use sqlx::Connection;

/// One test's PostgreSQL database and Redis prefix.
pub struct Scaled {
    /// URL of the test's own database.
    pub database_url: String,
    /// The Redis to use.
    pub redis_url: String,
    /// The test's own key prefix.
    pub prefix: String,
    admin_url: String,
    db_name: String,
}

/// The scaled setup, or `None` (after a loud SKIPPED line) when the services are not set.
pub async fn scaled(test: &str) -> Option<Scaled> {
    let db = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"));
    let redis = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
    let (Some(admin_url), Some(redis_url)) = (db, redis) else {
        let why = "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres and REDIS_URL=redis://127.0.0.1:6379 to run";
        if std::env::var("LIVEXEC_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{test}: PostgreSQL and Redis are required: {why}");
        }
        eprintln!("SKIPPED {test} ({why})");
        return None;
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("livexec_t_{id}");
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at DATABASE_URL unreachable: {e}"));
    sqlx::query(&format!("CREATE DATABASE {db_name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin_url.clone());
    Some(Scaled {
        database_url: format!("{base}/{db_name}"),
        redis_url,
        prefix: format!("livexec-t-{id}"),
        admin_url,
        db_name,
    })
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
        let client = redis::Client::open(self.redis_url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut con)
            .await
            .unwrap();
        for k in &keys {
            let _: i64 = redis::cmd("DEL")
                .arg(k)
                .query_async(&mut con)
                .await
                .unwrap();
        }
        keys.len()
    }

    /// Drop the database and the Redis keys.
    pub async fn cleanup(self) {
        self.wipe_redis().await;
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.db_name
        ))
        .execute(&mut admin)
        .await;
    }
}

/// `[(String, String)]` → `[(&str, &str)]` for [`super::Server::start`].
pub fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
