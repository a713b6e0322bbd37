//! GraphQL for contacts: looking one up, blocking and unblocking, VIP, consent recorded
//! by hand, erasure, a contact's earlier cases and custom fields.

use super::types::Contact;
use super::{api, principal};
use crate::domain::Permission;
use crate::domain::fields::{self, FieldKind};
use crate::error::{ApiError, ErrorCode};
use crate::store::consent::{ConsentContact, RecordConsent};
use crate::store::contact_fields::{DefineContactField, DefineError, SetContactField};
use crate::store::entities::{contact_field, contact_field_value};
use crate::store::noise::{ContactFlag, FlagContact};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

#[derive(Default)]
pub struct ContactQuery;

#[Object]
impl ContactQuery {
    /// A customer by WhatsApp id, whether or not they have a case (someone who only wrote
    /// STOP has none); null when Parley has never seen them.
    async fn contact(
        &self,
        ctx: &Context<'_>,
        wa_id: String,
    ) -> async_graphql::Result<Option<Contact>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        check_wa_id(&wa_id)?;
        let contact = api(ctx)
            .store
            .contact_by_wa_id(&wa_id)
            .await
            .map_err(ApiError::internal)?;
        Ok(contact.map(Contact))
    }
}

#[derive(Default)]
pub struct ContactMutation;

#[Object]
impl ContactMutation {
    /// Blocks a contact: their messages are recorded as noise and never processed.
    async fn block_contact(
        &self,
        ctx: &Context<'_>,
        wa_id: String,
        #[graphql(validator(chars_max_length = 1000))] reason: Option<String>,
    ) -> async_graphql::Result<Contact> {
        set_blocked(ctx, wa_id, true, reason).await
    }

    async fn unblock_contact(
        &self,
        ctx: &Context<'_>,
        wa_id: String,
    ) -> async_graphql::Result<Contact> {
        set_blocked(ctx, wa_id, false, None).await
    }

    /// Records an opt-in or opt-out of a customer for one purpose (service, marketing,
    /// surveys), with a note on where it came from.
    async fn record_consent(
        &self,
        ctx: &Context<'_>,
        wa_id: String,
        purpose: super::types::ConsentPurpose,
        granted: bool,
        #[graphql(validator(chars_max_length = 1000))] note: Option<String>,
    ) -> async_graphql::Result<Contact> {
        record_consent(ctx, wa_id, purpose, granted, note).await
    }

    /// Erases a customer's personal data (admins only; it cannot be undone): message
    /// texts and media references, notes, the CRM profile, raw webhook payloads holding
    /// the number, and the number itself. Case statuses, timings and tags stay for the
    /// metrics; pending replies are cancelled; the audit log records the erasure.
    async fn erase_contact(
        &self,
        ctx: &Context<'_>,
        wa_id: String,
        #[graphql(validator(chars_max_length = 1000))] reason: String,
    ) -> async_graphql::Result<ErasureReport> {
        let (actor, a) = contact_manager(ctx, &wa_id, Permission::EraseData)?;
        let reason = reason.trim().to_owned();
        if reason.is_empty() {
            return Err(
                ApiError::new(ErrorCode::InvalidInput, "say why the data is erased").into(),
            );
        }
        let erasure = a
            .store
            .erase_contact(&wa_id, reason, actor, a.clock.now())
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
        forget_contact(a, &wa_id);
        Ok(ErasureReport {
            contact_id: ID(erasure.contact_id.to_string()),
            conversations: erasure.conversations,
            messages: erasure.messages,
            notes: erasure.notes,
            payloads: erasure.payloads,
            cancelled_sends: erasure.cancelled_sends,
            media_files: erasure.media_files,
        })
    }

    /// Marks a contact as a VIP (or not): VIP routing and the `vip_customer` context.
    async fn set_contact_vip(
        &self,
        ctx: &Context<'_>,
        wa_id: String,
        vip: bool,
    ) -> async_graphql::Result<Contact> {
        let (actor, a) = contact_manager(ctx, &wa_id, Permission::ManageContacts)?;
        let contact = a
            .store
            .write(FlagContact {
                wa_id: wa_id.clone(),
                flag: ContactFlag::Vip(vip),
                actor,
                now: a.clock.now(),
            })
            .await
            .map_err(ApiError::internal)?;
        forget_contact(a, &wa_id);
        Ok(Contact(contact))
    }
}

