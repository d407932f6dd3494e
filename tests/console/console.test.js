// The admin console in a real browser: Debian's Chromium, headless, driven by playwright-core,
// against the `serve` that tests/admin_console.rs started. That test sets ZOE_CONSOLE_URL (the
// server's base URL), ZOE_ADMIN_KEY and ZOE_SCREENSHOTS (a directory for the screenshots it
// keeps as artifacts). The tests share one server and run in order.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = required('ZOE_CONSOLE_URL');
const KEY = required('ZOE_ADMIN_KEY');
const SHOTS = process.env.ZOE_SCREENSHOTS || 'screenshots';
const CHROMIUM = process.env.ZOE_CHROMIUM || '/usr/bin/chromium';
// The server's pinned clock (START_MS in testing/support) as the console shows it.
const SERVER_TIME = '2027-01-15 08:00:00 UTC';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/admin_console.rs`);
  return value;
}

let browser;
let context;
let page;
// Everything the page sent, and every browser-side problem it had.
const requests = [];
const problems = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root Chromium needs --no-sandbox; the network flags keep it from calling out of
    // this closed network (refused connections would only slow it down).
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  page = await context.newPage();
  page.on('request', (request) => requests.push(request));
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    // Chromium logs every non-2xx answer ("Failed to load resource"): the refusals the tests
    // provoke, and /favicon.ico, which the API answers with a JSON 404.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      problems.push(`console error: ${message.text()}`);
    }
  });
});

after(async () => {
  await browser?.close();
});

// ---- the API, called directly (what an application would do)

async function api(method, path, { body, headers = {} } = {}) {
  const response = await fetch(BASE + path, {
    method,
    headers: {
      Authorization: `Bearer ${KEY}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

async function login(userId, metadata) {
  const { status, json } = await api('POST', '/sessions/create', { body: { user_id: userId, metadata } });
  assert.equal(status, 200, JSON.stringify(json));
  return json;
}

async function tokenStatus(token) {
  const response = await fetch(BASE + '/sessions/validate', { headers: { 'X-Session-ID': token } });
  return response.status;
}

// ---- the page

async function text(selector) {
  return (await page.locator(selector).textContent()) ?? '';
}

/** Waits until `selector`'s text satisfies `check` (a string for equality, or a RegExp). */
async function waitForText(selector, check, timeout = 5000) {
  const source = check instanceof RegExp ? check.source : null;
  const flags = check instanceof RegExp ? check.flags : null;
  try {
    await page.waitForFunction(
      ([sel, exact, src, fl]) => {
        const node = document.querySelector(sel);
        if (!node) return false;
        return src === null ? node.textContent === exact : new RegExp(src, fl).test(node.textContent);
      },
      [selector, check instanceof RegExp ? null : check, source, flags],
      { timeout },
    );
  } catch (err) {
    throw new Error(`${selector}: expected ${check}, saw ${JSON.stringify(await text(selector))}`);
  }
}

/** The active-session count as the API reports it (the page may not have refreshed yet). */
async function activeSessions() {
  return Number((await api('GET', '/sessions/stats')).json.active_sessions);
}

async function signIn(key) {
  await page.fill('#key', key);
  await page.click('#signin-button');
}

async function search(prefix) {
  await page.fill('#prefix', prefix);
  await page.click('#search');
}

async function userRows() {
  return page.locator('#users tbody tr .user-open').allTextContents();
}

async function openUser(userId) {
  await page.locator('#users tbody .user-open', { hasText: userId }).first().click();
  await waitForText('#sessions-user', userId);
}

