//! Domain values: the vocabulary every other module speaks.
//!
//! Plain types with no I/O. Each value that arrives from outside has a `parse` that
//! rejects bad input once, at the edge; past that point the rest of Parley trusts it.

pub mod consent;
pub mod fields;
pub mod inbound;
pub mod macros;
pub mod media;
pub mod order;
pub mod outbound;
pub mod presence;
pub mod template;
pub mod text;
pub mod texts;

use serde::{Deserialize, Serialize};
use std::fmt;

/// Microseconds since the Unix epoch, UTC. Every stored instant uses this unit: it orders
/// the same way on SQLite and PostgreSQL and compares as an integer.
pub type Micros = i64;

/// Where a conversation stands in the ticket lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// A new case nobody owns yet.
    Created,
    /// An agent or team owns it.
    Assigned,
    /// An agent has answered and is working on it.
    InProgress,
    /// Waiting on the customer.
    Pending,
    /// Answered; a customer message within the reopen window reopens it.
    Resolved,
    /// Over: a new customer message starts a new conversation.
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 6] = [
        Self::Created,
        Self::Assigned,
        Self::InProgress,
        Self::Pending,
        Self::Resolved,
        Self::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Assigned => "assigned",
            Self::InProgress => "in_progress",
            Self::Pending => "pending",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether an agent or supervisor may move a case from `self` to `to` by hand.
    /// Customer messages move cases through their own paths (reopen, resume).
    pub fn can_move_to(self, to: TicketStatus) -> bool {
        use TicketStatus::*;
        match (self, to) {
            (a, b) if a == b => false,
            (Closed, _) => false,
            (_, Created) => false,
            (Resolved, Closed) => true,
            (Resolved, InProgress | Assigned | Pending) => true,
            (Created | Assigned | InProgress | Pending, _) => true,
            _ => false,
        }
    }

    /// Still a live case (its actor may receive customer messages for it).
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Closed)
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a case is; drives SLA targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    /// Lowest first.
    pub const ALL: [Priority; 4] = [Self::Low, Self::Medium, Self::High, Self::Urgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "urgent" => Self::Urgent,
            _ => return None,
        })
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a message travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inbound" => Some(Self::Inbound),
            "outbound" => Some(Self::Outbound),
            _ => None,
        }
    }
}

/// What an API token may do. Each role is a fixed set of [`Permission`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Supervisor,
    Agent,
    Integration,
    /// Reads the audit trail (ids, never personal data); reads no conversation and
    /// changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Self::Admin,
        Self::Supervisor,
        Self::Agent,
        Self::Integration,
        Self::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Supervisor => "supervisor",
            Self::Agent => "agent",
            Self::Integration => "integration",
            Self::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == s)
    }

    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Self::Admin => true,
            Self::Supervisor => !matches!(
                permission,
                ManageAgents
                    | ReadDeadLetters
                    | RedriveDeadLetters
                    | ManageRouting
                    | ManagePlugins
                    | EraseData
                    | ReadAudit
                    | ReviewTemplates
                    | DefineContactFields
            ),
            Self::Agent => matches!(
                permission,
                ReadConversations
                    | ReplyToCustomers
                    | WriteNotes
                    | AssignConversations
                    | ChangeStatus
                    | ApproveMessages
                    | TakeCases
                    | EditContactFields
            ),
            Self::Integration => matches!(
                permission,
                ReadConversations | ReplyToCustomers | WriteNotes | ChangeStatus
            ),
            // The audit trail holds ids, never what people wrote; auditors read it and
            // nothing else (no conversations, no message texts).
            Self::Auditor => matches!(permission, ReadAudit),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing an API caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ReadConversations,
    ReplyToCustomers,
    WriteNotes,
    AssignConversations,
    ChangeStatus,
    ManageTeams,
    ManageAgents,
    ReadDeadLetters,
    /// Apply a dead letter again (admins only).
    RedriveDeadLetters,
    /// Reload taxonomy and routing rules.
    ManageRouting,
    /// Block contacts, mark VIPs, read the noise ledger.
    ManageContacts,
    /// Reply while another agent is typing, or to a case assigned to someone else.
    OverrideOwnership,
    /// See, load, replace and remove plugins (admins only: a plugin reaches outside).
    ManagePlugins,
    /// Erase a contact's personal data (admins only: it cannot be undone).
    EraseData,
    /// Go online, away or offline to take cases (people who work cases; not auditors,
    /// not integrations).
    TakeCases,
    /// Approve, edit or reject held outbound messages (each held message also names the
    /// least role that may decide it).
    ApproveMessages,
    /// Read the audit trail (auditors and admins).
    ReadAudit,
    /// Write template drafts and submit them for review (supervisors and admins).
    ManageTemplates,
    /// Approve, reject or pause templates (admins only).
    ReviewTemplates,
    /// Define custom fields on contacts (admins only: every agent fills them in).
    DefineContactFields,
    /// Fill in contacts' custom fields (people who work cases).
    EditContactFields,
}

/// On whose authority a change to a case is asked for: the ownership rules apply to API
/// callers; Parley's own actors (the router, the SLA clock, automation) act for the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Authority {
    System,
    Caller { role: Role, agent_id: Option<i64> },
}

