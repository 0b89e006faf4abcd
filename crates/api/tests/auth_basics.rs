//! The authentication layer over HTTP on the embedded store: open while no key exists, a key
//! required once one does, and every refusal the same 401.

mod common;

use common::{error_body, start};
use livexec_api::auth::token::{hash_token, new_token};
use livexec_core::KeyStore;
use reqwest::StatusCode;

#[tokio::test]
async fn keys_close_the_service_and_only_valid_ones_open_it() {
    let s = start().await;
    // No key yet: open, as the original service.
    let session = s.create_session("python", Some("print(1)")).await;

    let token = new_token().unwrap();
    let key = s
        .store
        .create_key("alice", "free", false, &hash_token(&token))
        .await
        .unwrap();

    // Now every refusal is the same 401 in the error shape.
    let path = format!("/code-sessions/{session}");
    let anonymous = s.get(&path).await;
    assert_eq!(
        anonymous.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );
    let first = error_body(anonymous, StatusCode::UNAUTHORIZED).await;
    for header in [
        ("authorization", "Bearer lx_unknown".to_owned()),
        ("authorization", "Basic Zm9vOmJhcg==".to_owned()),
        ("authorization", "Bearer".to_owned()),
        ("x-auth-token", "nonsense".to_owned()),
    ] {
        let res = s
            .client
            .get(s.url(&path))
            .header(header.0, header.1)
            .send()
            .await
            .unwrap();
        assert_eq!(error_body(res, StatusCode::UNAUTHORIZED).await, first);
    }

    // The valid key passes, by either header; health never needs one.
    for header in ["authorization", "x-auth-token"] {
        let value = match header {
            "authorization" => format!("Bearer {token}"),
            _ => token.clone(),
        };
        let res = s
            .client
            .post(s.url("/code-sessions"))
            .header(header, value)
            .json(&serde_json::json!({"language": "python"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    assert_eq!(s.get("/health").await.status(), StatusCode::OK);

    // Revoked: refused like an unknown key (another key keeps the service closed).
    let other = s
        .store
        .create_key("bob", "free", false, &hash_token(&new_token().unwrap()))
        .await
        .unwrap();
    s.store.revoke_key(key.id).await.unwrap();
    let res = s
        .client
        .get(s.url("/runtimes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(res, StatusCode::UNAUTHORIZED).await, first);
    // With no unrevoked key left the service is open again (mode auto), and whatever token a
    // client sends is ignored, as by a Judge0 without authentication.
    s.store.revoke_key(other.id).await.unwrap();
    assert_eq!(s.get("/runtimes").await.status(), StatusCode::OK);
    let res = s
        .client
        .get(s.url("/runtimes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
