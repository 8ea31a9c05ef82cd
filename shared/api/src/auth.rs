//! Authentication and roles: JWT bearer tokens (HS256) carrying the organisation and role.
//!
//! Locally `concertmaster dev` generates a signing key on first start (kept in the data
//! directory) and `concertmaster token` mints tokens with it. In the cloud the API Gateway JWT
//! authorizer (e.g. Cognito) verifies tokens and the api Lambda passes its claims in as a
//! [`Caller`] request extension, which takes precedence over the header.
//!
//! Only what is needed is implemented (HS256, `exp`/`nbf`, constant-time signature check), so no
//! JWT crate is pulled in for one function.

use crate::error::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

/// What a caller may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read workflows, runs, node types, responses.
    Viewer,
    /// Also create, change, publish and run workflows; decide approvals.
    Editor,
    /// Also delete workflows, mark templates, read the audit log.
    Admin,
}

impl Role {
    /// Parses `viewer`, `editor`, `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

/// The claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject (user id or e-mail).
    pub sub: String,
    /// Organisation: every read and write is scoped to it.
    pub org: String,
    /// Role.
    pub role: Role,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    #[serde(default)]
    pub iat: i64,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Subject.
    pub subject: String,
    /// Organisation.
    pub org: String,
    /// Role.
    pub role: Role,
}

impl Caller {
    /// `Forbidden` unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {} role; the token has {}",
                role.as_str(),
                self.role.as_str()
            )))
        }
    }
}

/// Signs and verifies HS256 tokens with one key.
#[derive(Clone)]
pub struct TokenKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl TokenKey {
    /// A key from bytes (at least 32).
    pub fn new(key: Vec<u8>) -> Result<TokenKey, String> {
        if key.len() < 32 {
            return Err(format!(
                "a signing key needs at least 32 bytes, got {}",
                key.len()
            ));
        }
        Ok(TokenKey { key })
    }

    /// A key from its base64 text (standard alphabet, padded), as deployments store it.
    pub fn from_base64(text: &str) -> Result<TokenKey, String> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        TokenKey::new(bytes)
    }

    /// A fresh random 32-byte key.
    pub fn generate() -> Result<TokenKey, String> {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("no randomness for a signing key: {e}"))?;
        Ok(TokenKey { key })
    }

    /// The key bytes (to store it).
    pub fn bytes(&self) -> &[u8] {
        &self.key
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    /// A token for `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Verifies a token at time `now` (seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, ApiError> {
        let bad = |why: &str| ApiError::Unauthorized(format!("invalid bearer token: {why}"));
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not a JWT (header.payload.signature)"));
        };
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| bad("the header does not decode"))?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(bad("only HS256 tokens are accepted"));
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad("the signature does not decode"))?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| bad("the signature does not match"))?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| bad("the claims need sub, org, role (viewer|editor|admin) and exp"))?;
        if claims.exp <= now {
            return Err(ApiError::Unauthorized(
                "the bearer token has expired; get a new one (concertmaster token)".into(),
            ));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(bad("the token is not valid yet (nbf)"));
        }
        if claims.org.is_empty() || claims.sub.is_empty() {
            return Err(bad("sub and org must not be empty"));
        }
        Ok(claims)
    }
}

/// Seconds since the epoch.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "ada".into(),
            org: "acme".into(),
            role: Role::Editor,
            exp,
            iat: 0,
            nbf: None,
        }
    }

    #[test]
    fn tokens_round_trip_and_fail_clearly() {
        let k = TokenKey::generate().unwrap();
        let t = k.mint(&claims(100));
        assert_eq!(k.verify(&t, 50).unwrap(), claims(100));
        assert!(
            k.verify(&t, 100)
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
        let other = TokenKey::generate().unwrap();
        assert!(
            other
                .verify(&t, 50)
                .unwrap_err()
                .to_string()
                .contains("signature")
        );
        let mut tampered = t.clone();
        tampered.insert(t.find('.').unwrap() + 2, 'x');
        assert!(k.verify(&tampered, 50).is_err());
        assert!(
            k.verify("abc", 0)
                .unwrap_err()
                .to_string()
                .contains("not a JWT")
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(100)).unwrap())
        );
        assert!(
            k.verify(&none, 0)
                .unwrap_err()
                .to_string()
                .contains("HS256")
        );
        assert!(TokenKey::new(vec![1; 8]).is_err());
    }

    #[test]
    fn roles_are_ordered() {
        let c = Caller {
            subject: "a".into(),
            org: "o".into(),
            role: Role::Editor,
        };
        assert!(c.require(Role::Viewer).is_ok());
        assert!(c.require(Role::Editor).is_ok());
        assert!(matches!(
            c.require(Role::Admin),
            Err(ApiError::Forbidden(_))
        ));
    }
}
