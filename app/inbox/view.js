// Rendering: DOM built with `h`, never from HTML strings, so customer text stays text.
// Every text node of customer or agent content gets dir="auto" (Arabic reads right to left).

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const said = (text, tag = 'span', cls = '') => h(tag, { dir: 'auto', class: cls }, text ?? '');

// "3h 12m", "45s"; negative durations read "-5m".
export function duration(ms) {
  const sign = ms < 0 ? '-' : '';
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hrs = Math.floor(s / 3600); s -= hrs * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${sign}${d}d ${hrs}h`;
  if (hrs) return `${sign}${hrs}h ${m}m`;
  if (m) return `${sign}${m}m ${s}s`;
  return `${sign}${s}s`;
}

const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
const percent = (c) => `${Math.round(c * 100)}%`;

// A chip that counts down to `at`; app.js refreshes every [data-until] each second.
export const countdown = (label, at, cls = '') =>
  h('span', { class: `chip ${cls}`, 'data-until': at, 'data-label': label }, `${label} ${duration(new Date(at) - Date.now())}`);

export function refreshCountdowns(root = document) {
  for (const chip of root.querySelectorAll('[data-until]')) {
    const left = new Date(chip.dataset.until) - Date.now();
    chip.textContent = left > 0 ? `${chip.dataset.label} ${duration(left)}` : `${chip.dataset.label} passed`;
    chip.classList.toggle('breach', left <= 0);
    chip.classList.toggle('warn', left > 0 && left < 30 * 60 * 1000);
  }
}

// SLA: the running target due first, or a breach mark.
export function slaChips(sla) {
  if (!sla) return [];
  const breached = sla.targets.filter((t) => t.state === 'BREACHED');
  if (breached.length) return [h('span', { class: 'chip breach', title: 'SLA breached' }, `SLA breached: ${breached.map((t) => t.target).join(', ')}`)];
  if (sla.paused) return [h('span', { class: 'chip' }, 'SLA paused')];
  const running = sla.targets.filter((t) => t.state === 'RUNNING' && t.dueAt).sort((a, b) => new Date(a.dueAt) - new Date(b.dueAt));
  return running.length ? [countdown(`SLA ${running[0].target.replace('_', ' ')}`, running[0].dueAt)] : [];
}

export function windowChip(window) {
  if (!window?.closesAt) return null;
  return window.open ? countdown('window', window.closesAt, 'ok') : h('span', { class: 'chip closed', title: 'Only templates may be sent' }, 'window closed');
}

export function listItem(c, selected) {
  const first = c.messages.edges[0]?.node;
  const who = c.contact.name || c.contact.waId;
  return h('li', {
      role: 'option', tabindex: selected ? '0' : '-1', 'aria-selected': String(selected),
      'data-id': c.id, 'data-status': c.status,
    },
    h('div', { class: 'row' }, said(who, 'span', 'name'), c.contact.vip && h('span', { class: 'chip warn' }, 'VIP'),
      h('span', { class: `chip ${c.priority}` }, c.priority.toLowerCase()),
      c.urgency && h('span', { class: `chip ${c.urgency}` }, c.urgency.toLowerCase()),
      h('span', { class: 'chip' }, c.status.toLowerCase().replace('_', ' '))),
    first && said(first.text ?? `[${first.kind}]`, 'div', 'preview'),
    h('div', { class: 'row' },
      h('span', { class: 'chip' }, c.team?.name ?? 'no team'),
      h('span', { class: 'chip' }, c.assignee?.name ?? 'unassigned'),
      ...slaChips(c.sla), windowChip(c.serviceWindow),
      ...(c.triage?.risks ?? []).map((r) => h('span', { class: 'chip breach' }, r.label))));
}

const TICKS = { PENDING: '🕓', SENT: '✓', DELIVERED: '✓✓', READ: '✓✓', PLAYED: '✓✓', FAILED: '⚠ failed', HELD: 'held for approval', REJECTED: 'rejected' };

// `shelf` (media.js) shows a message's file, once Parley has it.
function content(m, shelf) {
  const c = m.content;
  if (m.media && shelf) return shelf.figure(m);
  switch (c?.__typename) {
    case 'MediaContent':
      return h('figure', { class: 'media' },
        h('span', { class: 'kind' }, `${m.kind}${c.mimeType ? ` (${c.mimeType})` : ''}: Parley has no copy of this file (media id ${c.mediaId})`),
        c.caption && said(c.caption, 'figcaption'), c.filename && h('span', {}, c.filename));
    case 'LocationContent':
      return h('div', { class: 'media' }, h('span', { class: 'kind' }, 'location'), said(c.name ?? '', 'div'), `${c.latitude}, ${c.longitude}`);
    case 'ReactionContent': return h('span', {}, `reacted ${c.emoji ?? '(removed)'}`);
    case 'ContactsContent': return h('span', {}, `shared contacts: ${c.names.join(', ')}`);
    default: return said(m.text ?? `[${m.kind}]`, 'div');
  }
}

export function message(m, shelf) {
  const status = m.deliveryStatus;
  return h('li', { class: `msg ${m.direction} ${status ?? ''}`, 'data-id': m.id, 'data-status': status ?? '' },
    content(m, shelf),
    m.error && h('div', { class: 'failure', role: 'note' }, `${m.error.reason}: ${m.error.title} (${m.error.code})`),
    h('div', { class: 'meta' }, time(m.createdAt),
      status && h('span', { class: `tick ${status}`, title: status.toLowerCase(), 'aria-label': status.toLowerCase() }, TICKS[status] ?? status)));
}

const tagList = (tags) => h('div', { class: 'tags' }, tags.map((t) => h('span', { class: 'chip' }, `${t.label} ${percent(t.confidence)}`)));

export function triagePanel(t) {
  if (!t) return h('section', {}, h('h3', {}, 'Triage'), 'Not triaged yet.');
  const d = t.decision;
  return h('section', { class: 'triage' }, h('h3', {}, 'Triage'),
    h('div', {}, 'Intents: ', tagList(t.intents)),
    t.risks.length > 0 && h('div', {}, 'Risks: ', tagList(t.risks)),
    t.tones.length > 0 && h('div', {}, 'Tones: ', tagList(t.tones)),
    h('div', {}, 'Language: ', tagList([t.language]), ' urgency: ', tagList([t.urgency])),
    t.context.length > 0 && h('div', {}, `Context: ${t.context.join(', ')}`),
    t.lowConfidence && h('div', { class: 'collision' }, 'Low confidence: a person reviews.'),
    d && h('div', { class: 'decision' },
      h('h3', {}, 'Decision'),
      h('div', {}, `Owner ${d.owner}${d.ownerRule ? ` (rule "${d.ownerRule}")` : ''}, priority ${d.priority.toLowerCase()}, urgency ${d.urgency}, review ${d.review.toLowerCase()} (${d.reviewReason})`),
      d.watchers.length > 0 && h('div', {}, `Watchers: ${d.watchers.join(', ')}`),
      h('ul', { class: 'rules' }, d.matchedRules.map((r) =>
        h('li', {}, h('strong', {}, r.name), ` on ${r.matchedOn.join(', ') || 'always'}: ${r.contributed.join('; ')}`)))));
}

export function crmPanel(contact) {
  const p = contact.crmProfile;
  return h('section', {}, h('h3', {}, 'Customer'),
    said(contact.name ?? '', 'div'), h('div', {}, `+${contact.waId}`), contact.vip && h('span', { class: 'chip warn' }, 'VIP'),
    contact.blocked && h('span', { class: 'chip breach' }, 'blocked'),
    p ? h('div', {}, [p.tier && `Tier ${p.tier}`, p.plan && `plan ${p.plan}`, p.email, p.phone].filter(Boolean).join(' · '),
      p.historySummary && h('div', {}, p.historySummary),
      h('ul', {}, p.attributes.map((a) => h('li', {}, `${a.name}: ${a.value}`))),
      p.profileUrl && h('a', { href: p.profileUrl, rel: 'noreferrer', target: '_blank' }, 'Open in CRM'))
      : h('div', { class: 'kind' }, 'No CRM profile.'));
}

export function notesPanel(notes) {
  return h('section', { class: 'notes' }, h('h3', {}, 'Notes'),
    notes.length ? h('ul', {}, notes.map((n) => h('li', {}, said(n.body), h('span', { class: 'meta' }, ` ${n.author} ${time(n.createdAt)}`)))) : 'No notes.');
}

function eventLine(e) {
  const d = e.data;
  switch (d.__typename) {
    case 'StatusChangedEventData': return `status ${d.from ?? '?'} → ${d.to ?? '?'}${d.reason ? ` (${d.reason})` : ''}${d.automatic ? ', automatic' : ''}`;
    case 'AssignedEventData': return d.agentId ? `assigned to agent ${d.agentId}` : 'unassigned';
    case 'OwnerChangedEventData': return `owner ${d.team} by ${d.rules.join(', ')}`;
    case 'MessageHeldEventData': return `held for ${d.approver}: ${d.reasons.join('; ')}`;
    case 'MessageRejectedEventData': return `rejected: ${d.reason ?? ''}`;
    case 'MessageStatusEventData': return `message ${d.status?.toLowerCase() ?? ''}${d.errorTitle ? `: ${d.errorTitle}` : ''}`;
    case 'EscalatedEventData': return `escalated (${d.trigger}) to ${d.toTeam ?? 'the next level'}${d.reason ? `: ${d.reason}` : ''}`;
    default: return e.kind.replaceAll('_', ' ');
  }
}

export function eventsPanel(events) {
  return h('section', {}, h('h3', {}, 'Events'),
    h('ol', { class: 'events' }, events.map((e) => h('li', {}, `${time(e.createdAt)} ${eventLine(e)} — ${e.actor}`))));
}

export function packetPanel(events) {
  const escalation = [...events].reverse().find((e) => e.data.__typename === 'EscalatedEventData' && e.data.packet);
  if (!escalation) return null;
  const p = escalation.data.packet;
  return h('section', { class: 'packet' }, h('h3', {}, 'Escalation packet'),
    said(p.summary, 'p'),
    h('div', {}, `Customer: ${p.customerName ?? ''} +${p.customerWaId ?? ''}${p.customerVip ? ' (VIP)' : ''}`),
    p.orderIds.length > 0 && h('div', {}, `Orders: ${p.orderIds.join(', ')}`),
    p.tried.length > 0 && h('div', {}, `Tried: ${p.tried.join('; ')}`),
    h('ul', {}, p.recentMessages.map((m) => h('li', {}, `${m.direction}: `, said(m.text ?? `[${m.kind}]`)))));
}

// ---- reports ------------------------------------------------------------------------
// Each summary figure: its label, how to read it from a summary, its kind, and the KPI
// (`config/kpi.toml` metric) that judges it, if any.
const FIGURES = [
  ['Conversations created', (s) => s.conversationsCreated, 'count'],
  ['Resolutions', (s) => s.resolutions, 'count'],
  ['First response (median)', (s) => s.firstResponseTime.medianSeconds, 'seconds', 'first_response_median_seconds'],
  ['Resolution time (average)', (s) => s.resolutionTime.averageSeconds, 'seconds', 'resolution_average_seconds'],
  ['First response within SLA', (s) => s.slaFirstResponseMet, 'share', 'sla_first_response_met'],
  ['Resolution within SLA', (s) => s.slaResolutionMet, 'share', 'sla_resolution_met'],
  ['CSAT (4 or 5)', (s) => s.csatScore, 'share', 'csat_score'],
  ['CSAT response rate', (s) => s.csatResponseRate, 'share', 'csat_response_rate'],
  ['Reopen rate', (s) => s.reopenRate, 'share', 'reopen_rate'],
  ['Escalation rate', (s) => s.escalationRate, 'share', 'escalation_rate'],
  ['Automation (no person replied)', (s) => s.automationRate, 'share', 'automation_rate'],
  ['One-touch resolutions', (s) => s.oneTouchRate, 'share', 'one_touch_rate'],
  ['Closed by the case clock', (s) => s.autoClosureRate, 'share', 'auto_closure_rate'],
];

function figure(value, kind) {
  if (value === null || value === undefined) return '–';
  if (kind === 'seconds') return duration(value * 1000);
  if (kind === 'share') return `${(value * 100).toFixed(1)}%`;
  return String(value);
}

const LEVELS = { ON_TARGET: ['on target', 'ok'], OFF_TARGET: ['off target', 'warn'], WARNING: ['warning', 'warn'], ACTION: ['action', 'breach'] };

export function summaryCards(summary, previous, health) {
  return FIGURES.map(([label, read, kind, metric]) => {
    const kpi = health.find((k) => k.metric === metric);
    const [level, cls] = kpi ? LEVELS[kpi.state] ?? [kpi.state.toLowerCase(), ''] : [];
    return h('li', { class: 'card', 'data-figure': label },
      h('span', { class: 'label' }, label),
      h('strong', { class: 'value' }, figure(read(summary), kind)),
      h('span', { class: 'kind' }, `previous: ${figure(read(previous), kind)}`),
      kpi && h('span', { class: `chip ${cls}`, title: `target ${figure(kpi.target, kind)}, warning ${figure(kpi.warning, kind)}, action ${figure(kpi.action, kind)}` }, level));
  });
}

// Bars of `points` ({ start, count }) as an inline SVG, one slot per day of the period
// (today last; days without data stay empty); each bar says its day and count.
export function barChart(points, days) {
  if (!points.length) return h('p', { class: 'kind' }, 'No conversations in this period.');
  const ns = 'http://www.w3.org/2000/svg';
  const svg = (tag, attrs, ...children) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, value] of Object.entries(attrs)) node.setAttribute(k, value);
    node.append(...children);
    return node;
  };
  const width = 600;
  const height = 160;
  const top = Math.max(...points.map((p) => p.count), 1);
  const step = width / days;
  const slot = (p) => Math.max(0, days - 1 - Math.floor((Date.now() - new Date(p.start)) / 86400000));
  const bars = points.map((p) => {
    const i = slot(p);
    const tall = Math.max(1, (p.count / top) * (height - 20));
    const day = new Date(p.start).toLocaleDateString([], { month: 'short', day: 'numeric' });
    return svg('g', { class: 'bar-group' },
      svg('rect', { class: 'bar', x: (i * step + step * 0.15).toFixed(1), y: (height - tall).toFixed(1), width: (step * 0.7).toFixed(1), height: tall.toFixed(1) },
        svg('title', {}, `${day}: ${p.count}`)),
      svg('text', { x: (i * step + step / 2).toFixed(1), y: (height - tall - 4).toFixed(1), 'text-anchor': 'middle' }, String(p.count)));
  });
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Conversations created per day, ${points.length} days with data` }, ...bars);
}

export function breakdownTable(slices, nameOf) {
  if (!slices.length) return h('p', { class: 'kind' }, 'No figures in this period.');
  const cell = (tag, text) => h(tag, {}, text);
  return h('table', { class: 'breakdown' },
    h('thead', {}, h('tr', {}, ['Team', 'Created', 'Resolved', 'First response (median)', 'Within SLA', 'CSAT', 'Reopen'].map((t) => cell('th', t)))),
    h('tbody', {}, slices.map((s) => h('tr', {},
      said(nameOf(s.value), 'td'),
      cell('td', s.summary.conversationsCreated), cell('td', s.summary.resolutions),
      cell('td', figure(s.summary.firstResponseTime.medianSeconds, 'seconds')),
      cell('td', figure(s.summary.slaFirstResponseMet, 'share')),
      cell('td', figure(s.summary.csatScore, 'share')),
      cell('td', figure(s.summary.reopenRate, 'share'))))));
}
