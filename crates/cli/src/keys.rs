//! `livexec keys create|list|revoke`: manage API keys in the configured database (the same
//! `DATABASE_URL` as `serve`; migrations run first, as `serve` runs them).
//!
//! `create` prints the key's id and its secret token, once: only a hash is stored. With
//! `REDIS_URL` set, `create` and `revoke` also tell running API nodes at once (the Redis
//! channel of `livexec_api::auth::revocations`); without it an embedded service notices
//! within its key cache's TTL (`LIVEXEC_KEY_CACHE_MS`, 1 s by default).

use crate::settings::{redact_url, tokio_runtime};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use livexec_api::auth::revocations::{publish_once, Notice};
use livexec_api::auth::token::{hash_token, new_token};
use livexec_core::ApiKey;
use std::process::ExitCode;

/// Settings of `livexec keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
    /// The database: `sqlite://FILE` (the default) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://livexec.db",
        hide_env_values = true,
        global = true
    )]
    database_url: String,
    /// Redis of a scaled deployment: changes are published there so that running API nodes
    /// apply them at once.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, global = true)]
    redis_url: Option<String>,
    /// Prefix of every Redis key of this deployment.
    #[arg(
        long,
        env = "LIVEXEC_REDIS_PREFIX",
        default_value = "livexec",
        global = true
    )]
    redis_prefix: String,
    /// The service's tiers file (as `serve` reads it), so `create --tier` names a tier the
    /// service knows; without it, the built-in `free`, `pro` and `unlimited`.
    #[arg(long, env = "LIVEXEC_TIERS", global = true)]
    tiers: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print its token (shown only this once).
    Create {
        /// A name for people (who or what uses the key).
        #[arg(long)]
        name: String,
        /// An admin key: manages keys (`/admin/keys`) and reads every key's data.
        #[arg(long)]
        admin: bool,
        /// The tier whose limits apply.
        #[arg(long, default_value = "free")]
        tier: String,
    },
    /// List every key (never a token): id, name, tier, admin, created, revoked.
    List,
    /// Revoke a key, at once and for good.
    Revoke {
        /// The key's id (from `list`).
        id: String,
    },
}

/// Run one `keys` subcommand.
pub fn main(mut args: KeysArgs) -> anyhow::Result<ExitCode> {
    if args.database_url.trim().is_empty() {
        args.database_url = "sqlite://livexec.db".to_owned();
    }
    if args
        .redis_url
        .as_deref()
        .is_some_and(|u| u.trim().is_empty())
    {
        args.redis_url = None;
    }
    let rt = tokio_runtime()?;
    rt.block_on(run(args))
}

async fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let (_, keys) = livexec_store::connect_with_keys(&args.database_url)
        .await
        .with_context(|| format!("opening {}", redact_url(&args.database_url)))?;
    match &args.command {
        KeysCommand::Create { name, admin, tier } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                bail!("--name must be 1 to 100 characters, without control characters");
            }
            if !livexec_api::auth::valid_tier(tier) {
                bail!("--tier must be 1 to 32 letters, digits, '-' or '_'");
            }
            let tiers = match &args.tiers {
                Some(path) => livexec_api::Tiers::from_file(path).map_err(anyhow::Error::msg)?,
                None => livexec_api::Tiers::builtin(),
            };
            if !tiers.contains(tier) {
                bail!(
                    "--tier {tier} is not a tier of the service; one of: {}",
                    tiers.names().join(", ")
                );
            }
            let token = new_token()?;
            let key = keys
                .create_key(name, tier, *admin, &hash_token(&token))
                .await?;
            println!("id:    {}", key.id);
            println!("name:  {}", key.name);
            println!("tier:  {}", key.tier);
            println!("admin: {}", if key.admin { "yes" } else { "no" });
            println!("token: {token}");
            eprintln!(
                "Store the token now: it is shown only this once. Send it as \
                 \"Authorization: Bearer TOKEN\"."
            );
            tell(&args, Notice::Created).await;
        }
        KeysCommand::List => print_table(&keys.list_keys().await?),
        KeysCommand::Revoke { id } => {
            let id: livexec_core::KeyId = id
                .trim()
                .parse()
                .with_context(|| format!("{id:?} is not a key id (a UUID)"))?;
            let Some(key) = keys.revoke_key(id).await? else {
                bail!("no API key has the id {id}");
            };
            println!("revoked {} ({})", key.id, key.name);
            tell(&args, Notice::Revoked(id)).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Publish `notice` to running nodes when Redis is configured; a failure is a warning (the
/// change is in the database; nodes notice within their key cache's TTL).
async fn tell(args: &KeysArgs, notice: Notice) {
    let Some(url) = &args.redis_url else { return };
    if let Err(e) = publish_once(url, &args.redis_prefix, notice).await {
        eprintln!(
            "livexec: warning: could not tell running nodes through Redis ({e}); they apply \
             the change within their key cache's TTL (LIVEXEC_KEY_CACHE_MS)"
        );
    }
}

/// The keys as an aligned table.
fn print_table(keys: &[ApiKey]) {
    let rows: Vec<[String; 6]> = keys
        .iter()
        .map(|k| {
            [
                k.id.to_string(),
                k.name.clone(),
                k.tier.clone(),
                if k.admin { "yes" } else { "no" }.to_owned(),
                k.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                k.revoked_at.map_or_else(
                    || "-".to_owned(),
                    |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                ),
            ]
        })
        .collect();
    let head = ["ID", "NAME", "TIER", "ADMIN", "CREATED", "REVOKED"].map(str::to_owned);
    let mut widths = head.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
