//! Signing keys of security event tokens and the compact JWS (RFC 7515) that carries one:
//! RS256 (RSA 2048, what the Shared Signals interoperability profile requires) and ES256
//! (P-256). Keys are made here, sealed with AES-256-GCM under a key derived from
//! `SCIMBUS_SET_KEY_SECRET` before they are stored, and published as a JWKS (RFC 7517).
//! Signing is ring's; RSA key generation, which ring lacks, is the `rsa` crate's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The JWS algorithms scimbus signs with.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub enum Alg {
    RS256,
    ES256,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "RS256" => Some(Alg::RS256),
            "ES256" => Some(Alg::ES256),
            _ => None,
        }
    }
}

/// What can go wrong with keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "SCIMBUS_SET_KEY_SECRET is not set: security event tokens need it to keep their signing keys"
    )]
    NoSecret,
    #[error(
        "a signing key could not be unsealed (SCIMBUS_SET_KEY_SECRET differs from the one that sealed it)"
    )]
    Unseal,
    #[error("signing key: {0}")]
    Crypto(String),
}

/// The modulus of the RSA keys made.
const RSA_BITS: usize = 2048;

/// A new key pair: its private key (PKCS#8 DER, to be sealed; wiped when dropped) and its
/// public JWK.
pub struct NewKey {
    pub kid: String,
    pub alg: Alg,
    pub pkcs8: Zeroizing<Vec<u8>>,
    pub jwk: Value,
}

/// Makes a key pair for `alg`; `kid` names it in the JWS header and the JWKS.
pub fn generate(alg: Alg) -> Result<NewKey, KeyError> {
    let kid = uuid::Uuid::now_v7().simple().to_string();
    let pkcs8 = match alg {
        Alg::RS256 => {
            use rsa::pkcs8::EncodePrivateKey;
            // 2048 bits: the profile's minimum, and a third of 3072's signing time (a
            // receiver's SETs are signed one by one).
            let key = rsa::PrivateKey::new(&mut getrandom::SysRng, RSA_BITS)
                .map_err(|e| KeyError::Crypto(e.to_string()))?;
            Zeroizing::new(
                key.to_pkcs8_der()
                    .map_err(|e| KeyError::Crypto(e.to_string()))?
                    .as_bytes()
                    .to_vec(),
            )
        }
        Alg::ES256 => Zeroizing::new(
            EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|e| KeyError::Crypto(e.to_string()))?
            .as_ref()
            .to_vec(),
        ),
    };
    let jwk = Signer::from_pkcs8(&kid, alg, &pkcs8)?.jwk();
    Ok(NewKey {
        kid,
        alg,
        pkcs8,
        jwk,
    })
}

/// A key ready to sign.
pub struct Signer {
    kid: String,
    key: SignerKey,
}

