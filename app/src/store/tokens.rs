//! API tokens. They are stored as SHA-256 hashes: they are long random secrets, so a fast
//! hash is enough and lookups stay cheap on every request. A token works until it is
//! revoked or its expiry passes; creating and revoking one are written to the audit log.

use super::entities::{agent, api_token};
use super::{Store, StoreError, WriteOp};
use crate::domain::{Micros, Role};
use futures::future::BoxFuture;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder,
};

use super::directory::DirectoryError;

pub struct CreateToken {
    /// Who creates it, as the audit log names them (`token:1`, `cli`).
    pub by: String,
    pub name: String,
    pub role: Role,
    pub agent_id: Option<i64>,
    pub token_hash: String,
    /// When it stops working; `None`: never.
    pub expires_at: Option<Micros>,
    pub now: Micros,
}

impl WriteOp for CreateToken {
    type Output = Result<api_token::Model, DirectoryError>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            if let Some(agent_id) = self.agent_id
                && agent::Entity::find_by_id(agent_id)
                    .one(txn)
                    .await?
                    .is_none()
            {
                return Ok(Err(DirectoryError::AgentNotFound(agent_id)));
            }
            let token = api_token::ActiveModel {
                name: Set(self.name.clone()),
                role: Set(self.role.as_str().into()),
                token_hash: Set(self.token_hash.clone()),
                agent_id: Set(self.agent_id),
                created_at: Set(self.now),
                revoked_at: Set(None),
                expires_at: Set(self.expires_at),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            super::audit::append(
                txn,
                &super::audit::AuditRecord {
                    actor: self.by.clone(),
                    action: "token.created".into(),
                    subject: Some(format!("token:{}", token.id)),
                    data: serde_json::json!({
                        "name": token.name,
                        "role": token.role,
                        "agent_id": token.agent_id,
                        "expires_at": token.expires_at,
                    }),
                    at: self.now,
                },
            )
            .await?;
            Ok(Ok(token))
        })
    }
}

/// Revokes a token for good; revoking a revoked token changes nothing.
pub struct RevokeToken {
    /// Who revokes it, as the audit log names them (`token:1`, `cli`).
    pub by: String,
    pub id: i64,
    pub now: Micros,
}

impl WriteOp for RevokeToken {
    /// The token as it now is; `None` when no token has the id.
    type Output = Option<api_token::Model>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let Some(token) = api_token::Entity::find_by_id(self.id).one(txn).await? else {
                return Ok(None);
            };
            if token.revoked_at.is_some() {
                return Ok(Some(token));
            }
            let mut active: api_token::ActiveModel = token.into();
            active.revoked_at = Set(Some(self.now));
            let token = active.update(txn).await?;
            super::audit::append(
                txn,
                &super::audit::AuditRecord {
                    actor: self.by.clone(),
                    action: "token.revoked".into(),
                    subject: Some(format!("token:{}", token.id)),
                    data: serde_json::json!({}),
                    at: self.now,
                },
            )
            .await?;
            Ok(Some(token))
        })
    }
}

impl api_token::Model {
    /// Whether the token authenticates its bearer at `now`.
    pub fn in_force(&self, now: Micros) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

impl Store {
    /// The unrevoked token with this hash (it may have expired).
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<api_token::Model>, StoreError> {
        Ok(api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(hash))
            .filter(api_token::Column::RevokedAt.is_null())
            .one(self.db())
            .await?)
    }

    /// Whether token `id` still authenticates its bearer at `now`.
    pub async fn token_in_force(&self, id: i64, now: Micros) -> Result<bool, StoreError> {
        Ok(api_token::Entity::find_by_id(id)
            .one(self.db())
            .await?
            .is_some_and(|token| token.in_force(now)))
    }

    /// Every token, revoked and expired ones too, oldest first.
    pub async fn tokens(&self) -> Result<Vec<api_token::Model>, StoreError> {
        Ok(api_token::Entity::find()
            .order_by_asc(api_token::Column::Id)
            .all(self.db())
            .await?)
    }
}
