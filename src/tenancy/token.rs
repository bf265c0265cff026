//! Token secrets: 256 random bits behind a recognisable prefix, shown once, stored as
//! SHA-256 hex. A leaked secret in a log or a repository is easy to spot by its prefix.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Prefix of tenant tokens.
pub const TENANT_PREFIX: &str = "scimbus_t_";
/// Prefix of application credentials (events of several tenants).
pub const APP_PREFIX: &str = "scimbus_app_";
/// Prefix of admin tokens issued by scimbus (the bootstrap one is whatever was configured).
pub const ADMIN_PREFIX: &str = "scimbus_a_";

/// Generates a new secret with `prefix`.
pub fn generate(prefix: &str) -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The stored form of a wrapped secret.
pub fn hash_secret(secret: &SecretString) -> String {
    hash(secret.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hashed() {
        let a = generate(TENANT_PREFIX);
        let b = generate(TENANT_PREFIX);
        assert!(a.expose_secret().starts_with(TENANT_PREFIX));
        assert_eq!(a.expose_secret().len(), TENANT_PREFIX.len() + 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(hash_secret(&a).len(), 64);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
