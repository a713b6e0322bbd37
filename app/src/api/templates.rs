//! The template registry in GraphQL: versions and language variants, the internal review
//! workflow restricted by role, Meta's status as its webhooks report it, and sending an
//! approved template with checked variables in the contact's language.

use super::types::{Message, id_of};
use super::{api, ask_conversation, conversation_key, principal};
use crate::clock::micros_to_datetime;
use crate::conversation::SendTemplate;
use crate::conversation::lifecycle::TemplateSend;
use crate::domain::Permission;
use crate::domain::template::{self, Definition, TemplateError, Variable};
use crate::error::{ApiError, ErrorCode};
use crate::store::entities::template as entity;
use crate::store::templates::{CreateTemplate, RegistryError, TemplateAction, TransitionTemplate};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
}

impl TemplateCategory {
    fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "marketing",
            Self::Utility => "utility",
            Self::Authentication => "authentication",
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TemplateVariableType {
    Text,
    Number,
    /// An amount and an ISO 4217 code: `12.50 USD`.
    Currency,
    /// `2026-12-01`.
    Date,
}

impl TemplateVariableType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Currency => "currency",
            Self::Date => "date",
        }
    }
}

#[derive(InputObject)]
pub struct TemplateVariableInput {
    pub name: String,
    #[graphql(name = "type")]
    pub kind: TemplateVariableType,
}

/// A new template, or a new version of an existing name and language.
#[derive(InputObject)]
pub struct TemplateInput {
    /// Lower-case letters, digits and underscores, as Meta requires.
    pub name: String,
    /// `en`, `es`, `pt_BR`...
    pub language: String,
    pub category: TemplateCategory,
    /// With `{{1}}`..`{{n}}` for the variables, in order.
    pub body: String,
    #[graphql(default)]
    pub variables: Vec<TemplateVariableInput>,
}

#[derive(InputObject)]
pub struct TemplateValueInput {
    pub name: String,
    pub value: String,
}

#[derive(SimpleObject)]
pub struct TemplateVariable {
    pub name: String,
    #[graphql(name = "type")]
    pub kind: String,
}

/// One version of one language variant of a template.
pub struct Template(pub entity::Model);

#[Object]
impl Template {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn language(&self) -> &str {
        &self.0.language
    }
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// marketing, utility or authentication.
    async fn category(&self) -> &str {
        &self.0.category
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn variables(&self) -> Vec<TemplateVariable> {
        serde_json::from_str::<Vec<Variable>>(&self.0.variables)
            .unwrap_or_default()
            .into_iter()
            .map(|v| TemplateVariable {
                name: v.name,
                kind: v.kind,
            })
            .collect()
    }
    /// The internal workflow: draft, submitted, approved, rejected, paused.
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// The reviewer's note on the last step.
    async fn review_note(&self) -> Option<&str> {
        self.0.review_note.as_deref()
    }
    /// What Meta says (from its template status webhooks): approved, rejected, paused...
    async fn meta_status(&self) -> Option<&str> {
        self.0.meta_status.as_deref()
    }
    async fn meta_template_id(&self) -> Option<&str> {
        self.0.meta_template_id.as_deref()
    }
    async fn meta_reason(&self) -> Option<&str> {
        self.0.meta_reason.as_deref()
    }
    /// Approved inside and by Meta: this version may be sent.
    async fn sendable(&self) -> bool {
        self.0.status == "approved" && self.0.meta_status.as_deref() == Some("approved")
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.updated_at)
    }
}

fn template_error(error: TemplateError) -> ApiError {
    let code = match error {
        TemplateError::Invalid(_) => ErrorCode::InvalidInput,
        _ => ErrorCode::TemplateVariablesInvalid,
    };
    ApiError::new(code, error.to_string())
}

fn registry_error(error: RegistryError) -> ApiError {
    let code = match error {
        RegistryError::NotFound(_) => ErrorCode::TemplateNotFound,
        RegistryError::InvalidTransition { .. } => ErrorCode::InvalidTemplateTransition,
    };
    ApiError::new(code, error.to_string())
}

#[derive(Default)]
pub struct TemplateQuery;

#[Object]
impl TemplateQuery {
    /// Every version of every template (or of one name), by name, language, newest
    /// version first.
    async fn templates(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
    ) -> async_graphql::Result<Vec<Template>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let rows = api(ctx)
            .store
            .templates(name.as_deref())
            .await
            .map_err(ApiError::internal)?;
        Ok(rows.into_iter().map(Template).collect())
    }
}

#[derive(Default)]
pub struct TemplateMutation;

