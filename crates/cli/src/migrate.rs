//! `livexec migrate`: run the migrations of DATABASE_URL and exit.

use crate::settings::{redact_url, tokio_runtime};
use clap::Args;
use std::process::ExitCode;

/// Settings of `livexec migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database: `sqlite://FILE` or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://livexec.db")]
    pub database_url: String,
}

/// Run the migrations once.
pub fn main(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio_runtime()?;
    rt.block_on(livexec_store::migrate(&args.database_url))?;
    tracing::info!(database = %redact_url(&args.database_url), "migrations applied");
    Ok(ExitCode::SUCCESS)
}