async function sessionRowIds() {
  return page.locator('#sessions tbody tr .session-id').allTextContents();
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

// ---- the tests

test('a wrong key gives a clear message and shows nothing', async () => {
  await page.goto(BASE + '/admin/');
  await signIn('not-the-admin-key');
  await waitForText('#signin-error', 'The admin key is not valid.');
  assert.equal(await page.locator('#console').isVisible(), false);
  await shot('wrong-key');
});

test('signing in with the key shows the stats, and they move after a create', async () => {
  await page.goto(BASE + '/admin/');
  requests.length = 0;
  await signIn(KEY);
  await page.locator('#console').waitFor({ state: 'visible' });
  const before = await activeSessions();
  await waitForText('#stat-active-sessions', String(before));

  await login('stats-user');
  await page.click('#refresh');
  await waitForText('#stat-active-sessions', String(before + 1));

  // Without a click: the page refreshes the stats on its own timer.
  await login('stats-user');
  await waitForText('#stat-active-sessions', String(before + 2), 15000);
});

test('the key is sent only as a bearer header: never in a URL, a cookie or localStorage', async () => {
  const apiCalls = requests.filter((r) => new URL(r.url()).pathname.startsWith('/sessions/'));
  assert.ok(apiCalls.length > 0, 'the page called the API');
  for (const request of apiCalls) {
    assert.equal(await request.headerValue('authorization'), `Bearer ${KEY}`, request.url());
  }
  for (const request of requests) {
    assert.ok(!request.url().includes(KEY), `key in a URL: ${request.url()}`);
  }
  assert.ok(!page.url().includes(KEY));
  assert.deepEqual(await context.cookies(), []);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  // Positive control: where the key is kept, these probes do see it.
  assert.equal(await page.evaluate(() => sessionStorage.getItem('zoe-session.admin-key')), KEY);
});

test('users are found by prefix and paginated', async () => {
  await login('prefix-alice');
  await login('prefix-bob');
  await login('other-carol');
  await search('prefix-');
  await waitForText('#users-page', 'page 1');
  await page.waitForFunction(() => document.querySelectorAll('#users tbody tr').length === 2);
  assert.deepEqual(await userRows(), ['prefix-alice', 'prefix-bob']);

  for (let i = 0; i < 25; i += 1) await login(`page-${String(i).padStart(3, '0')}`);
  await search('page-');
  await page.waitForFunction(() => document.querySelectorAll('#users tbody tr').length === 20);
  assert.equal((await userRows())[0], 'page-000');
  await page.click('#users-next');
  await waitForText('#users-page', 'page 2');
  await page.waitForFunction(() => document.querySelectorAll('#users tbody tr').length === 5);
  assert.deepEqual(await userRows(), ['page-020', 'page-021', 'page-022', 'page-023', 'page-024']);
  assert.equal(await page.locator('#users-next').isDisabled(), true);
  await page.click('#users-prev');
  await waitForText('#users-page', 'page 1');
  assert.equal((await userRows())[19], 'page-019');
});

test("a user's sessions are listed without tokens, and revoking one removes it and kills its token", async () => {
  const first = await login('revoke-dana', { role: 'developer', permissions: ['read', 'write'], device: 'Firefox on Linux' });
  const second = await login('revoke-dana', { role: 'viewer' });
  await search('revoke-');
  await openUser('revoke-dana');
  await page.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 2);
  assert.deepEqual((await sessionRowIds()).sort(), [first.id, second.id].sort());
  const row = page.locator(`#sessions tbody tr[data-id="${first.id}"]`);
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[1], SERVER_TIME, 'created');
  assert.equal(cells[5], 'developer');
  assert.equal(cells[6], 'read, write');
  assert.equal(cells[7], 'Firefox on Linux');
  const body = await page.locator('body').textContent();
  for (const session of [first, second]) {
    const secret = session.session_id.split('.')[1];
    assert.ok(!body.includes(secret), 'a token is on the page');
  }
  await shot('console');

  assert.equal(await tokenStatus(first.session_id), 200);
  await row.locator('.revoke').click();
  await waitForText('#result', `Session ${first.id} revoked.`);
  await page.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 1);
  assert.deepEqual(await sessionRowIds(), [second.id]);
  assert.equal(await tokenStatus(first.session_id), 401);
  assert.equal(await tokenStatus(second.session_id), 200);

  await page.click('#revoke-all');
  await waitForText('#result', 'Revoked 1 session(s) of revoke-dana.');
  await page.locator('#sessions-empty').waitFor({ state: 'visible' });
  assert.equal(await tokenStatus(second.session_id), 401);
});

test('a user id and metadata holding HTML are shown as text', async () => {
  const evil = '<img src=x id=injected onerror="window.__pwned=1"><script>window.__pwned=2</script>';
  await login(evil, { role: '<b id=bold>admin</b>', note: '<script>window.__pwned=3</script>' });
  await search('<img');
  await waitForText('#users tbody .user-open', evil);
  await openUser(evil);
  await page.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 1);
  const cells = await page.locator('#sessions tbody tr td').allTextContents();
  assert.equal(cells[5], '<b id=bold>admin</b>');
  assert.ok(cells[8].includes('<script>window.__pwned=3</script>'));
  assert.equal(await page.locator('#injected').count(), 0);
  assert.equal(await page.locator('#bold').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await shot('html-as-text');
});

