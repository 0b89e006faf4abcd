//! `GET /openapi.json` and `GET /docs` over real HTTP: the document is OpenAPI 3.1, validates
//! against the specification's own JSON Schema, resolves every `$ref`, and names every route
//! the router has (read from the router's source, so a route added without its annotation
//! fails here); the docs page and its renderer are served from the binary.

mod common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// Route sources that are not the native API (other products' wire formats).
const NOT_NATIVE: &[&str] = &["compat"];

/// Routes that serve files of pages, not API operations.
const ASSETS: &[&str] = &[
    "/docs/swagger-ui-bundle.js",
    "/docs/swagger-ui.css",
    "/assets/{file}",
];

/// `(path, method)` of every `.route("PATH", get(…).post(…))` in `dir`, recursively.
fn routes_in(dir: &Path, out: &mut BTreeSet<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() {
            if !NOT_NATIVE.contains(&name.as_str()) {
                routes_in(&path, out);
            }
            continue;
        }
        if !name.ends_with(".rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let mut rest = src.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let call = &rest[..matching_paren(rest)];
            let quoted = call
                .trim_start()
                .strip_prefix('"')
                .expect("route path literal");
            let route = &quoted[..quoted.find('"').unwrap()];
            let methods = &quoted[route.len()..];
            for m in ["get", "post", "put", "patch", "delete"] {
                let called = methods
                    .match_indices(&format!("{m}("))
                    .any(|(i, _)| i == 0 || !methods.as_bytes()[i - 1].is_ascii_alphanumeric());
                if called {
                    out.insert((route.to_owned(), m.to_owned()));
                }
            }
        }
    }
}

/// Index of the `)` that closes the call whose arguments `s` starts with.
fn matching_paren(s: &str) -> usize {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced .route( call");
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_document_covers_every_route_and_validates() {
    let server = common::start().await;
    let r = server.get("/openapi.json").await;
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    // Against the OpenAPI 3.1 schema (tests/data, from the npm package ui/build.sh pins).
    let schema: Value = serde_json::from_str(include_str!("data/openapi-3.1.schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the 3.1 schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(problems.is_empty(), "invalid OpenAPI 3.1: {problems:#?}");

    // Every route of the router, with every method, is an operation of the document.
    let mut routes = BTreeSet::new();
    routes_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut routes,
    );
    assert!(
        routes.len() >= 12,
        "the source scan found too few routes: {routes:?}"
    );
    let missing: Vec<_> = routes
        .iter()
        .filter(|(path, _)| !ASSETS.contains(&path.as_str()))
        .filter(|(path, method)| doc["paths"][path.as_str()][method.as_str()].is_null())
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );

    // Every operation answers at least one documented status; every $ref resolves.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                !op["responses"].as_object().unwrap().is_empty(),
                "{method} {path} documents no response"
            );
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .expect("local schema ref");
        assert!(
            !doc["components"]["schemas"][name].is_null(),
            "dangling $ref {r}"
        );
    }
    // The error shape every 4xx/5xx uses is described with its three fields.
    let error = &doc["components"]["schemas"]["ErrorBody"]["properties"];
    for field in ["statusCode", "message", "error"] {
        assert!(!error[field].is_null(), "ErrorBody lacks {field}: {error}");
    }
}

#[tokio::test]
async fn docs_page_and_its_renderer_are_served_offline() {
    let server = common::start().await;
    let r = server.get("/docs").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("/openapi.json"));
    // Nothing is loaded from another host: every src/href is a path of this server.
    for attr in ["src=\"", "href=\""] {
        for (i, _) in page.match_indices(attr) {
            let target = &page[i + attr.len()..];
            assert!(
                target.starts_with('/'),
                "external asset in /docs: {target:.60}"
            );
        }
    }
    for (asset, kind) in [
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
    ] {
        let r = server.get(asset).await;
        assert_eq!(r.status(), 200, "{asset}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert!(
            r.bytes().await.unwrap().len() > 10_000,
            "{asset} is the real file"
        );
    }
}