/// Records a customer's consent by hand (a form, a phone call, an import): an opt-in or
/// opt-out for one purpose, with a note. Kept in the consent ledger and the audit log.
pub(crate) async fn record_consent(
    ctx: &Context<'_>,
    wa_id: String,
    purpose: super::types::ConsentPurpose,
    granted: bool,
    note: Option<String>,
) -> async_graphql::Result<Contact> {
    let (actor, a) = contact_manager(ctx, &wa_id, Permission::ManageContacts)?;
    let recorded = a
        .store
        .write(RecordConsent {
            contact: ConsentContact::WaId(wa_id.clone()),
            purposes: vec![purpose.into()],
            granted,
            source: "agent",
            detail: note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
            message_ref: None,
            actor,
            at: a.clock.now(),
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
    // Live conversations of the contact read their consent again before the next send.
    forget_contact(a, &wa_id);
    let contact_id = recorded
        .first()
        .map(|e| e.contact_id)
        .ok_or_else(|| ApiError::internal("no consent recorded"))?;
    let contact = a
        .store
        .contact(contact_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal("the contact vanished"))?;
    Ok(Contact(contact))
}

/// What an erasure touched.
#[derive(SimpleObject)]
pub struct ErasureReport {
    pub contact_id: ID,
    pub conversations: u64,
    /// Messages whose text and media references were removed.
    pub messages: u64,
    pub notes: u64,
    /// Raw webhook payloads and dead letters deleted.
    pub payloads: u64,
    /// Replies still queued, cancelled.
    pub cancelled_sends: u64,
    /// Media files either side sent, erased (their bytes are deleted from the blob store).
    pub media_files: u64,
}

/// The caller's audit label and the API context, once the caller may act on contacts
/// with `permission` and `wa_id` is a WhatsApp id.
fn contact_manager<'a>(
    ctx: &Context<'a>,
    wa_id: &str,
    permission: Permission,
) -> Result<(String, &'a super::ApiContext), ApiError> {
    let who = principal(ctx)?;
    who.require(permission)?;
    check_wa_id(wa_id)?;
    Ok((who.actor().label(), api(ctx)))
}

fn check_wa_id(wa_id: &str) -> Result<(), ApiError> {
    if wa_id.is_empty() || wa_id.len() > 32 || !wa_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "waId is the customer's WhatsApp id: digits only, with country code",
        ));
    }
    Ok(())
}

async fn set_blocked(
    ctx: &Context<'_>,
    wa_id: String,
    blocked: bool,
    reason: Option<String>,
) -> async_graphql::Result<Contact> {
    let (actor, a) = contact_manager(ctx, &wa_id, Permission::ManageContacts)?;
    let contact = a
        .store
        .write(FlagContact {
            wa_id: wa_id.clone(),
            flag: if blocked {
                ContactFlag::Blocked { reason }
            } else {
                ContactFlag::Unblocked
            },
            actor,
            now: a.clock.now(),
        })
        .await
        .map_err(ApiError::internal)?;
    a.routing.noise.set_blocked(&wa_id, blocked);
    a.relay
        .invalidate(crate::cluster::bus::Invalidation::ContactChanged {
            wa_id: wa_id.clone(),
            blocked: Some(blocked),
        });
    Ok(Contact(contact))
}

/// Makes this node's live conversations of a contact read its state again, and tells the
/// other nodes of a cluster to do the same.
fn forget_contact(a: &super::ApiContext, wa_id: &str) {
    a.registry.forget_contact_state(wa_id);
    a.relay
        .invalidate(crate::cluster::bus::Invalidation::ContactChanged {
            wa_id: wa_id.to_owned(),
            blocked: None,
        });
}

