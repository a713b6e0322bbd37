// End to end in a real browser: the inbox page against a running `parley demo`.
// Usage: node inbox.mjs <url printed by the demo> <screenshot dir>
// The browser is Debian's Chromium (CHROMIUM_PATH, default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [url, shots = 'target/e2e-screenshots'] = process.argv.slice(2);
if (!url) throw new Error('usage: node inbox.mjs <demo url> [screenshot dir]');
mkdirSync(shots, { recursive: true });
setTimeout(() => { console.error('the browser run took over 200 s'); process.exit(1); }, 200000).unref();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const outside = [];
let step = 0;
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
page.setDefaultTimeout(30000);
const origin = new URL(url).origin;
// blob: URLs of the page's origin hold media files it loaded from Parley.
const ours = (u) => [origin, origin.replace('http', 'ws'), `blob:${origin}/`].some((o) => u.startsWith(o));
page.on('request', (r) => { if (!ours(r.url())) outside.push(r.url()); });
const downloads = [];
page.on('request', (r) => { if (r.url().startsWith(`${origin}/media/`)) downloads.push(r.url()); });
page.on('pageerror', (e) => { throw new Error(`page error: ${e.message}`); });
const shot = async (name) => page.screenshot({ path: `${shots}/${String(++step).padStart(2, '0')}-${name}.png`, fullPage: true });
const conversation = (name) => page.locator('#conversations li', { hasText: name }).first();
const check = (ok, what) => { if (!ok) throw new Error(what); console.log(`ok: ${what}`); };

// Sign in with the token of the URL's fragment.
await page.goto(url);
await page.locator('#who', { hasText: 'supervisor' }).waitFor();
check(!page.url().includes('token='), 'the token leaves the address bar');
await page.locator('#live.on').waitFor();
await page.locator('#conversations li').first().waitFor();
await shot('signed-in');

// A simulated customer's message arrives without a reload: the list marks the case it
// landed in.
const navigations = [];
page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
await page.evaluate(() => document.querySelectorAll('#conversations li.fresh').forEach((li) => li.classList.remove('fresh')));
await page.locator('#conversations li.fresh').first().waitFor({ timeout: 60000 });
check(navigations.length === 0, 'a new customer message showed up without reloading');
await shot('live-arrival');

// Arabic text reads right to left.
await conversation('نورة').waitFor({ timeout: 60000 });
const direction = await conversation('نورة').locator('.preview').evaluate((el) => getComputedStyle(el).direction);
check(direction === 'rtl', 'Arabic text is laid out right to left');

// The photo of a broken item: Parley fetched it from the (fake) Graph API; the page shows
// it inline, and full size on Enter.
await conversation('Priya').click();
const photo = page.locator('.msg figure.media.image img').first();
await photo.waitFor();
await page.waitForFunction(() => [...document.querySelectorAll('.msg figure.media.image img')]
  .some((img) => img.complete && img.naturalWidth > 0));
check(await photo.evaluate((img) => img.src.startsWith('blob:') && img.alt.includes('broken')),
  'the photo is rendered inline, its caption as alt text');
check(/image\/png · \d+ KB · Download/.test(await page.locator('.msg figure.media.image').first().innerText()), 'the photo shows its type and size, and a download link');
await page.locator('.triage .chip').first().waitFor();
await shot('image-and-triage');
await page.locator('.msg figure.media .thumb').first().focus();
await page.keyboard.press('Enter');
await page.waitForFunction(() => {
  const img = document.querySelector('dialog.viewer[open] img');
  return img?.complete && img.naturalWidth > 0 && img.width === img.naturalWidth;
});
check(true, 'Enter shows the photo at its full size');
await shot('image-full-size');
await page.keyboard.press('Escape');
await page.locator('dialog.viewer').waitFor({ state: 'detached' });
check(await page.evaluate(() => document.activeElement?.classList.contains('thumb')), 'Escape closes it, the focus back on the photo');
// An event of the conversation re-renders it: the photo stays, not downloaded again.
const before = downloads.length;
const photoBlob = await photo.getAttribute('src');
await photo.evaluate((img) => { img.dataset.kept = 'yes'; });
await page.locator('#note').fill('Photo received; asked the warehouse for a replacement.');
await page.locator('button', { hasText: 'Add note' }).click();
await page.locator('.notes li', { hasText: 'Photo received' }).waitFor();
check(await page.locator('.msg figure.media.image img[data-kept="yes"]').count() === 1 && downloads.length === before,
  'a re-render keeps the loaded photo without downloading it again');
