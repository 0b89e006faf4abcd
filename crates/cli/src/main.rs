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

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};
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
    Serve(Lazy<Box<serve::ServeArgs>>),
    /// Run one file in the sandbox without a server; output passes through live.
    Run(Lazy<run::RunArgs>),
    /// List the runtimes, their interpreters, and whether each works on this host.
    Runtimes(Lazy<runtimes::RuntimesArgs>),
    /// Run the database migrations of DATABASE_URL and exit.
    Migrate(Lazy<migrate::MigrateArgs>),
    /// Serve the MCP tools (`list_runtimes`, `run_code`) over stdin/stdout for a desktop agent,
    /// with the workers in this process; the same settings as `serve`. Ends when the agent
    /// closes stdin.
    Mcp(Lazy<Box<serve::ServeArgs>>),
    /// Create, list and revoke API keys in DATABASE_URL.
    Keys(Lazy<keys::KeysArgs>),
}

/// A subcommand's arguments, declared to clap only when that subcommand is the one given
/// ([`clap::Command::defer`]): building every subcommand's arguments (`serve` alone has
/// dozens) cost each `livexec run` ~0.2 ms before its work began.
#[derive(Debug)]
struct Lazy<T>(T);

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Lazy)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }

    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service logs at info; one-shot commands keep stderr for the program and the verdict.
    settings::init_logging(match cli.command {
        Command::Serve(_) | Command::Migrate(_) | Command::Mcp(_) => "info",
        Command::Run(_) | Command::Runtimes(_) | Command::Keys(_) => "warn",
    });
    let outcome = match cli.command {
        Command::Serve(Lazy(args)) => serve::main(*args),
        Command::Run(Lazy(args)) => run::main(args),
        Command::Runtimes(Lazy(args)) => runtimes::main(args),
        Command::Migrate(Lazy(args)) => migrate::main(args),
        Command::Mcp(Lazy(args)) => serve::main_with(*args, serve::Front::McpStdio),
        Command::Keys(Lazy(args)) => keys::main(args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("livexec: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_builds_and_parses_its_own_arguments() {
        // Building the whole tree runs every deferred subcommand's declaration.
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["livexec", "run", "-l", "py", "--stdin", "-", "a.py"]).unwrap();
        let Command::Run(Lazy(args)) = cli.command else {
            panic!("not run: {cli:?}");
        };
        assert_eq!(args.language, "py");
        assert_eq!(args.file, std::path::PathBuf::from("a.py"));
        // A deferred subcommand still refuses what it does not declare, and documents itself.
        let err = Cli::try_parse_from(["livexec", "run", "--bogus", "a.py"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let help = Cli::try_parse_from(["livexec", "serve", "--help"]).unwrap_err();
        assert!(help.to_string().contains("--bind"), "{help}");
    }
}
