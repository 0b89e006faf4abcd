//! Unit tests of the validators: every problem reported, in the documented wording.

use super::*;
use axum::http::HeaderValue;
use serde_json::json;

const LANGS: &[&str] = &["javascript", "python"];

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// A query map from pairs.
fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn problems(err: ApiError) -> Vec<String> {
    match err {
        ApiError::Validation(p) => p,
        other => panic!("expected validation, got {other:?}"),
    }
}

#[test]
fn language_message_lists_python_and_javascript_first() {
    assert_eq!(
        language_message(LANGS),
        "language must be one of the following values: python, javascript"
    );
    assert_eq!(
        language_order(&["ruby", "javascript", "go", "python"]),
        vec!["python", "javascript", "go", "ruby"]
    );
}

#[test]
fn create_accepts_absent_null_and_empty_template() {
    let c = create_session(&obj(json!({"language":"python"})), LANGS).unwrap();
    assert_eq!(c.template_code, None);
    let c = create_session(
        &obj(json!({"language":"python","templateCode":null})),
        LANGS,
    )
    .unwrap();
    assert_eq!(c.template_code, None);
    let c = create_session(
        &obj(json!({"language":"javascript","templateCode":""})),
        LANGS,
    )
    .unwrap();
    assert_eq!(c.template_code.as_deref(), Some(""));
    assert_eq!(c.language, "javascript");
}

#[test]
fn create_reports_every_problem() {
    let err = create_session(
        &obj(json!({"language":"cobol","templateCode":5,"foo":1,"bar":[]})),
        LANGS,
    )
    .unwrap_err();
    let p = problems(err);
    assert_eq!(p.len(), 4, "{p:?}");
    assert!(p.contains(&language_message(LANGS)));
    assert!(p.contains(&"templateCode must be a string".to_owned()));
    assert!(p.contains(&"property foo should not exist".to_owned()));
    assert!(p.contains(&"property bar should not exist".to_owned()));
    let p = problems(create_session(&Map::new(), LANGS).unwrap_err());
    assert_eq!(p, vec![language_message(LANGS)]);
    let p = problems(create_session(&obj(json!({"language":7})), LANGS).unwrap_err());
    assert_eq!(p, vec![language_message(LANGS)]);
    let p = problems(
        create_session(
            &obj(json!({"language":"python","templateCode":"a\u{0}"})),
            LANGS,
        )
        .unwrap_err(),
    );
    assert_eq!(
        p,
        vec!["templateCode must not contain NUL characters".to_owned()]
    );
}

#[test]
fn update_rules() {
    let u = update_session(&obj(json!({"source_code":"x"})), LANGS).unwrap();
    assert_eq!(u.language, None);
    let u = update_session(
        &obj(json!({"source_code":"x","language":"javascript"})),
        LANGS,
    )
    .unwrap();
    assert_eq!(u.language.as_deref(), Some("javascript"));
    let p = problems(update_session(&obj(json!({"source_code":""})), LANGS).unwrap_err());
    assert_eq!(p, vec!["source_code should not be empty".to_owned()]);
    let p = problems(update_session(&Map::new(), LANGS).unwrap_err());
    assert_eq!(p.len(), 2);
    let p = problems(
        update_session(&obj(json!({"source_code":1,"language":"x","zz":0})), LANGS).unwrap_err(),
    );
    assert_eq!(
        p,
        vec![
            "source_code must be a string".to_owned(),
            language_message(LANGS),
            "property zz should not exist".to_owned()
        ]
    );
}

#[test]
fn idempotency_key_rules() {
    let mut h = HeaderMap::new();
    assert_eq!(idempotency_key(&h).unwrap(), None);
    h.insert(IDEMPOTENCY_HEADER, HeaderValue::from_static("abc 123~"));
    assert_eq!(idempotency_key(&h).unwrap().as_deref(), Some("abc 123~"));
    let max = "k".repeat(255);
    h.insert(IDEMPOTENCY_HEADER, HeaderValue::from_str(&max).unwrap());
    assert_eq!(idempotency_key(&h).unwrap(), Some(max));
    for bad in [
        HeaderValue::from_str(&"k".repeat(256)).unwrap(),
        HeaderValue::from_static(""),
        HeaderValue::from_str("a\tb").unwrap(),
        HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
    ] {
        h.insert(IDEMPOTENCY_HEADER, bad);
        assert!(matches!(idempotency_key(&h), Err(ApiError::BadRequest(_))));
    }
    h.insert(IDEMPOTENCY_HEADER, HeaderValue::from_static("a"));
    h.append(IDEMPOTENCY_HEADER, HeaderValue::from_static("b"));
    assert!(matches!(idempotency_key(&h), Err(ApiError::BadRequest(_))));
}

#[test]
fn history_query_rules() {
    let h = history_query(&q(&[])).unwrap();
    assert_eq!((h.limit, h.before), (100, None));
    let id = Uuid::now_v7();
    let h = history_query(&q(&[("limit", "1000"), ("before", &id.to_string())])).unwrap();
    assert_eq!((h.limit, h.before), (1000, Some(id)));
    for bad in ["0", "1001", "abc", "-1", "", "1.5", "99999999999"] {
        let p = problems(history_query(&q(&[("limit", bad)])).unwrap_err());
        assert_eq!(p.len(), 1, "{bad}");
    }
    let p = problems(history_query(&q(&[("limit", "0"), ("before", "x")])).unwrap_err());
    assert_eq!(p.len(), 2);
}

#[test]
fn run_query_rules() {
    assert_eq!(run_query(&q(&[])).unwrap(), RunQuery::default());
    for yes in ["", "true", "1"] {
        assert!(run_query(&q(&[("wait", yes)])).unwrap().wait, "{yes:?}");
    }
    for no in ["false", "0"] {
        assert!(!run_query(&q(&[("wait", no)])).unwrap().wait, "{no:?}");
    }
    let r = run_query(&q(&[("wait", "true"), ("timeout_ms", "250")])).unwrap();
    assert_eq!(r.timeout_ms, Some(250));
    assert_eq!(
        problems(run_query(&q(&[("wait", "yes")])).unwrap_err()),
        vec!["wait must be true or false"]
    );
    assert_eq!(
        problems(run_query(&q(&[("timeout_ms", "250")])).unwrap_err()),
        vec!["timeout_ms is only allowed with wait=true"]
    );
    for bad in ["-1", "abc", "1.5", ""] {
        let p = problems(run_query(&q(&[("wait", "true"), ("timeout_ms", bad)])).unwrap_err());
        assert_eq!(
            p,
            vec!["timeout_ms must be a non-negative integer (milliseconds)"],
            "{bad:?}"
        );
    }
    let p = problems(run_query(&q(&[("wait", "maybe"), ("timeout_ms", "x")])).unwrap_err());
    assert_eq!(p.len(), 2);
}

/// Unknown properties are named, not echoed whole: an error is never much larger than a
/// few lines, whatever the body holds.
#[test]
fn unknown_properties_are_named_briefly_and_counted() {
    let mut body = Map::new();
    for i in 0..1000 {
        body.insert(format!("{i:04}{}", "k".repeat(10_000)), json!(1));
    }
    body.insert("language".into(), json!("python"));
    let p = problems(create_session(&body, LANGS).unwrap_err());
    assert_eq!(p.len(), 11, "{p:?}");
    assert!(p[0].starts_with("property 0000kkk"), "{}", p[0]);
    assert!(p[0].ends_with("… should not exist"), "{}", p[0]);
    assert!(p.iter().all(|m| m.len() < 200), "{p:?}");
    assert_eq!(p[10], "990 more properties should not exist");
}
