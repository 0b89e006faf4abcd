//! `GET /openapi.json` and `GET /docs`: the OpenAPI document and a page that renders it with
//! Swagger UI, whose files are embedded in the binary (`assets/docs`, rebuilt by
//! `ui/build.sh` from the pinned npm package), so the page works with no network at all.

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

const SWAGGER_JS: &[u8] = include_bytes!("../../assets/docs/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../../assets/docs/swagger-ui.css");

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::routes::openapi::document())
}

/// A page rendering `/openapi.json`.
#[utoipa::path(get, path = "/docs", tag = "system",
    responses((status = 200, description = "The API reference page", content_type = "text/html", body = String)))]
pub(crate) async fn docs_page() -> Html<&'static str> {
    Html(DOCS_HTML)
}

/// `/docs/swagger-ui-bundle.js`.
pub(crate) async fn swagger_js() -> Response {
    asset(SWAGGER_JS, "text/javascript; charset=utf-8")
}

/// `/docs/swagger-ui.css`.
pub(crate) async fn swagger_css() -> Response {
    asset(SWAGGER_CSS, "text/css; charset=utf-8")
}

/// An embedded file with its type, cacheable for an hour.
pub(crate) fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        bytes,
    )
        .into_response()
}

const DOCS_HTML: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>livexec API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#docs", deepLinking: true });
</script>
</body>
</html>
"##;