// A file still being fetched from WhatsApp, or that could not be, shows where it stands
// instead of a broken image (the demo's photos are fetched at once, so these are drawn
// by the page's own code from what the API would answer).
const states = await page.evaluate(async () => {
  const { Shelf } = await import('/inbox/media.js');
  const shelf = new Shelf();
  return [['PENDING', null], ['PENDING', 'HTTP 503'], ['FAILED', 'HTTP 404 Not Found']].map(([fetchState, failureReason], i) => {
    const figure = shelf.figure({ kind: 'image', direction: 'INBOUND', content: null, media: { id: `state-${i}`, kind: 'IMAGE',
      mimeType: 'image/jpeg', size: null, fileName: null, caption: 'the box', fetchState, failureReason, url: null } });
    return { text: figure.textContent, images: figure.querySelectorAll('img').length };
  });
});
check(states[0].text.startsWith('Fetching the photo from WhatsApp') && states[1].text.includes('the last try failed: HTTP 503')
  && states[2].text.startsWith('The photo could not be fetched: HTTP 404') && states.every((s) => s.images === 0),
  'a file being fetched, or that could not be, shows its state and reason, not a broken image');

// Reply, and watch the delivery tick arrive.
await conversation('Kerry').click();
await page.locator('#conversation .head h2', { hasText: 'Kerry' }).waitFor();
check(await page.evaluate((src) => fetch(src).then(() => false, () => true), photoBlob), 'leaving the conversation frees the photo\'s blob: URL');
await page.locator('#reply').fill('Hi Kerry! A-10024 is on its way; it arrives tomorrow.');
await page.keyboard.press('Control+Enter');
const mine = page.locator('.msg.OUTBOUND', { hasText: 'A-10024 is on its way' });
await mine.waitFor();
await page.waitForFunction(() => [...document.querySelectorAll('.msg.OUTBOUND')].some((m) => m.textContent.includes('A-10024 is on its way') && ['DELIVERED', 'READ'].includes(m.dataset.status)));
check(['✓✓'].includes(await mine.locator('.tick').innerText()), 'the reply shows the delivered tick');
check((await page.locator('#reply').inputValue()) === '', 'the composer is empty after sending');
await page.locator('#note').fill('Promised delivery tomorrow; check tracking if they write again.');
await page.locator('button', { hasText: 'Add note' }).click();
await page.locator('.notes li', { hasText: 'Promised delivery tomorrow' }).waitFor();
check(true, 'an internal note was added');
await shot('reply-delivered');

// A refused reply shows its error: an empty reply is refused by the API...
await page.locator('#reply').fill('   ');
await page.locator('#composer button[type="submit"]').click();
await page.locator('#reply-error', { hasText: 'invalid_input' }).waitFor();
check(true, 'an empty reply is refused with its code');
// ...and a free-form reply outside the 24-hour window (Omar wrote 26 hours ago by Meta's
// clock) is refused by Parley before any call to Meta.
await conversation('Omar').click();
await page.locator('#reply').fill('Of course, what is the new address?');
await page.locator('#composer button[type="submit"]').click();
await page.locator('#reply-error', { hasText: 'window_closed' }).waitFor();
check(true, 'a reply outside the 24-hour window is refused with its code');
await shot('refused-reply');

// The supervisor approves the assistant's held draft.
await page.locator('[data-view="approvals"]').click();
const held = page.locator('#held li[data-id]').first();
await held.waitFor();
await shot('approval-queue');
const heldId = await held.getAttribute('data-id');
await held.locator('button', { hasText: 'Approve' }).click();
await page.locator('#toast', { hasText: 'Approved' }).waitFor();
await page.waitForFunction((id) => !document.querySelector(`#held li[data-id="${id}"]`), heldId);
check(true, 'the held draft was approved and left the queue');
await shot('approved');

// Reports, reached with g r: the demo's conversations are counted, drawn per day, and
// the figures download as CSV.
await page.keyboard.press('g');
await page.keyboard.press('r');
await page.locator('#reports:not([hidden])').waitFor();
const created = page.locator('#summary li[data-figure="Conversations created"] .value');
await created.waitFor();
const count = Number(await created.innerText());
check(count > 0, `the report counts ${count} conversations created`);
check(await page.locator('#summary li[data-figure="Conversations created"] .kind').innerText().then((t) => t.startsWith('previous: ')),
  'each figure shows the previous period');
const bars = await page.locator('#chart svg rect.bar').count();
check(bars >= 1, `the chart draws ${bars} bar(s)`);
await page.locator('#breakdown table tbody tr').first().waitFor();
check(true, 'the breakdown by team has rows');
const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#csv').click()]);
check(download.suggestedFilename().endsWith('.csv'), 'Download CSV saves a .csv file');
await shot('reports');

// Keyboard and phone: j/k move through the list; the list fits a phone's width.
await page.keyboard.press('g');
await page.keyboard.press('i');
await page.locator('#conversations li').first().focus();
await page.keyboard.press('j');
await page.keyboard.press('Enter');
await page.locator('#conversation .head h2').waitFor();
await page.setViewportSize({ width: 390, height: 844 });
await shot('phone');

check(outside.length === 0, `no request left the page's origin ${outside.join(' ')}`);
await browser.close();