impl Authority {
    /// Whether this authority may work (change the status of, escalate) a case assigned to
    /// `assignee`: supervisors and admins any case, an agent only a case assigned to them,
    /// an integration only a case no agent holds, anyone else none.
    pub fn works(self, assignee: Option<i64>) -> bool {
        match self {
            Self::System => true,
            Self::Caller { role, .. } if role.allows(Permission::OverrideOwnership) => true,
            Self::Caller {
                role: Role::Agent,
                agent_id,
            } => assignee.is_some() && assignee == agent_id,
            Self::Caller {
                role: Role::Integration,
                ..
            } => assignee.is_none(),
            Self::Caller { .. } => false,
        }
    }

    /// Whether this authority moves cases between people and teams freely.
    pub fn supervises(self) -> bool {
        match self {
            Self::System => true,
            Self::Caller { role, .. } => role.allows(Permission::OverrideOwnership),
        }
    }
}

/// Who did something, as written to the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    Customer,
    System,
    /// Parley's own automation (plugin lookups, automated answers).
    Automation,
    Agent {
        id: i64,
    },
    Token {
        id: i64,
    },
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Self::Customer => "customer".into(),
            Self::System => "system".into(),
            Self::Automation => "automation".into(),
            Self::Agent { id } => format!("agent:{id}"),
            Self::Token { id } => format!("token:{id}"),
        }
    }
}

/// Identifies the one live case of a contact on a business number: the key of its actor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationKey {
    pub channel_id: String,
    pub phone_number_id: String,
    pub wa_id: String,
}

/// The longest text WhatsApp accepts in one message.
pub const MAX_TEXT_CHARS: usize = 4096;

/// One second in [`Micros`].
pub const SECOND_MICROS: Micros = 1_000_000;

/// How long after a customer's message free-form messages may be sent to them on the
/// number they wrote to (WhatsApp's customer service window).
pub const SERVICE_WINDOW: Micros = 24 * 3600 * SECOND_MICROS;

/// When the customer service window opened by a customer message at `last_customer_message`
/// closes; `None` when the customer never wrote (only templates may be sent). A refusal by
/// the provider as outside the window (`refused_at`, Meta's 131047) after that message
/// closes it then: the provider's reckoning wins over ours.
pub fn service_window_closes_at(
    last_customer_message: Option<Micros>,
    refused_at: Option<Micros>,
) -> Option<Micros> {
    let opened = last_customer_message?;
    let closes = opened.saturating_add(SERVICE_WINDOW);
    Some(match refused_at {
        Some(refused) if refused >= opened => closes.min(refused),
        _ => closes,
    })
}

/// The instant a customer message opens the service window at: when the provider stamped
/// it (WhatsApp opens the window when the customer sends, however late the webhook
/// arrives), never later than its receipt (a clock ahead of ours gains nothing). A message
/// stamped before the latest one already seen (a late redelivery) leaves the window where
/// the later message put it.
pub fn window_opened_by(previous: Option<Micros>, sent_at: Micros, received_at: Micros) -> Micros {
    let at = sent_at.min(received_at);
    previous.map_or(at, |previous| previous.max(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_opens_at_the_provider_stamp_and_closes_at_a_refusal() {
        const HOUR: Micros = 3600 * SECOND_MICROS;
        // Stamped an hour before it arrived: closes 23 hours after arrival.
        let opened = window_opened_by(None, 10 * HOUR, 11 * HOUR);
        assert_eq!(
            service_window_closes_at(Some(opened), None),
            Some(34 * HOUR)
        );
        // A stamp ahead of our clock counts from receipt; a late older message changes nothing.
        assert_eq!(window_opened_by(None, 12 * HOUR, 11 * HOUR), 11 * HOUR);
        assert_eq!(window_opened_by(Some(opened), 5 * HOUR, 12 * HOUR), opened);
        // A refusal after the message closes the window then; one before it does not.
        assert_eq!(
            service_window_closes_at(Some(opened), Some(12 * HOUR)),
            Some(12 * HOUR)
        );
        assert_eq!(
            service_window_closes_at(Some(opened), Some(9 * HOUR)),
            Some(34 * HOUR)
        );
        assert_eq!(service_window_closes_at(None, Some(9 * HOUR)), None);
    }

    #[test]
    fn closed_cases_cannot_be_moved_by_hand() {
        for to in TicketStatus::ALL {
            assert!(!TicketStatus::Closed.can_move_to(to));
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in TicketStatus::ALL {
            assert_eq!(TicketStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TicketStatus::parse("open"), None);
    }

    #[test]
    fn agents_cannot_manage_agents_but_admins_can() {
        assert!(!Role::Agent.allows(Permission::ManageAgents));
        assert!(!Role::Supervisor.allows(Permission::ManageAgents));
        assert!(Role::Admin.allows(Permission::ManageAgents));
        assert!(Role::Agent.allows(Permission::ReplyToCustomers));
        assert!(!Role::Integration.allows(Permission::AssignConversations));
    }

    #[test]
    fn only_admins_manage_plugins() {
        for role in Role::ALL {
            assert_eq!(
                role.allows(Permission::ManagePlugins),
                role == Role::Admin,
                "{role}"
            );
        }
    }
}
