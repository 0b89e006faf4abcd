//! `livexec`: run untrusted Python and JavaScript in a sandbox built from Linux primitives,
//! behind a REST API.
//!
//! Subcommands: `serve` (the service: API and/or workers), `run` (one file in the sandbox, no
//! server), `runtimes` (which languages work on this host), `migrate` (database migrations),
//! `mcp` (the MCP tools over stdio for a desktop agent), `keys` (API keys).

mod connect;
mod health;
mod keys;
mod migrate;
mod run;
mod runtimes;
mod serve;
mod settings;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Run untrusted code in a sandbox, behind a REST API.
#[derive(Debug, Parser)]
#[command(name = "livexec", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: the HTTP API and/or the workers (see --role).
    Serve(Box<serve::ServeArgs>),
    /// Run one file in the sandbox without a server; output passes through live.
    Run(run::RunArgs),
    /// List the runtimes, their interpreters, and whether each works on this host.
    Runtimes(runtimes::RuntimesArgs),
    /// Run the database migrations of DATABASE_URL and exit.
    Migrate(migrate::MigrateArgs),
    /// Serve the MCP tools (`list_runtimes`, `run_code`) over stdin/stdout for a desktop agent,
    /// with the workers in this process; the same settings as `serve`. Ends when the agent
    /// closes stdin.
    Mcp(Box<serve::ServeArgs>),
    /// Create, list and revoke API keys in DATABASE_URL.
    Keys(keys::KeysArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service logs at info; one-shot commands keep stderr for the program and the verdict.
    settings::init_logging(match cli.command {
        Command::Serve(_) | Command::Migrate(_) | Command::Mcp(_) => "info",
        Command::Run(_) | Command::Runtimes(_) | Command::Keys(_) => "warn",
    });
    let outcome = match cli.command {
        Command::Serve(args) => serve::main(*args),
        Command::Run(args) => run::main(args),
        Command::Runtimes(args) => runtimes::main(args),
        Command::Migrate(args) => migrate::main(args),
        Command::Mcp(args) => serve::main_with(*args, serve::Front::McpStdio),
        Command::Keys(args) => keys::main(args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("livexec: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
