// Parley's GraphQL API from the browser: queries over HTTP, subscriptions over
// graphql-transport-ws. Errors keep their `extensions.code`.

export class ApiError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join('; '));
    this.code = errors[0]?.extensions?.code ?? 'error';
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  async query(query, variables = {}) {
    const response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` },
      body: JSON.stringify({ query, variables }),
    });
    let answer;
    try {
      answer = await response.json();
    } catch {
      throw new ApiError([{ message: `HTTP ${response.status}`, extensions: { code: 'http' } }]);
    }
    if (answer.errors?.length) throw new ApiError(answer.errors);
    return answer.data;
  }

  // One socket for every subscription; reconnects with a growing pause. `onState` hears
  // true/false as the socket opens and drops (the page re-reads what it shows then).
  live(onState) {
    const subscriptions = new Map();
    let socket = null;
    let next = 1;
    let wait = 500;
    const send = (message) => socket?.readyState === 1 && socket.send(JSON.stringify(message));
    const start = (id, sub) => send({ id, type: 'subscribe', payload: { query: sub.query, variables: sub.variables } });
    const connect = () => {
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      socket = new WebSocket(`${scheme}://${location.host}/graphql/ws`, 'graphql-transport-ws');
      socket.onopen = () => send({ type: 'connection_init', payload: { Authorization: `Bearer ${this.token}` } });
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.type === 'connection_ack') {
          wait = 500;
          for (const [id, sub] of subscriptions) start(id, sub);
          onState(true);
        } else if (message.type === 'next') {
          subscriptions.get(message.id)?.onData(message.payload.data);
        } else if (message.type === 'ping') {
          send({ type: 'pong' });
        } else if (message.type === 'error') {
          console.warn('subscription refused', message.payload);
        }
      };
      socket.onclose = () => {
        onState(false);
        setTimeout(connect, wait);
        wait = Math.min(wait * 2, 15000);
      };
    };
    connect();
    return {
      subscribe(query, variables, onData) {
        const id = String(next++);
        const sub = { query, variables, onData };
        subscriptions.set(id, sub);
        start(id, sub);
        return () => {
          subscriptions.delete(id);
          send({ id, type: 'complete' });
        };
      },
    };
  }
}

export const CONVERSATION_FIELDS = `
  id status priority urgency language lastActivityAt reopenCount watcherTeams
  contact { waId name vip }
  assignee { id name }
  team { id name }
  serviceWindow { open closesAt }
  sla { paused targets { target state dueAt } }
  triage { intents { label confidence } risks { label confidence } }
  messages(first: 1) { edges { node { direction kind text } } }
`;

export const LIST = `query($filter: ConversationFilter) {
  conversations(first: 50, filter: $filter) { edges { node { ${CONVERSATION_FIELDS} } } }
}`;

export const ONE = `query($id: ID!) { conversation(id: $id) { ${CONVERSATION_FIELDS} } }`;

export const DETAIL = `query($id: ID!) {
  conversation(id: $id) {
    id status priority urgency urgencyLabel review language watcherTeams
    contact { waId name vip blocked
      crmProfile { externalId name email phone vip tier plan historySummary profileUrl attributes { name value } } }
    assignee { id name }
    team { id name }
    serviceWindow { open closesAt }
    sla { paused targets { target state dueAt elapsedSeconds targetSeconds } }
    triage {
      intents { label confidence } risks { label confidence } tones { label confidence }
      language { label confidence } urgency { label confidence } context lowConfidence
      decision { owner ownerRule priority urgency review reviewReason watchers skills reasons
        matchedRules { name matchedOn contributed } }
    }
    notes { id body author createdAt }
    messages(first: 100) { edges { node {
      id direction kind text deliveryStatus createdAt authorAgentId
      error { code title reason }
      media { id kind mimeType size fileName caption fetchState failureReason url }
      content { __typename
        ... on MediaContent { mediaId mimeType caption filename voice }
        ... on LocationContent { latitude longitude name address }
        ... on ReactionContent { emoji }
        ... on InteractiveContent { title }
        ... on ContactsContent { names } }
    } } }
    events(first: 100) { id kind actor createdAt data { __typename
      ... on StatusChangedEventData { from to reason automatic }
      ... on AssignedEventData { agentId teamId }
      ... on OwnerChangedEventData { team rules }
      ... on MessageHeldEventData { approver reasons }
      ... on MessageRejectedEventData { reason }
      ... on MessageStatusEventData { status errorCode errorTitle }
      ... on EscalatedEventData { trigger reason fromTeam toTeam moved
        packet { summary customerName customerWaId customerVip orderIds tried
          recentMessages { direction kind text } } }
      ... on OtherEventData { kind } } }
  }
}`;
