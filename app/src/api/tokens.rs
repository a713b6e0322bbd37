//! API tokens in GraphQL (admins only): create one (optionally with an expiry), list them,
//! revoke one. A revoked or expired token stops working at once for HTTP requests; an open
//! WebSocket of it is closed at its next recheck (`[graphql] token_recheck_secs`).

use super::types::{Role, id_of};
use super::{api, auth, directory_error, principal};
use crate::clock::micros_to_datetime;
use crate::domain::Permission;
use crate::error::{ApiError, ErrorCode};
use crate::store::entities::api_token;
use crate::store::tokens::{CreateToken, RevokeToken};
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

/// The longest token name accepted, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 200;

/// A new API token. The token itself is shown once, here, and never again.
#[derive(SimpleObject)]
pub struct CreatedToken {
    pub id: ID,
    pub name: String,
    pub role: Role,
    pub token: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API token as stored (never the token itself, only its hash is kept).
pub struct ApiToken {
    token: api_token::Model,
    now: i64,
}

#[Object]
impl ApiToken {
    async fn id(&self) -> ID {
        ID(self.token.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.token.name
    }
    async fn role(&self) -> Option<Role> {
        crate::domain::Role::parse(&self.token.role).map(Into::into)
    }
    /// The agent the token acts as.
    async fn agent_id(&self) -> Option<ID> {
        self.token.agent_id.map(|id| ID(id.to_string()))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.token.created_at)
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.token.expires_at.map(micros_to_datetime)
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.token.revoked_at.map(micros_to_datetime)
    }
    /// Whether the token authenticates its bearer now (neither revoked nor expired).
    async fn active(&self) -> bool {
        self.token.in_force(self.now)
    }
}

#[derive(Default)]
pub struct TokenQuery;

#[Object]
impl TokenQuery {
    /// Every API token, revoked and expired ones too, oldest first (admins only).
    async fn api_tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiToken>> {
        principal(ctx)?.require(Permission::ManageAgents)?;
        let now = api(ctx).clock.now();
        Ok(api(ctx)
            .store
            .tokens()
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|token| ApiToken { token, now })
            .collect())
    }
}

#[derive(Default)]
pub struct TokenMutation;

#[Object]
impl TokenMutation {
    /// Creates an API token (admins only). The token is in the answer, once. With
    /// `expiresAt` it stops working then.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        role: Role,
        agent_id: Option<ID>,
        expires_at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<CreatedToken> {
        let caller = principal(ctx)?;
        caller.require(Permission::ManageAgents)?;
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidInput, "the token name is empty").into());
        }
        if name.chars().count() > MAX_TOKEN_NAME_CHARS {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("the token name is longer than {MAX_TOKEN_NAME_CHARS} characters"),
            )
            .into());
        }
        let now = api(ctx).clock.now();
        let expires_at = expires_at.map(|at| at.timestamp_micros());
        if expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::new(ErrorCode::InvalidInput, "expiresAt is in the past").into());
        }
        let agent_id = agent_id.as_ref().map(|id| id_of(id, "agent")).transpose()?;
        let (token, token_hash) = auth::generate_token();
        let op = CreateToken {
            by: caller.actor().label(),
            name,
            role: role.into(),
            agent_id,
            token_hash,
            expires_at,
            now,
        };
        let created = api(ctx)
            .store
            .write(op)
            .await
            .map_err(ApiError::internal)?
            .map_err(directory_error)?;
        Ok(CreatedToken {
            id: ID(created.id.to_string()),
            name: created.name,
            role,
            token,
            expires_at: created.expires_at.map(micros_to_datetime),
        })
    }

    /// Revokes an API token (admins only): requests with it are refused from now on and
    /// its open WebSockets are closed. Revoking a revoked token changes nothing.
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiToken> {
        let caller = principal(ctx)?;
        caller.require(Permission::ManageAgents)?;
        let id = id_of(&id, "token")?;
        let now = api(ctx).clock.now();
        let revoked = api(ctx)
            .store
            .write(RevokeToken {
                by: caller.actor().label(),
                id,
                now,
            })
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::TokenNotFound,
                    format!("token {id} does not exist"),
                )
            })?;
        Ok(ApiToken {
            token: revoked,
            now,
        })
    }
}