/// A contact's cases, newest first, after the case named by `after`.
pub(super) async fn cases_of(
    ctx: &Context<'_>,
    contact: &crate::store::entities::contact::Model,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<super::types::ConversationConnection> {
    use super::types::{Conversation, ConversationConnection, ConversationEdge, PageInfo};
    principal(ctx)?.require(Permission::ReadConversations)?;
    let limit = super::types::page_size(ctx, first)?;
    let before = after
        .as_deref()
        .map(|c| super::cursor::decode_parts::<1>("k", c).map(|[id]| id))
        .transpose()?;
    let mut rows = api(ctx)
        .store
        .contact_cases_page(contact.id, before, limit + 1)
        .await
        .map_err(ApiError::internal)?;
    let has_next_page = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let edges: Vec<ConversationEdge> = rows
        .into_iter()
        .map(|c| ConversationEdge {
            cursor: super::cursor::encode_parts("k", &[c.id]),
            node: Conversation(c),
        })
        .collect();
    let end_cursor = edges.last().map(|e| e.cursor.clone());
    Ok(ConversationConnection {
        edges,
        page_info: PageInfo {
            has_next_page,
            end_cursor,
        },
    })
}

pub(super) async fn fields_of(
    ctx: &Context<'_>,
    contact: &crate::store::entities::contact::Model,
) -> async_graphql::Result<Vec<ContactFieldValue>> {
    let values = api(ctx)
        .store
        .contact_field_values(contact.id)
        .await
        .map_err(ApiError::internal)?;
    Ok(values
        .into_iter()
        .map(|(field, value)| ContactFieldValue {
            field: ContactField(field),
            value,
        })
        .collect())
}

/// The type of a custom field.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ContactFieldType {
    Text,
    Number,
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One of the field's options.
    Enum,
}

impl From<ContactFieldType> for FieldKind {
    fn from(t: ContactFieldType) -> Self {
        match t {
            ContactFieldType::Text => FieldKind::Text,
            ContactFieldType::Number => FieldKind::Number,
            ContactFieldType::Boolean => FieldKind::Boolean,
            ContactFieldType::Date => FieldKind::Date,
            ContactFieldType::Enum => FieldKind::Enum,
        }
    }
}

impl From<FieldKind> for ContactFieldType {
    fn from(k: FieldKind) -> Self {
        match k {
            FieldKind::Text => Self::Text,
            FieldKind::Number => Self::Number,
            FieldKind::Boolean => Self::Boolean,
            FieldKind::Date => Self::Date,
            FieldKind::Enum => Self::Enum,
        }
    }
}

/// A custom field on contacts, as an admin defined it.
pub struct ContactField(pub contact_field::Model);