test('the policy forbids inline script: injected code does not run', async () => {
  const inject = () => {
    const inline = document.createElement('script');
    try {
      inline.textContent = 'window.__inline = 1';
      document.body.append(inline);
    } catch (_) {
      // Trusted Types refuses the assignment itself.
    }
    return new Promise((resolve) => setTimeout(() => resolve(window.__inline), 100));
  };
  const earlier = problems.length;
  assert.equal(await page.evaluate(inject), undefined);
  // Drop the policy reports this probe caused; any other problem still fails the last test.
  const caused = problems.splice(earlier);
  assert.ok(caused.some((p) => /TrustedScript|Content Security Policy/.test(p)), caused.join('\n'));
  problems.push(...caused.filter((p) => !/TrustedScript|Content Security Policy/.test(p)));

  // Positive control: the same page with its policy bypassed does run the injected script,
  // so the probe would see an injection that got through.
  const open = await browser.newContext({ bypassCSP: true });
  try {
    const unguarded = await open.newPage();
    await unguarded.goto(BASE + '/admin/');
    assert.equal(await unguarded.evaluate(inject), 1);
  } finally {
    await open.close();
  }
});

test('cleanup runs and reports its result', async () => {
  await page.click('#cleanup');
  await waitForText('#result', /^Cleanup deleted \d+ expired session\(s\)\.$/);
  // The result is shown before the stats refresh that follows it lands: wait for the time.
  await waitForText('#stat-last-cleanup', SERVER_TIME);
});

test('the mass logout needs an explicit confirmation', async () => {
  const survivor = await login('mass-erin');
  // The count comes from the API, and the page is awaited until it shows that same count: a
  // nonzero match alone would accept the figure shown before this refresh landed.
  const count = await activeSessions();
  assert.ok(count > 0);
  await page.click('#refresh');
  await waitForText('#stat-active-sessions', String(count));

  // Opened, then cancelled: nothing happens.
  await page.click('#logout-all');
  await page.locator('#logout-confirm').waitFor({ state: 'visible' });
  await shot('mass-logout-confirm');
  await page.click('#logout-cancel');
  await waitForText('#result', 'Mass logout cancelled; nothing was done.');
  assert.equal(await tokenStatus(survivor.session_id), 200);

  // Confirmed without the phrase: nothing happens either.
  await page.click('#logout-all');
  await page.fill('#logout-confirm-text', 'yes');
  await page.click('#logout-confirm-button');
  await waitForText('#error', 'Nothing was done: type "log out everyone" to confirm the mass logout.');
  assert.equal(await tokenStatus(survivor.session_id), 200);
  assert.equal(await activeSessions(), count);

  // Confirmed: every session ends.
  await page.fill('#logout-confirm-text', 'log out everyone');
  await page.click('#logout-confirm-button');
  await waitForText('#result', `Logged out everyone: ${count} session(s) ended.`);
  await waitForText('#stat-active-sessions', '0');
  assert.equal(await tokenStatus(survivor.session_id), 401);
});

test('an API error is shown as its sentence', async () => {
  // Another operator rotates the key away under this page: the next call is refused, and
  // the page says why and asks for the key again.
  await page.evaluate(() => sessionStorage.setItem('zoe-session.admin-key', 'stale-key'));
  await page.reload();
  await waitForText('#signin-error', 'The admin key is not valid.');
  assert.equal(await page.locator('#console').isVisible(), false);
});

// Issue 27, finding 1 (login CSRF): a page on another site auto-submits a form that posts an
// attacker's token to rotate?set_cookie=true. The browser must end up without our cookie.
// Positive control: the same form served from our own origin does get the cookie set, so the
// check would see a planted one.
test("a cross-site form cannot plant a session cookie in the browser", async () => {
  const formPage = (token) => `<!doctype html><form id="f" method="POST"
      action="${BASE}/sessions/${token}/rotate?set_cookie=true"></form>
      <script>document.getElementById('f').submit()</script>`;
  const plant = async (pageUrl) => {
    const created = await api('POST', '/sessions/create', { body: { user_id: 'mallory' } });
    assert.equal(created.status, 200);
    const token = created.json.session_id;
    const jar = await browser.newContext();
    await jar.route(pageUrl, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: formPage(token) }));
    const victim = await jar.newPage();
    const answer = victim.waitForResponse((r) => r.url().includes('/rotate'));
    await victim.goto(pageUrl);
    const status = (await answer).status();
    const cookies = await jar.cookies(BASE);
    await jar.close();
    return { status, cookies: cookies.filter((c) => c.name.endsWith('zoe_session')), token };
  };

  const attack = await plant('http://attacker.test/login.html');
  assert.equal(attack.status, 403);
  assert.deepEqual(attack.cookies, [], 'no session cookie was stored for our origin');
  assert.equal(await tokenStatus(attack.token), 200, 'nothing was done for the request');

  const own = await plant(`${BASE}/own-form.html`);
  assert.equal(own.status, 200);
  assert.equal(own.cookies.length, 1, 'our own origin may set the cookie');
});

test('the page ran without script errors or policy violations', () => {
  assert.deepEqual(problems, []);
});
