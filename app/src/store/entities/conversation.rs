use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub contact_id: i64,
    pub channel_id: String,
    pub phone_number_id: String,
    pub status: String,
    pub priority: String,
    pub assignee_id: Option<i64>,
    pub team_id: Option<i64>,
    pub reopen_count: i32,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_activity_at: i64,
    pub last_customer_message_at: Option<i64>,
    pub first_response_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    /// The triage urgency of the latest customer message (low, normal, priority, immediate).
    pub urgency: Option<String>,
    /// Whether a human must review replies ("human") or automation may answer ("automation").
    pub review: Option<String>,
    /// JSON list of the teams that watch the case without owning it.
    pub watchers: Option<String>,
    /// The language of the latest customer message.
    pub language: Option<String>,
    /// The latest triage decision (JSON), which the router rebuilds its queues from.
    pub triage: Option<String>,
    /// The SLA ledger (JSON): targets started and stopped, pauses, alarms recorded.
    pub sla: Option<String>,
    /// When the case's next SLA alarm comes due; `None` when none is pending.
    pub sla_due_at: Option<i64>,
    /// The satisfaction survey's state (JSON): surveyed, skipped, answered, commented.
    pub csat: Option<String>,
    /// When the provider last refused a free-form message as outside the customer service
    /// window (131047): the window is closed from then until a later customer message.
    pub window_refused_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The customer wrote (sent at `sent_at` by the provider's clock, received at
    /// `received_at`): the window opens at [`crate::domain::window_opened_by`], and a
    /// provider refusal it follows no longer holds.
    pub fn customer_wrote(&mut self, sent_at: i64, received_at: i64) {
        let opened =
            crate::domain::window_opened_by(self.last_customer_message_at, sent_at, received_at);
        self.last_customer_message_at = Some(opened);
        if self
            .window_refused_at
            .is_some_and(|refused| opened >= refused)
        {
            self.window_refused_at = None;
        }
    }

    /// When the case's customer service window closes (or closed); `None` when the
    /// customer never wrote.
    pub fn service_window_closes_at(&self) -> Option<i64> {
        crate::domain::service_window_closes_at(
            self.last_customer_message_at,
            self.window_refused_at,
        )
    }
}
