// The files of the open conversation, shown for real: images inline (Enter or a click
// shows them full size), voice notes and other audio with <audio>, videos with <video>,
// documents as a download link; a file still being fetched from WhatsApp, or that could
// not be, shows where it stands.
//
// How the bytes come: the API signs a short-lived URL for each stored file (GraphQL
// `Media.url`, `/media/{id}?exp=...&by=...&sig=...`: no bearer token in it, valid for one
// file for minutes, each download audited in the agent's name). Images, audio and video
// are read through it once and kept as blob: URLs while the conversation is open, revoked
// when another one opens: the page re-renders a conversation on each of its events, and a
// re-render neither downloads a file again nor stops a voice note that is playing.
// Documents (up to 100 MB) are not read ahead: their link is the signed URL itself, and
// the page asks for fresh ones before they expire (`refreshIn`).
import { h, said } from './view.js';

const KINDS = { IMAGE: 'photo', STICKER: 'sticker', AUDIO: 'audio', VIDEO: 'video', DOCUMENT: 'document' };

function size(bytes) {
  if (bytes == null) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

const label = (m) => (m.media.kind === 'AUDIO' && m.content?.voice ? 'voice note' : KINDS[m.media.kind] ?? m.kind);
const facts = (m) => [label(m), m.media.mimeType, size(m.media.size)].filter(Boolean).join(' · ');
const altOf = (m) => m.media.caption || m.media.fileName || `${label(m)} from ${m.direction === 'INBOUND' ? 'the customer' : 'an agent'}`;
const fileName = (m) => m.media.fileName || `${label(m).replace(' ', '-')}-${m.media.id}`;
const expiry = (url) => Number(new URL(url, location.href).searchParams.get('exp')) * 1000;

export class Shelf {
  constructor() {
    this.items = new Map(); // media id -> { state, node, blob }
  }

  // Forgets every file and frees its bytes (another conversation opens).
  clear() {
    for (const item of this.items.values()) if (item.blob) URL.revokeObjectURL(item.blob);
    this.items.clear();
  }

  // The figure of message `m`, which has `media`: the same node as last time while the
  // file's state is the same, so what it shows (and plays) stays.
  figure(m) {
    const media = m.media;
    const state = `${media.fetchState} ${media.failureReason ?? ''}`;
    const cached = this.items.get(media.id);
    if (cached && cached.state === state && media.kind !== 'DOCUMENT') return cached.node;
    if (cached?.blob) URL.revokeObjectURL(cached.blob);
    const node = h('figure', { class: `media ${media.kind.toLowerCase()}`, 'data-media-id': media.id, 'data-state': media.fetchState });
    const item = { state, node, blob: null };
    this.items.set(media.id, item);
    const caption = media.caption ? said(media.caption, 'figcaption') : null;
    if (media.fetchState !== 'STORED' || !media.url) {
      node.append(h('span', { class: 'state', role: 'status' }, stateText(m)), caption ?? '', h('span', { class: 'kind' }, facts(m)));
      return node;
    }
    const about = h('span', { class: 'kind' }, facts(m));
    if (media.kind === 'DOCUMENT') {
      node.append(h('a', { href: media.url, download: fileName(m), class: 'file' }, said(fileName(m))), about, caption ?? '');
      return node;
    }
    const slot = h('span', { class: 'state', role: 'status' }, `Loading the ${label(m)}…`);
    node.append(slot, caption ?? '', about);
    this.load(media.url).then((blob) => {
      if (this.items.get(media.id) !== item) { URL.revokeObjectURL(blob); return; }
      item.blob = blob;
      const save = () => h('a', { href: blob, download: fileName(m), class: 'save' }, 'Download');
      slot.replaceWith(shown(m, blob, save));
      about.append(' · ', save());
    }).catch((error) => {
      // Tried again at the next render, with a fresh URL.
      if (this.items.get(media.id) === item) this.items.delete(media.id);
      slot.replaceWith(h('span', { class: 'state failed', role: 'status' }, `The ${label(m)} did not load: ${error.message}`));
    });
    return node;
  }

  async load(url) {
    const response = await fetch(url, { credentials: 'omit', cache: 'no-store' });
    if (!response.ok) {
      const code = (await response.json().catch(() => null))?.error?.code;
      throw new Error(`HTTP ${response.status}${code ? ` ${code}` : ''}`);
    }
    return URL.createObjectURL(await response.blob());
  }

  // When to read the conversation again: soon while a file is being fetched from
  // WhatsApp, and before a document's link expires; null when nothing waits.
  refreshIn(messages) {
    const waits = [];
    for (const m of messages) {
      if (m.media?.fetchState === 'PENDING') waits.push(3000);
      if (m.media?.kind === 'DOCUMENT' && m.media.url) waits.push(Math.max(5000, expiry(m.media.url) - Date.now() - 30000));
    }
    return waits.length ? Math.min(...waits) : null;
  }
}

function stateText(m) {
  const media = m.media;
  switch (media.fetchState) {
    case 'PENDING': return media.failureReason
      ? `Fetching the ${label(m)} from WhatsApp again (the last try failed: ${media.failureReason})…`
      : `Fetching the ${label(m)} from WhatsApp…`;
    case 'FAILED': return `The ${label(m)} could not be fetched: ${media.failureReason ?? 'no reason given'}`;
    case 'ERASED': return `The ${label(m)} was erased.`;
    default: return `The ${label(m)} is not available.`;
  }
}

// The file itself, from its blob: URL.
function shown(m, blob, save) {
  const alt = altOf(m);
  switch (m.media.kind) {
    case 'IMAGE':
    case 'STICKER':
      return h('button', { type: 'button', class: 'thumb', title: 'Show full size', 'aria-haspopup': 'dialog', onclick: () => fullSize(blob, alt, save()) },
        h('img', { src: blob, alt }));
    case 'AUDIO': return h('audio', { src: blob, controls: true, preload: 'metadata', 'aria-label': alt });
    case 'VIDEO': return h('video', { src: blob, controls: true, preload: 'metadata', 'aria-label': alt });
    default: return h('span');
  }
}

// The image at its own size in a modal dialog: Escape, the Close button or a click
// outside the image closes it, and focus goes back to the thumbnail.
function fullSize(blob, alt, save) {
  const close = h('button', { type: 'button', class: 'close' }, 'Close');
  const dialog = h('dialog', { class: 'viewer', 'aria-label': alt },
    h('div', { class: 'bar' }, said(alt, 'span', 'title'), save, close),
    h('div', { class: 'frame' }, h('img', { src: blob, alt })));
  const opener = document.activeElement;
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close(); });
  dialog.addEventListener('close', () => { dialog.remove(); if (opener?.isConnected) opener.focus(); });
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
}
