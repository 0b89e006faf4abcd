//! The playground at `/`: a page, its script and style (`assets/playground`, hand-written)
//! and the CodeMirror bundle (`assets/playground/editor.js`, built by `ui/build.sh` and
//! committed), all embedded in the binary: `cargo run` needs no Node, the browser no network.

use super::docs::asset;
use crate::error::ApiError;
use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::{Html, Response};

const INDEX: &str = include_str!("../../assets/playground/index.html");
const STATS: &str = include_str!("../../assets/playground/stats.html");
const STATS_JS: &[u8] = include_bytes!("../../assets/playground/stats.js");
const APP_JS: &[u8] = include_bytes!("../../assets/playground/app.js");
const APP_CSS: &[u8] = include_bytes!("../../assets/playground/app.css");
const EDITOR_JS: &[u8] = include_bytes!("../../assets/playground/editor.js");

/// The playground page.
#[utoipa::path(get, path = "/", tag = "system",
    responses((status = 200, description = "The playground (HTML page)", content_type = "text/html", body = String)))]
pub(crate) async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// The statistics dashboard page (plots `GET /statistics`).
#[utoipa::path(get, path = "/stats", tag = "system",
    responses((status = 200, description = "The statistics dashboard (HTML page)", content_type = "text/html", body = String)))]
pub(crate) async fn stats() -> Html<&'static str> {
    Html(STATS)
}

/// `/assets/{file}`: the pages' scripts and style; anything else is our 404.
pub(crate) async fn file(Path(name): Path<String>, uri: Uri) -> Result<Response, ApiError> {
    const JS: &str = "text/javascript; charset=utf-8";
    Ok(match name.as_str() {
        "app.js" => asset(APP_JS, JS),
        "editor.js" => asset(EDITOR_JS, JS),
        "stats.js" => asset(STATS_JS, JS),
        "app.css" => asset(APP_CSS, "text/css; charset=utf-8"),
        _ => {
            return Err(ApiError::RouteNotFound {
                method: Method::GET,
                path: uri.path().to_owned(),
            })
        }
    })
}