#[Object]
impl ContactField {
    async fn key(&self) -> &str {
        &self.0.key
    }
    async fn label(&self) -> &str {
        &self.0.label
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> ContactFieldType {
        FieldKind::parse(&self.0.kind)
            .unwrap_or(FieldKind::Text)
            .into()
    }
    /// An enum field's options; empty for other types.
    async fn options(&self) -> Vec<String> {
        self.0.options()
    }
}

/// A contact's value of a custom field. `value` is its canonical text; the typed
/// accessor of the field's type answers too (the others are null).
pub struct ContactFieldValue {
    field: ContactField,
    value: contact_field_value::Model,
}

#[Object]
impl ContactFieldValue {
    async fn field(&self) -> &ContactField {
        &self.field
    }
    async fn key(&self) -> &str {
        &self.field.0.key
    }
    async fn value(&self) -> &str {
        &self.value.value
    }
    async fn number(&self) -> Option<f64> {
        (self.field.0.kind == FieldKind::Number.as_str())
            .then(|| self.value.value.parse().ok())
            .flatten()
    }
    async fn boolean(&self) -> Option<bool> {
        (self.field.0.kind == FieldKind::Boolean.as_str()).then(|| self.value.value == "true")
    }
    async fn date(&self) -> Option<chrono::NaiveDate> {
        (self.field.0.kind == FieldKind::Date.as_str())
            .then(|| chrono::NaiveDate::parse_from_str(&self.value.value, "%Y-%m-%d").ok())
            .flatten()
    }
    async fn set_by(&self) -> &str {
        &self.value.set_by
    }
    async fn updated_at(&self) -> chrono::DateTime<chrono::Utc> {
        crate::clock::micros_to_datetime(self.value.updated_at)
    }
}

#[derive(InputObject)]
pub struct DefineContactFieldInput {
    /// Lowercase letters, digits and underscores, starting with a letter: `tier`.
    pub key: String,
    #[graphql(validator(chars_max_length = 200))]
    pub label: String,
    #[graphql(name = "type")]
    pub kind: ContactFieldType,
    /// An enum's options (required for an enum, refused for other types).
    pub options: Option<Vec<String>>,
}

#[derive(Default)]
pub struct ContactFieldQuery;

#[Object]
impl ContactFieldQuery {
    /// The custom fields defined on contacts.
    async fn contact_fields(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ContactField>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let fields = api(ctx)
            .store
            .contact_fields()
            .await
            .map_err(ApiError::internal)?;
        Ok(fields.into_iter().map(ContactField).collect())
    }
}

#[derive(Default)]
pub struct ContactFieldMutation;

#[Object]
impl ContactFieldMutation {
    /// Defines a custom field on contacts (admins only), or changes the label or options
    /// of one; a field's type never changes once defined.
    async fn define_contact_field(
        &self,
        ctx: &Context<'_>,
        input: DefineContactFieldInput,
    ) -> async_graphql::Result<ContactField> {
        let who = principal(ctx)?;
        who.require(Permission::DefineContactFields)?;
        let invalid = |e: crate::domain::fields::FieldError| {
            ApiError::new(ErrorCode::InvalidInput, e.to_string())
        };
        let key = input.key.trim().to_owned();
        fields::check_key(&key).map_err(invalid)?;
        let kind: FieldKind = input.kind.into();
        let options =
            fields::check_options(kind, &input.options.unwrap_or_default()).map_err(invalid)?;
        let label = input.label.trim().to_owned();
        if label.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidInput, "a field needs a label").into());
        }
        let a = api(ctx);
        let defined = a
            .store
            .write(DefineContactField {
                key,
                label,
                kind,
                options,
                actor: who.actor().label(),
                now: a.clock.now(),
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(|DefineError::KindChanged { existing }| {
                ApiError::new(
                    ErrorCode::NameTaken,
                    format!("the key is a {existing} field already; a field keeps its type"),
                )
            })?;
        Ok(ContactField(defined))
    }

    /// Sets a contact's value of a custom field, checked against the field's type
    /// (`contact_field_value_invalid` when it does not fit); null clears it.
    async fn set_contact_field(
        &self,
        ctx: &Context<'_>,
        wa_id: String,
        key: String,
        #[graphql(validator(chars_max_length = 1000))] value: Option<String>,
    ) -> async_graphql::Result<Contact> {
        let (actor, a) = contact_manager(ctx, &wa_id, Permission::EditContactFields)?;
        let field = a
            .store
            .contact_field(key.trim())
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ContactFieldNotFound,
                    format!("no custom field has the key {:?}", key.trim()),
                )
            })?;
        let contact = a
            .store
            .contact_by_wa_id(&wa_id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ContactNotFound,
                    "Parley has never seen this contact",
                )
            })?;
        let kind = FieldKind::parse(&field.kind)
            .ok_or_else(|| ApiError::internal("a field of an unknown type"))?;
        let value = value
            .map(|v| fields::canonical_value(&field.key, kind, &field.options(), &v))
            .transpose()
            .map_err(|e| ApiError::new(ErrorCode::ContactFieldValueInvalid, e.to_string()))?;
        a.store
            .write(SetContactField {
                contact_id: contact.id,
                field_id: field.id,
                value,
                actor,
                now: a.clock.now(),
            })
            .await
            .map_err(ApiError::internal)?;
        let contact = a
            .store
            .contact(contact.id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::internal("the contact vanished"))?;
        Ok(Contact(contact))
    }
}
