//! API tokens: `Authorization: Bearer <token>` on every GraphQL operation (or in the
//! WebSocket `connection_init` payload). A token maps to a role and, for people, an agent.

use crate::conversation::lifecycle::ReplyAuthority;
use crate::domain::outbound::Origin;
use crate::domain::{Actor, Authority, Micros, Permission, Role};
use crate::error::{ApiError, ErrorCode};
use crate::store::Store;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The caller of an API operation.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: i64,
    pub role: Role,
    pub agent_id: Option<i64>,
}

impl Principal {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("the {} role may not do this ({permission:?})", self.role),
            ))
        }
    }

    /// How far this caller's messages reach: supervisors and above answer any case.
    pub fn reply_authority(&self) -> ReplyAuthority {
        if self.role.allows(Permission::OverrideOwnership) {
            ReplyAuthority::Supervisor
        } else {
            ReplyAuthority::Agent
        }
    }

    /// Who wrote what this caller sends, for the gate: an integration acting on its own,
    /// or a person.
    pub fn origin(&self) -> Origin {
        if self.role == Role::Integration {
            Origin::Integration
        } else {
            Origin::Agent
        }
    }

    /// Whose ownership rules a conversation's actor applies to this caller's requests.
    pub fn authority(&self) -> Authority {
        Authority::Caller {
            role: self.role,
            agent_id: self.agent_id,
        }
    }

    /// Who this caller is in the event log.
    pub fn actor(&self) -> Actor {
        match self.agent_id {
            Some(id) => Actor::Agent { id },
            None => Actor::Token { id: self.token_id },
        }
    }
}

/// A new random token, and the hash that is stored for it.
pub fn generate_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!("prl_{}", hex::encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Extracts the token from `Bearer <token>`.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The caller of a request with this Authorization header at `now`; a token that is
/// unknown, revoked or expired authenticates no one.
pub async fn authenticate(
    store: &Store,
    header: Option<&str>,
    now: Micros,
) -> Result<Principal, ApiError> {
    let token = bearer(header).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "send Authorization: Bearer <token>; create one with `parley token create`",
        )
    })?;
    let found = store
        .token_by_hash(&hash_token(token))
        .await
        .map_err(ApiError::internal)?;
    let token = found.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "the token is unknown or revoked",
        )
    })?;
    if !token.in_force(now) {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "the token has expired",
        ));
    }
    let role = Role::parse(&token.role).ok_or_else(|| {
        ApiError::internal(format!("token {} has role {:?}", token.id, token.role))
    })?;
    Ok(Principal {
        token_id: token.id,
        role,
        agent_id: token.agent_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_extracted_and_other_schemes_refused() {
        assert_eq!(bearer(Some("Bearer prl_abc")), Some("prl_abc"));
        assert_eq!(bearer(Some("bearer  prl_abc ")), Some("prl_abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn generated_tokens_are_unique_and_stored_only_as_hashes() {
        let (a, hash_a) = generate_token();
        let (b, _) = generate_token();
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), hash_a);
        assert!(!hash_a.contains(&a));
    }
}
