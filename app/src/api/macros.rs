//! Macros in GraphQL: canned responses of a team or of everyone, written by supervisors
//! and admins, applied by whoever replies. Applying one renders it for the case (the
//! contact's language, the case's values), sends it through the outbound gate and takes
//! its actions as one change in the case's actor; its use is counted with that change.

use super::types::{Conversation, ConversationStatus, Message, Priority, id_of};
use super::{api, ask_conversation, conversation_key, principal};
use crate::clock::micros_to_datetime;
use crate::conversation::ApplyMacro;
use crate::conversation::macros::MacroToApply;
use crate::domain::macros::{self, Actions, MacroError, Variant};
use crate::domain::{MAX_TEXT_CHARS, Permission};
use crate::error::{ApiError, ErrorCode};
use crate::store::entities::macro_entry as entity;
use crate::store::macros::{CreateMacro, DeleteMacro, MacroContent, UpdateMacro};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

/// The longest internal note a macro may add (as `addNote`).
const MAX_NOTE_CHARS: usize = 4096;

#[derive(InputObject)]
pub struct MacroVariantInput {
    /// ISO 639-1 (`es`) or a locale (`es_MX`).
    #[graphql(validator(chars_max_length = 16))]
    pub language: String,
    pub body: String,
}

#[derive(InputObject, Default)]
pub struct MacroActionsInput {
    pub status: Option<ConversationStatus>,
    pub priority: Option<Priority>,
    pub assign_agent_id: Option<ID>,
    pub note: Option<String>,
    /// Intents to tag the case with (labels of the taxonomy); the routing rules decide
    /// again, as after `setTags`.
    pub add_intents: Option<Vec<String>>,
    /// Risks to tag the case with.
    pub add_risks: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct MacroInput {
    #[graphql(validator(chars_max_length = 200))]
    pub name: String,
    /// The team that uses it; omitted, every team may.
    pub team_id: Option<ID>,
    /// The text sent when no variant answers the contact's language. Variables:
    /// `{{contact.name}}`, `{{contact.phone}}`, `{{agent.name}}`, `{{conversation.id}}`.
    pub body: String,
    #[graphql(default)]
    pub variants: Vec<MacroVariantInput>,
    #[graphql(default)]
    pub actions: MacroActionsInput,
}

/// A canned response.
pub struct Macro(pub entity::Model);

#[derive(SimpleObject)]
pub struct MacroVariant {
    pub language: String,
    pub body: String,
}

/// What a macro does with its reply.
#[derive(SimpleObject)]
pub struct MacroActions {
    pub status: Option<ConversationStatus>,
    pub priority: Option<Priority>,
    pub assign_agent_id: Option<ID>,
    pub note: Option<String>,
    pub add_intents: Vec<String>,
    pub add_risks: Vec<String>,
}

#[Object]
impl Macro {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn team_id(&self) -> Option<ID> {
        self.0.team_id.map(|id| ID(id.to_string()))
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn variants(&self) -> Vec<MacroVariant> {
        variants_of(&self.0)
            .into_iter()
            .map(|v| MacroVariant {
                language: v.language,
                body: v.body,
            })
            .collect()
    }
    async fn actions(&self) -> MacroActions {
        let a = actions_of(&self.0);
        MacroActions {
            status: a.status.map(Into::into),
            priority: a.priority.map(Into::into),
            assign_agent_id: a.assign_agent_id.map(|id| ID(id.to_string())),
            note: a.note,
            add_intents: a.add_intents,
            add_risks: a.add_risks,
        }
    }
    /// How many times it was applied.
    async fn usage_count(&self) -> i64 {
        self.0.usage_count
    }
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at.map(micros_to_datetime)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.updated_at)
    }
}

/// What applying a macro did.
#[derive(SimpleObject)]
pub struct MacroApplication {
    pub conversation: Conversation,
    /// The reply as sent (or held).
    pub message: Message,
    /// The outbound gate held the reply for a person's approval: the actions are taken,
    /// the reply waits in `heldMessages` and is sent only if approved.
    pub held: bool,
    /// What happened, in a sentence.
    pub outcome: String,
}

fn variants_of(m: &entity::Model) -> Vec<Variant> {
    serde_json::from_str(&m.variants).unwrap_or_default()
}

fn actions_of(m: &entity::Model) -> Actions {
    serde_json::from_str(&m.actions).unwrap_or_default()
}

