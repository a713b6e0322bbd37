//! GraphQL for contacts: looking one up, blocking and unblocking, VIP, consent recorded
//! by hand, and erasure.

use super::types::Contact;
use super::{api, principal};
use crate::domain::Permission;
use crate::error::{ApiError, ErrorCode};
use crate::store::consent::{ConsentContact, RecordConsent};
use crate::store::noise::{ContactFlag, FlagContact};
use async_graphql::{Context, ID, Object, SimpleObject};

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
