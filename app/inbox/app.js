// The reference inbox: sign in with a token, then the conversation list, one
// conversation, (supervisors) the approval queue, and the reports, all live over subscriptions.
import { Api, ApiError, LIST, DETAIL } from './api.js';
import * as v from './view.js';
import { Shelf } from './media.js';

const $ = (id) => document.getElementById(id);
const OPEN = ['CREATED', 'ASSIGNED', 'IN_PROGRESS', 'PENDING'];
const state = { api: null, me: null, live: null, teams: [], agents: [], list: [], selected: null,
  detail: null, fresh: new Set(), unwatch: null, presenceTimer: null, typingUntil: 0,
  shelf: new Shelf(), refreshTimer: null };

function toast(text, bad = false) {
  const t = $('toast');
  t.textContent = text;
  t.className = `toast show${bad ? ' bad' : ''}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = 'toast'; }, 4000);
}
const describe = (error) => (error instanceof ApiError ? `${error.message} [${error.code}]` : String(error));

// ---- sign in ------------------------------------------------------------------------
async function signIn(token) {
  const api = new Api(token);
  const { me, teams, agents } = await api.query('{ me { role agentId } teams { id name } agents { id name } }');
  sessionStorage.setItem('parley-token', token);
  Object.assign(state, { api, me, teams, agents });
  $('signin').hidden = true;
  $('inbox').hidden = false;
  $('sign-out').hidden = false;
  const name = agents.find((a) => a.id === me.agentId)?.name;
  $('who').textContent = `${name ?? 'token'} · ${me.role.toLowerCase()}`;
  const supervisor = me.role === 'SUPERVISOR' || me.role === 'ADMIN';
  document.querySelector('[data-view="approvals"]').hidden = !supervisor;
  const teamSelect = document.querySelector('#filters [name="team"]');
  for (const t of teams) teamSelect.append(v.h('option', { value: t.id }, t.name));
  const assigneeSelect = document.querySelector('#filters [name="assignee"]');
  for (const a of agents) assigneeSelect.append(v.h('option', { value: a.id }, a.name));
  state.live = api.live((on) => {
    $('live').textContent = on ? 'live' : 'reconnecting';
    $('live').classList.toggle('on', on);
    if (on) { loadList(); if (supervisor) loadHeld(); }
  });
  state.live.subscribe('subscription { conversationEvents { id conversationId kind } }', {}, (data) => {
    const e = data.conversationEvents;
    state.fresh.add(e.conversationId);
    scheduleList();
    if (e.conversationId === state.selected) scheduleDetail();
  });
  if (supervisor) state.live.subscribe('subscription { approvalQueue { kind conversationId } }', {}, () => loadHeld());
  await loadList();
  if (supervisor) loadHeld();
}

function showSignIn(error) {
  $('signin').hidden = false;
  $('inbox').hidden = true;
  $('approvals').hidden = true;
  $('reports').hidden = true;
  $('signin-error').textContent = error ?? '';
  $('token').focus();
}

// ---- the list -----------------------------------------------------------------------
function filterOf() {
  const form = new FormData($('filters'));
  const filter = {};
  const status = form.get('status');
  if (status === 'OPEN') filter.status = OPEN;
  else if (status) filter.status = [status];
  if (form.get('team')) filter.teamId = form.get('team');
  const assignee = form.get('assignee');
  if (assignee) filter.assigneeId = assignee === 'me' ? state.me.agentId ?? '0' : assignee;
  return filter;
}

let listTimer = null;
const scheduleList = () => { clearTimeout(listTimer); listTimer = setTimeout(loadList, 150); };

async function loadList() {
  try {
    const data = await state.api.query(LIST, { filter: filterOf() });
    const priority = new FormData($('filters')).get('priority');
    state.list = data.conversations.edges.map((e) => e.node).filter((c) => !priority || c.priority === priority);
    renderList();
  } catch (error) {
    toast(describe(error), true);
  }
}

function renderList() {
  const ul = $('conversations');
  const focused = document.activeElement?.closest?.('#conversations li')?.dataset.id;
  ul.replaceChildren(...state.list.map((c) => {
    const li = v.listItem(c, c.id === state.selected);
    if (state.fresh.has(c.id)) li.classList.add('fresh');
    li.addEventListener('click', () => open(c.id));
    return li;
  }));
  if (!state.selected && ul.firstChild) ul.firstChild.tabIndex = 0;
  state.fresh.clear();
  if (focused) ul.querySelector(`[data-id="${focused}"]`)?.focus();
}

// ---- one conversation ---------------------------------------------------------------
let detailTimer = null;
const scheduleDetail = () => { clearTimeout(detailTimer); detailTimer = setTimeout(loadDetail, 150); };

async function open(id) {
  if (state.selected !== id) {
    state.unwatch?.();
    clearInterval(state.presenceTimer);
    clearTimeout(state.refreshTimer);
    state.shelf.clear();
    state.selected = id;
    state.detail = null;
    state.present = [];
    state.unwatch = state.live.subscribe(
      'subscription($c: ID!) { conversationPresence(conversationId: $c) { present { agentId agentName state } } }',
      { c: id }, (data) => { state.present = data.conversationPresence.present; renderPresence(); });
    announce('VIEWING');
    state.presenceTimer = setInterval(() => announce(Date.now() < state.typingUntil ? 'TYPING' : 'VIEWING'), 15000);
  }
  $('inbox').classList.add('reading');
  renderList();
  await loadDetail();
}

async function announce(presence) {
  if (!state.selected || !state.me.agentId) return;
  try {
    const { setPresence } = await state.api.query(
      'mutation($c: ID!, $s: PresenceKind) { setPresence(conversationId: $c, state: $s) { agentId agentName state } }',
      { c: state.selected, s: presence });
    state.present = setPresence;
    renderPresence();
  } catch { /* presence is best effort */ }
}

async function loadDetail() {
  const id = state.selected;
  if (!id) return;
  try {
    const { conversation } = await state.api.query(DETAIL, { id });
    if (id !== state.selected) return;
    state.detail = conversation;
    renderDetail();
  } catch (error) {
    toast(describe(error), true);
  }
}

function renderPresence() {
  const box = document.querySelector('#conversation .presence');
  if (!box) return;
  const others = (state.present ?? []).filter((p) => p.agentId !== state.me.agentId);
  const typing = others.filter((p) => p.state === 'TYPING');
  box.replaceChildren(
    others.length ? `Also here: ${others.map((p) => `${p.agentName} (${p.state.toLowerCase()})`).join(', ')}` : '',
    typing.length ? v.h('span', { class: 'collision', role: 'alert' }, ` ${typing.map((p) => p.agentName).join(', ')} is typing a reply: yours may collide.`) : '');
}

function renderDetail() {
  const c = state.detail;
  const pane = $('conversation');
  if (!c) { pane.replaceChildren(v.h('p', { class: 'empty' }, 'Conversation not found.')); return; }
  const keep = pane.querySelector('#reply')?.value ?? '';
  const keepNote = pane.querySelector('#note')?.value ?? '';
  // A refused reply's error stays until the next send, though an event re-renders.
  const keepError = pane.dataset.id === c.id ? pane.querySelector('#reply-error')?.textContent ?? '' : '';
  const hadFocus = document.activeElement?.id;
  const focused = document.activeElement;
  const messages = c.messages.edges.map((e) => e.node);
  const select = (name, options, current, label) => v.h('select', { name, 'aria-label': label },
    options.map(([value, text]) => v.h('option', { value, selected: value === current }, text)));
  const head = v.h('div', { class: 'head' },
    v.h('div', { class: 'row' },
      v.h('button', { type: 'button', class: 'back', onclick: () => $('inbox').classList.remove('reading'), 'aria-label': 'Back to the list' }, '←'),
      v.said(c.contact.name || `+${c.contact.waId}`, 'h2'),
      v.h('span', { class: `chip ${c.priority}` }, c.priority.toLowerCase()),
      c.urgency && v.h('span', { class: `chip ${c.urgency}` }, c.urgency.toLowerCase()),
      v.h('span', { class: 'chip' }, c.status.toLowerCase().replace('_', ' ')),
      ...v.slaChips(c.sla), v.windowChip(c.serviceWindow)),
    v.h('div', { class: 'actions' },
      select('status', ['CREATED', 'ASSIGNED', 'IN_PROGRESS', 'PENDING', 'RESOLVED', 'CLOSED'].map((s) => [s, s.toLowerCase().replace('_', ' ')]), c.status, 'Status'),
      v.h('button', { type: 'button', onclick: (e) => act('status', e) }, 'Set status'),
      select('agent', [['', 'unassigned'], ...state.agents.map((a) => [a.id, a.name])], c.assignee?.id ?? '', 'Assignee'),
      v.h('button', { type: 'button', onclick: (e) => act('assign', e) }, 'Assign'),
      state.me.agentId && c.assignee?.id !== state.me.agentId && v.h('button', { type: 'button', onclick: () => assign(state.me.agentId, undefined) }, 'Take'),
      select('team', state.teams.map((t) => [t.id, t.name]), c.team?.id ?? '', 'Team'),
      v.h('button', { type: 'button', onclick: (e) => act('transfer', e) }, 'Transfer')),
    v.h('div', { class: 'presence', 'aria-live': 'polite' }));
  const main = v.h('div', { class: 'thread' },
    v.h('ol', { class: 'messages', 'aria-label': 'Messages' }, messages.map((m) => v.message(m, state.shelf))),
    v.h('form', { class: 'composer', id: 'composer', onsubmit: reply },
      v.h('label', { for: 'reply' }, 'Reply to the customer ', v.h('kbd', {}, 'r, Ctrl+Enter sends')),
      v.h('textarea', { id: 'reply', dir: 'auto', oninput: typing, onkeydown: (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) reply(e); } }),
      v.h('p', { class: 'error', id: 'reply-error', role: 'alert' }),
      v.h('div', { class: 'actions' }, v.h('button', { type: 'submit', class: 'primary' }, 'Send reply'))),
    v.h('form', { class: 'composer', onsubmit: note },
      v.h('label', { for: 'note' }, 'Internal note ', v.h('kbd', {}, 'n')),
      v.h('textarea', { id: 'note', dir: 'auto' }),
      v.h('div', { class: 'actions' }, v.h('button', { type: 'submit' }, 'Add note'))));
  const side = v.h('div', { class: 'side' }, v.crmPanel(c.contact), v.triagePanel(c.triage),
    v.packetPanel(c.events), v.notesPanel(c.notes), v.eventsPanel(c.events));
  pane.replaceChildren(head, main, side);
  pane.querySelector('#reply').value = keep;
  pane.querySelector('#note').value = keepNote;
  pane.querySelector('#reply-error').textContent = keepError;
  pane.dataset.id = c.id;
  if (hadFocus) $(hadFocus)?.focus();
  else if (focused?.isConnected && focused !== document.activeElement) focused.focus({ preventScroll: true });
  renderPresence();
  clearTimeout(state.refreshTimer);
  const wait = state.shelf.refreshIn(messages);
  if (wait !== null) state.refreshTimer = setTimeout(loadDetail, wait);
  const thread = pane.querySelector('.messages');
  thread.lastElementChild?.scrollIntoView({ block: 'nearest' });
}

function typing() {
  const was = Date.now() < state.typingUntil;
  state.typingUntil = Date.now() + 8000;
  if (!was) announce('TYPING');
}

async function run(what, query, variables) {
  try {
    await state.api.query(query, variables);
    toast(what);
    await loadDetail();
    scheduleList();
    return null;
  } catch (error) {
    toast(describe(error), true);
    return error;
  }
}

async function reply(event) {
  event.preventDefault();
  const text = $('reply').value;
  $('reply').value = '';
  $('reply-error').textContent = '';
  const error = await run('Reply queued', 'mutation($c: ID!, $t: String!) { sendReply(conversationId: $c, text: $t) { id } }', { c: state.selected, t: text });
  if (error) {
    $('reply').value = text;
    $('reply-error').textContent = `Not sent: ${describe(error)}`;
  } else {
    state.typingUntil = 0;
    announce('VIEWING');
  }
}

async function note(event) {
  event.preventDefault();
  const body = $('note').value;
  $('note').value = '';
  const error = await run('Note added', 'mutation($c: ID!, $b: String!) { addNote(conversationId: $c, body: $b) { id } }', { c: state.selected, b: body });
  if (error) $('note').value = body;
}

const assign = (agentId, teamId) => run('Assigned', 'mutation($c: ID!, $a: ID, $t: ID) { assignConversation(conversationId: $c, agentId: $a, teamId: $t) { id } }',
  { c: state.selected, a: agentId || null, t: teamId || null });

function act(what, event) {
  const head = event.target.closest('.head');
  const value = (name) => head.querySelector(`[name="${name}"]`).value;
  if (what === 'status') run('Status changed', 'mutation($c: ID!, $s: ConversationStatus!) { setConversationStatus(conversationId: $c, status: $s) { id } }', { c: state.selected, s: value('status') });
  if (what === 'assign') assign(value('agent'), undefined);
  if (what === 'transfer') assign(undefined, value('team'));
}

// ---- approvals ----------------------------------------------------------------------
async function loadHeld() {
  try {
    const { heldMessages } = await state.api.query('{ heldMessages(first: 50) { id conversationId origin approver boundaries reasons originalText } }');
    $('held-count').textContent = heldMessages.length || '';
    $('held').replaceChildren(...(heldMessages.length ? heldMessages.map(heldItem) : [v.h('li', {}, 'Nothing waits for approval.')]));
  } catch (error) {
    toast(describe(error), true);
  }
}

function heldItem(m) {
  const text = v.h('textarea', { dir: 'auto', 'aria-label': 'Text to send' });
  text.value = m.originalText ?? '';
  const reason = v.h('input', { 'aria-label': 'Reason for rejecting', placeholder: 'Reason (to reject)' });
  const decide = async (mutation, variables, done) => {
    try { await state.api.query(mutation, variables); toast(done); loadHeld(); } catch (error) { toast(describe(error), true); }
  };
  return v.h('li', { 'data-id': m.id },
    v.h('div', { class: 'row' }, v.h('strong', {}, `Conversation ${m.conversationId}`), v.h('span', { class: 'chip' }, m.origin),
      ...m.boundaries.map((b) => v.h('span', { class: 'chip warn' }, b)),
      v.h('button', { type: 'button', onclick: () => { showView('inbox'); open(m.conversationId); } }, 'Open')),
    v.h('div', {}, m.reasons.join(' ')), text,
    v.h('div', { class: 'actions' },
      v.h('button', { type: 'button', class: 'primary', onclick: () => {
        const edited = text.value !== (m.originalText ?? '');
        decide('mutation($id: ID!, $t: String) { approveMessage(id: $id, text: $t) { id } }', { id: m.id, t: edited ? text.value : null }, edited ? 'Edited and approved' : 'Approved');
      } }, 'Approve'),
      reason,
      v.h('button', { type: 'button', onclick: () => decide('mutation($id: ID!, $r: String!) { rejectMessage(id: $id, reason: $r) { id } }', { id: m.id, r: reason.value }, 'Rejected') }, 'Reject')));
}

// ---- reports -----------------------------------------------------------------------
const SUMMARY = `conversationsCreated resolutions reopenRate escalationRate slaFirstResponseMet slaResolutionMet
  automationRate oneTouchRate autoClosureRate csatScore csatResponseRate
  firstResponseTime { medianSeconds } resolutionTime { averageSeconds }`;
const REPORT = `query($f: ReportFilter!) { report(filter: $f) {
  summary { ${SUMMARY} } previousSummary { ${SUMMARY} }
  health { metric state target warning action }
  timeSeries(metric: CONVERSATIONS_CREATED, interval: DAY) { start count } } }`;
const BREAKDOWN = `query($f: ReportFilter!) { report(filter: $f) { breakdown(by: TEAM, first: 50) {
  slices { value summary { conversationsCreated resolutions slaFirstResponseMet csatScore reopenRate
    firstResponseTime { medianSeconds } } } } } }`;
const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

// The period picked, in the browser's time zone; the server keeps its figures in one
// zone and refuses another, so then the report is read in the server's zone.
function reportFilter() {
  const days = Number($('period').value);
  const to = new Date();
  const from = new Date(to.getTime() - days * 86400000);
  const filter = { from: from.toISOString(), to: to.toISOString() };
  if (state.reportZone !== null) filter.timeZone = state.reportZone ?? browserZone;
  return filter;
}

async function reportQuery(query) {
  try {
    return await state.api.query(query, { f: reportFilter() });
  } catch (error) {
    if (state.reportZone === undefined && error instanceof ApiError && /timeZone/.test(error.message)) {
      state.reportZone = null;
      $('report-zone').textContent = `Days are counted in the server's time zone (${error.message.match(/kept in (\S+);/)?.[1] ?? 'its own'}), not yours (${browserZone}).`;
      return state.api.query(query, { f: reportFilter() });
    }
    throw error;
  }
}