#[Object]
impl TemplateMutation {
    /// A draft: the first version of a name and language, or the next one.
    async fn create_template(
        &self,
        ctx: &Context<'_>,
        input: TemplateInput,
    ) -> async_graphql::Result<Template> {
        let who = principal(ctx)?;
        who.require(Permission::ManageTemplates)?;
        let definition = Definition {
            name: input.name.trim().to_owned(),
            language: input.language.trim().to_owned(),
            category: input.category.as_str().to_owned(),
            body: input.body,
            variables: input
                .variables
                .into_iter()
                .map(|v| Variable {
                    name: v.name.trim().to_owned(),
                    kind: v.kind.as_str().to_owned(),
                })
                .collect(),
        };
        definition.validate().map_err(template_error)?;
        let created = api(ctx)
            .store
            .write(CreateTemplate {
                definition,
                by: who.actor().label(),
                now: api(ctx).clock.now(),
            })
            .await
            .map_err(ApiError::internal)?;
        Ok(Template(created))
    }

    /// Draft (or rejected) to submitted, for review.
    async fn submit_template(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Template> {
        transition(
            ctx,
            &id,
            TemplateAction::Submit,
            None,
            Permission::ManageTemplates,
        )
        .await
    }

    /// Submitted (or paused) to approved; sendable once Meta approves it too (admins).
    async fn approve_template(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(validator(chars_max_length = 1000))] note: Option<String>,
    ) -> async_graphql::Result<Template> {
        transition(
            ctx,
            &id,
            TemplateAction::Approve,
            note,
            Permission::ReviewTemplates,
        )
        .await
    }

    /// Submitted to rejected, with the reason (admins).
    async fn reject_template(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(validator(chars_max_length = 1000))] reason: String,
    ) -> async_graphql::Result<Template> {
        if reason.trim().is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidInput, "say why it is rejected").into());
        }
        transition(
            ctx,
            &id,
            TemplateAction::Reject,
            Some(reason),
            Permission::ReviewTemplates,
        )
        .await
    }

    /// Approved to paused: nobody may send it until it is approved again (admins).
    async fn pause_template(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(validator(chars_max_length = 1000))] note: Option<String>,
    ) -> async_graphql::Result<Template> {
        transition(
            ctx,
            &id,
            TemplateAction::Pause,
            note,
            Permission::ReviewTemplates,
        )
        .await
    }

    /// Sends an approved template on a conversation, outside the 24-hour window too. The
    /// variant in `language`, else the contact's language, else the configured fallback;
    /// the values are checked against its variables before anything is called
    /// (`template_variables_invalid` names what is missing, unknown or mistyped). The
    /// gate still checks consent (marketing needs an opt-in) and the approval boundaries.
    async fn send_template(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        name: String,
        #[graphql(default)] variables: Vec<TemplateValueInput>,
        language: Option<String>,
    ) -> async_graphql::Result<Message> {
        let who = principal(ctx)?;
        who.require(Permission::ReplyToCustomers)?;
        let (_, case) = conversation_key(ctx, &conversation_id).await?;
        let variants = api(ctx)
            .store
            .sendable_templates(name.trim())
            .await
            .map_err(ApiError::internal)?;
        let preference = template::language_preference(
            language.as_deref(),
            case.language.as_deref(),
            &api(ctx).settings.templates.fallback_language,
        );
        let chosen = preference
            .iter()
            .find_map(|wanted| {
                variants
                    .iter()
                    .find(|v| template::language_matches(&v.language, wanted))
            })
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::TemplateNotApproved,
                    format!(
                        "no approved variant of template {name:?} in {} (approved internally and by Meta: {})",
                        preference.join(", "),
                        if variants.is_empty() {
                            "none".to_owned()
                        } else {
                            variants.iter().map(|v| v.language.as_str()).collect::<Vec<_>>().join(", ")
                        }
                    ),
                )
            })?;
        let declared: Vec<Variable> =
            serde_json::from_str(&chosen.variables).map_err(ApiError::internal)?;
        let values: Vec<(String, String)> =
            variables.into_iter().map(|v| (v.name, v.value)).collect();
        let ordered = template::check_values(&declared, &values).map_err(template_error)?;
        let send = TemplateSend {
            name: chosen.name.clone(),
            language: chosen.language.clone(),
            version: chosen.version,
            category: chosen.category.clone(),
            text: template::render(&chosen.body, &ordered),
            payload: template::payload(&chosen.name, &chosen.language, &ordered),
        };
        let applied = ask_conversation(ctx, &conversation_id, |id| SendTemplate {
            conversation_id: id,
            template: send,
            by: who.actor(),
            agent_id: who.agent_id,
            authority: who.reply_authority(),
            origin: who.origin(),
        })
        .await?;
        let message = applied
            .message
            .ok_or_else(|| ApiError::internal("template stored without its message"))?;
        Ok(Message(message))
    }
}

async fn transition(
    ctx: &Context<'_>,
    id: &ID,
    action: TemplateAction,
    note: Option<String>,
    permission: Permission,
) -> async_graphql::Result<Template> {
    let who = principal(ctx)?;
    who.require(permission)?;
    let updated = api(ctx)
        .store
        .write(TransitionTemplate {
            id: id_of(id, "template")?,
            action,
            note: note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
            by: who.actor().label(),
            now: api(ctx).clock.now(),
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(registry_error)?;
    Ok(Template(updated))
}
