//! API key tokens: `lx_` and 43 base64url characters (32 random bytes from the operating
//! system), and the SHA-256 hash that is all the database keeps of them. A token has 256 bits of
//! entropy, so a fast hash is the standard choice (as for GitHub's tokens): a slow password hash
//! protects low-entropy secrets, which these are not.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The prefix of every token (lets secret scanners and people recognise one).
pub const TOKEN_PREFIX: &str = "lx_";

/// Errors of [`new_token`].
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

/// A new secret token. Shown once to whoever creates the key; never stored or logged.
pub fn new_token() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The SHA-256 of a token as sent (whatever it holds: a malformed token is hashed too, so that
/// every refusal does the same work).
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hash_to_32_bytes() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a), hash_token(&a));
    }
}
