//! Drop-in APIs of other code runners, served beside the native one (DESIGN.md §7.5, issue
//! 12): Judge0 CE 1.13.1 ([`judge0`]) and Piston v2 ([`piston`]), and an MCP server for agents
//! ([`mcp`]).
//!
//! Each adapter only translates: a foreign request becomes a native one-shot run (through
//! [`native`], the same store and queue calls as `POST /executions`), and a native
//! execution becomes the foreign result. No queue, storage or sandbox logic of their own.
//! Each is switched on or off by [`CompatConfig`].

mod judge0;
mod judge0_tables;
mod judge0_view;
mod judge0_wire;
mod judge0_zip;
mod mcp;
pub use mcp::{serve_stdio as serve_mcp_stdio, McpStdioError, MAX_MCP_SESSIONS_PER_KEY};
mod native;
mod piston;
mod piston_wire;

use crate::AppState;
use axum::Router;

/// Which drop-in APIs are served (all on by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompatConfig {
    /// Judge0 CE 1.13.1 at `/submissions`, `/languages`, … (`LIVEXEC_JUDGE0_API`).
    pub judge0: bool,
    /// Piston v2 at `/api/v2/…` (`LIVEXEC_PISTON_API`).
    pub piston: bool,
    /// The MCP server for agents at `/mcp` (`LIVEXEC_MCP`).
    pub mcp: bool,
}

impl Default for CompatConfig {
    fn default() -> Self {
        CompatConfig {
            judge0: true,
            piston: true,
            mcp: true,
        }
    }
}

/// The routes of the switched-on adapters, to merge into the native router.
pub fn router(state: &AppState) -> Router<AppState> {
    let config = state.config.compat;
    let mut router = Router::new();
    if config.judge0 {
        router = router.merge(judge0::router());
    }
    if config.piston {
        router = router.merge(piston::router());
    }
    if config.mcp {
        router = router.merge(mcp::router(state));
    }
    router
}

/// Which API a request path belongs to, so a refusal made before any route (authentication,
/// rate limits) answers in that API's own shape. A switched-off drop-in API is native ground.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    /// The native API (and anything unknown).
    Native,
    /// Judge0 CE 1.13.1's paths.
    Judge0,
    /// Piston v2's `/api/v2/…`.
    Piston,
    /// `/mcp`.
    Mcp,
}

impl Surface {
    /// The API `path` belongs to under `compat`.
    pub(crate) fn of(path: &str, compat: &CompatConfig) -> Surface {
        const JUDGE0: [&str; 7] = [
            "/submissions",
            "/languages",
            "/statuses",
            "/config_info",
            "/about",
            "/system_info",
            "/workers",
        ];
        let under = |prefix: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if compat.judge0 && JUDGE0.iter().any(|p| under(p)) {
            Surface::Judge0
        } else if compat.piston && under("/api/v2") {
            Surface::Piston
        } else if compat.mcp && under("/mcp") {
            Surface::Mcp
        } else {
            Surface::Native
        }
    }
}