async function loadReport() {
  $('report-error').textContent = '';
  if (state.reportZone === undefined) $('report-zone').textContent = `Days are counted in your time zone (${browserZone}).`;
  try {
    const { report } = await reportQuery(REPORT);
    $('summary').replaceChildren(...v.summaryCards(report.summary, report.previousSummary, report.health));
    $('chart').replaceChildren(v.barChart(report.timeSeries, Number($('period').value)));
  } catch (error) {
    $('summary').replaceChildren();
    $('chart').replaceChildren();
    $('report-error').textContent = `Reports unavailable: ${describe(error)}`;
    return;
  }
  try {
    const { report } = await reportQuery(BREAKDOWN);
    const name = (id) => state.teams.find((t) => t.id === id)?.name ?? (id === 'none' ? 'no team' : `team ${id}`);
    $('breakdown').replaceChildren(v.breakdownTable(report.breakdown.slices, name));
  } catch (error) {
    $('breakdown').replaceChildren(v.h('p', { class: 'error' }, describe(error)));
  }
}

async function downloadCsv() {
  try {
    const { report } = await reportQuery('query($f: ReportFilter!) { report(filter: $f) { exportCsv(interval: DAY) } }');
    const url = URL.createObjectURL(new Blob([report.exportCsv], { type: 'text/csv' }));
    const link = v.h('a', { href: url, download: `parley-report-${$('period').value}-days.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (error) {
    toast(describe(error), true);
  }
}

// ---- views and keys -----------------------------------------------------------------
function showView(view) {
  $('inbox').hidden = view !== 'inbox';
  $('approvals').hidden = view !== 'approvals';
  $('reports').hidden = view !== 'reports';
  for (const b of document.querySelectorAll('[data-view]')) b.setAttribute('aria-pressed', String(b.dataset.view === view));
  if (view === 'approvals') loadHeld();
  if (view === 'reports') loadReport();
}

function moveInList(step) {
  const items = [...$('conversations').children];
  if (!items.length) return;
  const at = items.indexOf(document.activeElement);
  const next = items[Math.max(0, Math.min(items.length - 1, at < 0 ? 0 : at + step))];
  for (const li of items) li.tabIndex = -1;
  next.tabIndex = 0;
  next.focus();
}

let pendingG = false;
document.addEventListener('keydown', (event) => {
  if (!state.api || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest?.('dialog')) return; // the image viewer's own keys
  const inField = ['INPUT', 'TEXTAREA', 'SELECT'].includes(event.target.tagName);
  if (event.key === 'Escape') { event.target.blur?.(); $('inbox').classList.remove('reading'); return; }
  if (inField) return;
  if (pendingG) {
    pendingG = false;
    if (event.key === 'i') showView('inbox');
    if (event.key === 'a' && !document.querySelector('[data-view="approvals"]').hidden) showView('approvals');
    if (event.key === 'r') showView('reports');
    return;
  }
  if (event.key === 'g') pendingG = true;
  else if (event.key === 'j') moveInList(1);
  else if (event.key === 'k') moveInList(-1);
  else if (event.key === 'Enter' && event.target.closest?.('#conversations li')) open(event.target.dataset.id);
  else if (event.key === 'r') { event.preventDefault(); $('reply')?.focus(); }
  else if (event.key === 'n') { event.preventDefault(); $('note')?.focus(); }
  else return;
});

for (const b of document.querySelectorAll('[data-view]')) b.addEventListener('click', () => showView(b.dataset.view));
$('filters').addEventListener('change', loadList);
$('period').addEventListener('change', loadReport);
$('csv').addEventListener('click', downloadCsv);
$('sign-out').addEventListener('click', () => { sessionStorage.removeItem('parley-token'); location.reload(); });
$('signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try { await signIn($('token').value.trim()); } catch (error) { showSignIn(`Sign-in failed: ${describe(error)}`); }
});
setInterval(() => v.refreshCountdowns(), 1000);

// A token in the URL's fragment (never sent to the server) signs in once, then leaves
// the address bar.
const fromUrl = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromUrl) history.replaceState(null, '', location.pathname);
const token = fromUrl ?? sessionStorage.getItem('parley-token');
if (token) signIn(token).catch((error) => showSignIn(`Sign-in failed: ${describe(error)}`));
else showSignIn();