fn macro_error(error: MacroError) -> ApiError {
    ApiError::new(ErrorCode::MacroVariableUnknown, error.to_string())
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, message)
}

fn check_text(what: &str, body: &str) -> Result<(), ApiError> {
    if body.trim().is_empty() {
        return Err(invalid(format!("the {what} is empty")));
    }
    if body.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(format!(
            "the {what} is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    macros::check_body(body).map_err(macro_error)
}

/// Checks a macro as written and turns it into what the store keeps.
async fn content(ctx: &Context<'_>, input: MacroInput) -> Result<MacroContent, ApiError> {
    let name = input.name.trim().to_owned();
    if name.is_empty() {
        return Err(invalid("the macro's name is empty"));
    }
    check_text("macro body", &input.body)?;
    let mut variants: Vec<Variant> = Vec::with_capacity(input.variants.len());
    for v in input.variants {
        let language = v.language.trim().to_owned();
        if language.is_empty() {
            return Err(invalid("a variant's language is empty"));
        }
        if variants.iter().any(|known| known.language == language) {
            return Err(invalid(format!("two variants in {language}")));
        }
        check_text(&format!("{language} variant"), &v.body)?;
        variants.push(Variant {
            language,
            body: v.body,
        });
    }
    let store = &api(ctx).store;
    let team_id = input
        .team_id
        .as_ref()
        .map(|id| id_of(id, "team"))
        .transpose()?;
    if let Some(id) = team_id
        && store.team(id).await.map_err(ApiError::internal)?.is_none()
    {
        return Err(ApiError::new(
            ErrorCode::TeamNotFound,
            format!("team {id} does not exist"),
        ));
    }
    let a = input.actions;
    let assign_agent_id = a
        .assign_agent_id
        .as_ref()
        .map(|id| id_of(id, "agent"))
        .transpose()?;
    if let Some(id) = assign_agent_id
        && store.agent(id).await.map_err(ApiError::internal)?.is_none()
    {
        return Err(ApiError::new(
            ErrorCode::AgentNotFound,
            format!("agent {id} does not exist"),
        ));
    }
    if let Some(note) = &a.note
        && (note.trim().is_empty() || note.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(invalid(format!(
            "a macro's note must have 1 to {MAX_NOTE_CHARS} characters"
        )));
    }
    let engine = api(ctx).routing.engine.current();
    let actions = Actions {
        status: a.status.map(Into::into),
        priority: a.priority.map(Into::into),
        assign_agent_id,
        note: a.note,
        add_intents: super::corrections::labels(
            "addIntents",
            a.add_intents,
            engine.classifier.intent_labels(),
        )?,
        add_risks: super::corrections::labels(
            "addRisks",
            a.add_risks,
            engine.classifier.risk_labels(),
        )?,
    };
    Ok(MacroContent {
        name,
        team_id,
        body: input.body,
        variants: serde_json::to_string(&variants).map_err(ApiError::internal)?,
        actions: serde_json::to_string(&actions).map_err(ApiError::internal)?,
    })
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::MacroNotFound,
        format!("macro {id} does not exist"),
    )
}

#[derive(Default)]
pub struct MacroQuery;

#[Object]
impl MacroQuery {
    /// The macros a team may use (its own and everyone's), by name; without `teamId`,
    /// all of them.
    async fn macros(
        &self,
        ctx: &Context<'_>,
        team_id: Option<ID>,
    ) -> async_graphql::Result<Vec<Macro>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let team_id = team_id.as_ref().map(|id| id_of(id, "team")).transpose()?;
        let found = api(ctx)
            .store
            .macros(team_id)
            .await
            .map_err(ApiError::internal)?;
        Ok(found.into_iter().map(Macro).collect())
    }
}

#[derive(Default)]
pub struct MacroMutation;

#[Object]
impl MacroMutation {
    /// Writes a macro. Variables Parley does not know are refused
    /// (`macro_variable_unknown`).
    async fn create_macro(
        &self,
        ctx: &Context<'_>,
        input: MacroInput,
    ) -> async_graphql::Result<Macro> {
        let who = principal(ctx)?;
        who.require(Permission::ManageTemplates)?;
        let content = content(ctx, input).await?;
        let created = api(ctx)
            .store
            .write(CreateMacro {
                content,
                by: who.actor().label(),
                now: api(ctx).clock.now(),
            })
            .await
            .map_err(ApiError::internal)?;
        Ok(Macro(created))
    }

