//! Teams and agents (API tokens are in [`super::tokens`]).

use super::entities::{agent, team};
use super::{Store, StoreError, WriteOp};
use crate::domain::{Micros, Role};
use futures::future::BoxFuture;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("a team named {0:?} already exists")]
    TeamNameTaken(String),
    #[error("an agent with email {0:?} already exists")]
    AgentEmailTaken(String),
    #[error("team {0} does not exist")]
    TeamNotFound(i64),
    #[error("agent {0} does not exist")]
    AgentNotFound(i64),
}

pub struct CreateTeam {
    pub name: String,
    pub now: Micros,
}

impl WriteOp for CreateTeam {
    type Output = Result<team::Model, DirectoryError>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let taken = team::Entity::find()
                .filter(team::Column::Name.eq(&self.name))
                .one(txn)
                .await?;
            if taken.is_some() {
                return Ok(Err(DirectoryError::TeamNameTaken(self.name.clone())));
            }
            let team = team::ActiveModel {
                name: Set(self.name.clone()),
                created_at: Set(self.now),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            Ok(Ok(team))
        })
    }
}

pub struct CreateAgent {
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub team_id: Option<i64>,
    pub profile: AgentProfile,
    pub now: Micros,
}

impl WriteOp for CreateAgent {
    type Output = Result<agent::Model, DirectoryError>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            if let Some(team_id) = self.team_id
                && team::Entity::find_by_id(team_id).one(txn).await?.is_none()
            {
                return Ok(Err(DirectoryError::TeamNotFound(team_id)));
            }
            if let Some(email) = &self.email
                && agent::Entity::find()
                    .filter(agent::Column::Email.eq(email))
                    .one(txn)
                    .await?
                    .is_some()
            {
                return Ok(Err(DirectoryError::AgentEmailTaken(email.clone())));
            }
            let agent = agent::ActiveModel {
                name: Set(self.name.clone()),
                email: Set(self.email.clone()),
                role: Set(self.role.as_str().into()),
                team_id: Set(self.team_id),
                created_at: Set(self.now),
                skills: Set(json_list(
                    self.profile.skills.as_deref().unwrap_or_default(),
                )),
                languages: Set(json_list(
                    self.profile.languages.as_deref().unwrap_or_default(),
                )),
                capacity: Set(self.profile.capacity.unwrap_or(DEFAULT_CAPACITY)),
                presence: Set(self
                    .profile
                    .presence
                    .unwrap_or(AgentPresence::Offline)
                    .as_str()
                    .into()),
                senior: Set(self.profile.senior.unwrap_or(false)),
                last_assigned_at: Set(0),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            Ok(Ok(agent))
        })
    }
}

/// Conversations an agent works at once unless told otherwise.
pub const DEFAULT_CAPACITY: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentPresence {
    Online,
    Away,
    Offline,
}

impl AgentPresence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }
}

/// An agent's routing profile; `None` leaves a field as it is (or its default).
#[derive(Debug, Clone, Default)]
pub struct AgentProfile {
    pub skills: Option<Vec<String>>,
    pub languages: Option<Vec<String>>,
    pub capacity: Option<i32>,
    pub senior: Option<bool>,
    pub presence: Option<AgentPresence>,
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Changes an agent's team or routing profile.
pub struct UpdateAgent {
    pub id: i64,
    /// `Some(None)` takes the agent out of any team.
    pub team_id: Option<Option<i64>>,
    pub profile: AgentProfile,
    pub now: Micros,
}

impl WriteOp for UpdateAgent {
    type Output = Result<agent::Model, DirectoryError>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let Some(agent) = agent::Entity::find_by_id(self.id).one(txn).await? else {
                return Ok(Err(DirectoryError::AgentNotFound(self.id)));
            };
            if let Some(Some(team_id)) = self.team_id
                && team::Entity::find_by_id(team_id).one(txn).await?.is_none()
            {
                return Ok(Err(DirectoryError::TeamNotFound(team_id)));
            }
            let mut active: agent::ActiveModel = agent.into();
            let p = &self.profile;
            if let Some(team_id) = self.team_id {
                active.team_id = Set(team_id);
            }
            if let Some(skills) = &p.skills {
                active.skills = Set(json_list(skills));
            }
            if let Some(languages) = &p.languages {
                active.languages = Set(json_list(languages));
            }
            if let Some(capacity) = p.capacity {
                active.capacity = Set(capacity);
            }
            if let Some(senior) = p.senior {
                active.senior = Set(senior);
            }
            if let Some(presence) = p.presence {
                active.presence = Set(presence.as_str().into());
            }
            Ok(Ok(active.update(txn).await?))
        })
    }
}

struct TouchAgentAssigned {
    id: i64,
    at: Micros,
}

impl WriteOp for TouchAgentAssigned {
    type Output = ();
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            agent::Entity::update_many()
                .col_expr(
                    agent::Column::LastAssignedAt,
                    sea_orm::sea_query::Expr::value(self.at),
                )
                .filter(agent::Column::Id.eq(self.id))
                .exec(txn)
                .await?;
            Ok(())
        })
    }
}

/// Makes sure a team row exists for each name; answers name to id for all of them.
pub struct EnsureTeams {
    pub names: Vec<String>,
    pub now: Micros,
}

impl WriteOp for EnsureTeams {
    type Output = Vec<(String, i64)>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(self.names.len());
            for name in &self.names {
                let existing = team::Entity::find()
                    .filter(team::Column::Name.eq(name))
                    .one(txn)
                    .await?;
                let team = match existing {
                    Some(team) => team,
                    None => {
                        team::ActiveModel {
                            name: Set(name.clone()),
                            created_at: Set(self.now),
                            ..Default::default()
                        }
                        .insert(txn)
                        .await?
                    }
                };
                out.push((team.name, team.id));
            }
            Ok(out)
        })
    }
}

impl Store {
    pub async fn agent(&self, id: i64) -> Result<Option<agent::Model>, StoreError> {
        Ok(agent::Entity::find_by_id(id).one(self.db()).await?)
    }

    pub async fn team(&self, id: i64) -> Result<Option<team::Model>, StoreError> {
        Ok(team::Entity::find_by_id(id).one(self.db()).await?)
    }

    pub async fn teams(&self) -> Result<Vec<team::Model>, StoreError> {
        Ok(team::Entity::find()
            .order_by_asc(team::Column::Id)
            .all(self.db())
            .await?)
    }

    /// Records when the router last gave the agent a case (round robin survives restarts).
    /// Through the single writer, like every write.
    pub async fn touch_agent_assigned(&self, id: i64, at: Micros) -> Result<(), StoreError> {
        self.write(TouchAgentAssigned { id, at }).await
    }

    pub async fn agents(&self) -> Result<Vec<agent::Model>, StoreError> {
        Ok(agent::Entity::find()
            .order_by_asc(agent::Column::Id)
            .all(self.db())
            .await?)
    }
}