enum SignerKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl Signer {
    pub fn from_pkcs8(kid: &str, alg: Alg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let crypto = |e: ring::error::KeyRejected| KeyError::Crypto(e.to_string());
        let key = match alg {
            Alg::RS256 => SignerKey::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(crypto)?),
            Alg::ES256 => SignerKey::Ec(
                EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8,
                    &SystemRandom::new(),
                )
                .map_err(crypto)?,
            ),
        };
        Ok(Self {
            kid: kid.to_owned(),
            key,
        })
    }

    pub fn alg(&self) -> Alg {
        match self.key {
            SignerKey::Rsa(_) => Alg::RS256,
            SignerKey::Ec(_) => Alg::ES256,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (`use: sig`, with its `kid` and `alg`).
    pub fn jwk(&self) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match &self.key {
            SignerKey::Rsa(key) => {
                let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public());
                json!({
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                    "n": b64(&public.n),
                    "e": b64(&public.e),
                })
            }
            SignerKey::Ec(key) => {
                // The uncompressed point: 0x04, then X and Y of 32 bytes each.
                let point = key.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(32.min(point.len().saturating_sub(1)));
                json!({
                    "kty": "EC", "use": "sig", "alg": "ES256", "kid": self.kid, "crv": "P-256",
                    "x": b64(x), "y": b64(y),
                })
            }
        }
    }

    /// `claims` as a compact JWS with the header `{"alg", "kid", "typ": "secevent+jwt"}`
    /// (RFC 8417 §2.3).
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let header = json!({"alg": self.alg().as_str(), "kid": self.kid, "typ": "secevent+jwt"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let crypto = |e: ring::error::Unspecified| KeyError::Crypto(e.to_string());
        let signature = match &self.key {
            SignerKey::Rsa(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut signature,
                )
                .map_err(crypto)?;
                signature
            }
            SignerKey::Ec(key) => key
                .sign(&rng, input.as_bytes())
                .map_err(crypto)?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// Seals and unseals private keys with AES-256-GCM under a key derived (HKDF-SHA256) from
/// `SCIMBUS_SET_KEY_SECRET`; the key id is the associated data, so a sealed key cannot be
/// moved to another row.
pub struct Sealer {
    key: ring::aead::LessSafeKey,
}

/// What a sealed value starts with: the layout (AES-256-GCM, 12-byte nonce first).
const SEALED_V1: u8 = 1;

impl Sealer {
    pub fn new(secret: Option<&SecretString>) -> Result<Self, KeyError> {
        use ring::{aead, hkdf};
        let secret = secret.ok_or(KeyError::NoSecret)?;
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"scimbus set signing keys")
            .extract(secret.expose_secret().as_bytes());
        let okm = prk
            .expand(&[b"aes-256-gcm v1"], &aead::AES_256_GCM)
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let key = aead::UnboundKey::from(okm);
        Ok(Self {
            key: aead::LessSafeKey::new(key),
        })
    }

    pub fn seal(&self, kid: &str, plain: &[u8]) -> Result<Vec<u8>, KeyError> {
        use ring::aead;
        use ring::rand::SecureRandom;
        let mut nonce = [0u8; aead::NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let mut data = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(kid.as_bytes()),
                &mut data,
            )
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let mut sealed = Vec::with_capacity(1 + nonce.len() + data.len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&data);
        Ok(sealed)
    }

    /// The plaintext, wiped from memory when dropped.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        use ring::aead;
        let Some((&SEALED_V1, rest)) = sealed.split_first() else {
            return Err(KeyError::Unseal);
        };
        if rest.len() < aead::NONCE_LEN {
            return Err(KeyError::Unseal);
        }
        let (nonce, data) = rest.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Unseal)?;
        let mut data = Zeroizing::new(data.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, aead::Aad::from(kid.as_bytes()), &mut data)
            .map_err(|_| KeyError::Unseal)?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(alg: Alg, jwk: &Value, jws: &str) -> bool {
        let parts: Vec<&str> = jws.split('.').collect();
        let Ok(sig) = URL_SAFE_NO_PAD.decode(parts[2]) else {
            return false;
        };
        let input = format!("{}.{}", parts[0], parts[1]);
        let field = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(jwk[name].as_str().unwrap_or_default())
                .unwrap_or_default()
        };
        match alg {
            Alg::RS256 => signature::RsaPublicKeyComponents {
                n: field("n"),
                e: field("e"),
            }
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                input.as_bytes(),
                &sig,
            )
            .is_ok(),
            Alg::ES256 => {
                let mut point = vec![4u8];
                point.extend(field("x"));
                point.extend(field("y"));
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(input.as_bytes(), &sig)
                    .is_ok()
            }
        }
    }

    #[test]
    fn keys_sign_compact_jws_their_jwk_verifies() {
        for alg in [Alg::ES256, Alg::RS256] {
            let key = generate(alg).unwrap_or_else(|e| panic!("{e}"));
            let signer =
                Signer::from_pkcs8(&key.kid, alg, &key.pkcs8).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(signer.jwk(), key.jwk);
            let jws = signer
                .sign(&json!({"jti": "1", "events": {}}))
                .unwrap_or_default();
            assert!(verify(alg, &key.jwk, &jws), "{alg:?}");
            let header: Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(jws.split('.').next().unwrap_or_default())
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
            assert_eq!(
                header,
                json!({"alg": alg.as_str(), "kid": key.kid, "typ": "secevent+jwt"})
            );
            let mut tampered = jws.clone();
            tampered.insert(jws.find('.').unwrap_or_default() + 2, 'A');
            assert!(!verify(alg, &key.jwk, &tampered));
            assert!(
                key.jwk.get("d").is_none(),
                "a JWK never has the private part"
            );
        }
    }

    #[test]
    fn sealed_keys_open_only_with_their_secret_and_kid() {
        let secret = SecretString::from("0123456789abcdef0123456789abcdef");
        let sealer = Sealer::new(Some(&secret)).unwrap_or_else(|e| panic!("{e}"));
        let sealed = sealer.seal("k1", b"private").unwrap_or_default();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(
            sealer.open("k1", &sealed).unwrap_or_default().as_slice(),
            b"private"
        );
        assert!(matches!(sealer.open("k2", &sealed), Err(KeyError::Unseal)));
        let other = Sealer::new(Some(&SecretString::from(
            "another-secret-0123456789abcdefgh",
        )))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(other.open("k1", &sealed), Err(KeyError::Unseal)));
        assert!(matches!(Sealer::new(None), Err(KeyError::NoSecret)));
    }
}