    /// Replaces a macro's content; its usage count stays.
    async fn update_macro(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: MacroInput,
    ) -> async_graphql::Result<Macro> {
        let who = principal(ctx)?;
        who.require(Permission::ManageTemplates)?;
        let id = id_of(&id, "macro")?;
        let content = content(ctx, input).await?;
        let updated = api(ctx)
            .store
            .write(UpdateMacro {
                id,
                content,
                by: who.actor().label(),
                now: api(ctx).clock.now(),
            })
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| not_found(id))?;
        Ok(Macro(updated))
    }

    async fn delete_macro(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let who = principal(ctx)?;
        who.require(Permission::ManageTemplates)?;
        let id = id_of(&id, "macro")?;
        let deleted = api(ctx)
            .store
            .write(DeleteMacro {
                id,
                by: who.actor().label(),
                now: api(ctx).clock.now(),
            })
            .await
            .map_err(ApiError::internal)?;
        if !deleted {
            return Err(not_found(id).into());
        }
        Ok(true)
    }

    /// Applies a macro to a conversation: its body in the contact's language (else
    /// `[templates] fallback_language`, else its own body) with the case's values, sent
    /// through the outbound gate, and its actions, all as one change: if a value is
    /// missing (`macro_value_missing`) or an action is refused, nothing is sent or changed.
    async fn apply_macro(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        macro_id: ID,
    ) -> async_graphql::Result<MacroApplication> {
        let who = principal(ctx)?;
        who.require(Permission::ReplyToCustomers)?;
        let id = id_of(&macro_id, "macro")?;
        let store = &api(ctx).store;
        let found = store
            .macro_entry(id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| not_found(id))?;
        let actions = actions_of(&found);
        if actions.status.is_some() || actions.priority.is_some() || actions.tags() {
            who.require(Permission::ChangeStatus)?;
        }
        if actions.tags() {
            // The taxonomy may have changed since the macro was written.
            let engine = api(ctx).routing.engine.current();
            super::corrections::labels(
                "addIntents",
                Some(actions.add_intents.clone()),
                engine.classifier.intent_labels(),
            )?;
            super::corrections::labels(
                "addRisks",
                Some(actions.add_risks.clone()),
                engine.classifier.risk_labels(),
            )?;
        }
        if actions.assign_agent_id.is_some() {
            who.require(Permission::AssignConversations)?;
        }
        if actions.note.is_some() {
            who.require(Permission::WriteNotes)?;
        }
        let agent = match who.agent_id {
            Some(agent) => store.agent(agent).await.map_err(ApiError::internal)?,
            None => None,
        };
        let (_, case) = conversation_key(ctx, &conversation_id).await?;
        let contact_name = store
            .contact(case.contact_id)
            .await
            .map_err(ApiError::internal)?
            .and_then(|c| c.name);
        if let Some(team) = found.team_id {
            let agents_team = agent.as_ref().and_then(|a| a.team_id);
            if case.team_id != Some(team) && agents_team != Some(team) {
                return Err(invalid(format!(
                    "macro {id} belongs to team {team}; neither this conversation nor you are of it"
                ))
                .into());
            }
        }
        let chosen = MacroToApply {
            id: found.id,
            name: found.name.clone(),
            body: found.body.clone(),
            variants: variants_of(&found),
            actions,
            fallback_language: api(ctx).settings.templates.fallback_language.clone(),
        };
        let applied = ask_conversation(ctx, &conversation_id, |conversation_id| ApplyMacro {
            conversation_id,
            chosen,
            by: who.actor(),
            agent_id: who.agent_id,
            agent_name: agent.map(|a| a.name),
            contact_name,
            reply_authority: who.reply_authority(),
            authority: who.authority(),
            origin: who.origin(),
        })
        .await?;
        let message = applied
            .message
            .ok_or_else(|| ApiError::internal("macro applied without its message"))?;
        let held = message.delivery_status.as_deref() == Some("held");
        let outcome = if held {
            format!(
                "macro {:?} applied; the reply is held for approval and is sent only if approved",
                found.name
            )
        } else {
            format!(
                "macro {:?} applied; the reply is queued to send",
                found.name
            )
        };
        Ok(MacroApplication {
            conversation: Conversation(applied.conversation),
            message: Message(message),
            held,
            outcome,
        })
    }
}
