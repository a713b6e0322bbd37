//! Telling agents what concerns them: a note that mentions them (`@Name`), and, for the
//! members of a case's watcher teams, the case changing owner, breaching an SLA target
//! or escalating. `notifications` is a subscription over the event log (with
//! `afterEventId` a reconnecting inbox misses nothing), so it works on any node of a
//! cluster: events reach every node.

use super::resume;
use super::types::{ConversationEvent, id_of};
use super::{api, principal};
use crate::domain::Permission;
use crate::error::{ApiError, ErrorCode};
use crate::store::entities::conversation_event;
use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use futures::{Stream, StreamExt};

/// Why an agent is told.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum NotificationKind {
    /// A note mentions the agent.
    Mentioned,
    /// A case the agent's team watches changed owner.
    WatchedOwnerChanged,
    /// A case the agent's team watches breached an SLA target.
    WatchedSlaBreached,
    /// A case the agent's team watches was escalated.
    WatchedEscalated,
}

#[derive(SimpleObject)]
pub struct Notification {
    pub kind: NotificationKind,
    pub conversation_id: ID,
    /// The event it is about (its id resumes the subscription).
    pub event: ConversationEvent,
}

#[derive(Default)]
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// What concerns the calling agent, as it happens: mentions in notes, and owner
    /// changes, SLA breaches and escalations of cases their team watches. With
    /// `afterEventId` (the last `event { id }` seen), what happened since comes first.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        after_event_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = Notification>> {
        let who = principal(ctx)?;
        who.require(Permission::ReadConversations)?;
        let me = who.agent_id.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "notifications are an agent's: use a token that names one",
            )
        })?;
        let after = after_event_id
            .as_ref()
            .map(|id| id_of(id, "event"))
            .transpose()?;
        let context = api(ctx);
        let store = context.store.clone();
        let team_id = store
            .agent(me)
            .await
            .map_err(ApiError::internal)?
            .and_then(|a| a.team_id);
        let team = team_id.and_then(|id| {
            context
                .routing
                .engine
                .current()
                .team_name(id)
                .map(str::to_owned)
        });
        let live = context.events.subscribe();
        let feed = resume::events_after(store.clone(), live, None, after);
        Ok(feed.filter_map(move |event| {
            let store = store.clone();
            let team = team.clone();
            async move {
                let kind = concerns(&store, &event, me, team.as_deref()).await?;
                Some(Notification {
                    kind,
                    conversation_id: ID(event.conversation_id.to_string()),
                    event: ConversationEvent(event.as_ref().clone()),
                })
            }
        }))
    }
}

/// Whether `event` concerns agent `me` of `team` (a policy team id), and why.
async fn concerns(
    store: &crate::store::Store,
    event: &conversation_event::Model,
    me: i64,
    team: Option<&str>,
) -> Option<NotificationKind> {
    let watched = match event.kind.as_str() {
        "note_added" => {
            let data: serde_json::Value = serde_json::from_str(&event.data).ok()?;
            let mentioned = data["mentions"]
                .as_array()?
                .iter()
                .any(|id| id.as_i64() == Some(me));
            return mentioned.then_some(NotificationKind::Mentioned);
        }
        "owner_changed" => NotificationKind::WatchedOwnerChanged,
        "sla_breached" => NotificationKind::WatchedSlaBreached,
        "escalated" => NotificationKind::WatchedEscalated,
        _ => return None,
    };
    let team = team?;
    let case = store.conversation(event.conversation_id).await.ok()??;
    let watchers: Vec<String> = serde_json::from_str(case.watchers.as_deref()?).ok()?;
    watchers.iter().any(|w| w == team).then_some(watched)
}

/// The agents `body` mentions: `@` (not inside a word, so not an e-mail address)
/// followed by an agent's name in any case, the longest name that fits ("@Ana Lucía" is
/// not "@Ana"); `agents` are (id, name). The author does not mention themselves.
pub fn mentions_in(body: &str, agents: &[(i64, String)], author: Option<i64>) -> Vec<i64> {
    let lower = body.to_lowercase();
    let names: Vec<(i64, String)> = agents
        .iter()
        .map(|(id, name)| (*id, name.trim().to_lowercase()))
        .filter(|(_, name)| !name.is_empty())
        .collect();
    let mut found = Vec::new();
    for (at, _) in lower.match_indices('@') {
        if lower[..at]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
        {
            continue;
        }
        let rest = &lower[at + 1..];
        let best = names
            .iter()
            .filter(|(_, name)| {
                rest.starts_with(name.as_str())
                    && rest[name.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !c.is_alphanumeric())
            })
            .max_by_key(|(_, name)| name.len());
        if let Some((id, _)) = best
            && Some(*id) != author
            && !found.contains(id)
        {
            found.push(*id);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_take_the_longest_name_and_need_word_boundaries() {
        let agents = [
            (1, "Ana".to_owned()),
            (2, "Ana Lucía".to_owned()),
            (3, "Bo".to_owned()),
        ];
        assert_eq!(
            mentions_in("@ana lucía and @BO, see this", &agents, None),
            [2, 3]
        );
        assert_eq!(mentions_in("ask @Ana.", &agents, None), [1]);
        // Not mentions: a longer word, an e-mail address, the author, a repeat.
        assert!(mentions_in("@Bob please", &agents, None).is_empty());
        assert!(mentions_in("write to x@bo", &agents, None).is_empty());
        assert!(mentions_in("@Bo twice @bo", &agents, Some(3)).is_empty());
        assert_eq!(mentions_in("@Bo twice @bo", &agents, None), [3]);
    }
}
