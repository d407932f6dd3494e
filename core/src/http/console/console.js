// The zoe-session admin console. Plain DOM, no framework, no markup from strings: every value
// from the store is set with textContent, and the page's CSP requires Trusted Types, so an
// HTML sink would throw rather than render. The admin key lives in this tab's sessionStorage
// and leaves the page only as `Authorization: Bearer` on calls to this origin.
'use strict';

(() => {
  const KEY_SLOT = 'zoe-session.admin-key';
  const PAGE_SIZE = 20;
  const STATS_EVERY_MS = 10000;
  const CONFIRM_PHRASE = 'log out everyone';
  // The API lives next to /admin/, wherever the service is mounted.
  const API_ROOT = new URL('../', window.location.href);

  const $ = (id) => document.getElementById(id);

  let adminKey = sessionStorage.getItem(KEY_SLOT);
  let statsTimer = null;
  // Keyset pagination: the cursor that opened each page seen so far (null for the first).
  let users = { prefix: '', cursors: [null], next: null };
  let openUser = null;

  class ApiFailure extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + adminKey, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(new URL(path, API_ROOT), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        // The key is the credential; a session cookie of this origin must not ride along.
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
        referrerPolicy: 'no-referrer',
      });
    } catch (err) {
      throw new ApiFailure(0, 'The service could not be reached (' + err.message + ').');
    }
    let json = null;
    try {
      json = await response.json();
    } catch (_) {
      // Not JSON: reported below by status.
    }
    if (!response.ok) {
      const detail = json && typeof json.detail === 'string'
        ? json.detail
        : 'the service answered with status ' + response.status;
      throw new ApiFailure(response.status, sentence(detail));
    }
    return json;
  }

  function sentence(text) {
    const capital = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?]$/.test(capital) ? capital : capital + '.';
  }

  function say(text) {
    $('error').textContent = '';
    $('result').textContent = text;
  }

  function fail(err) {
    $('result').textContent = '';
    $('error').textContent = err instanceof ApiFailure ? err.message : 'Unexpected error: ' + err;
    if (err instanceof ApiFailure && err.status === 401) signOut(err.message);
  }

  function time(rfc3339) {
    if (!rfc3339) return 'never';
    return rfc3339.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function button(text, className, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    if (className) b.className = className;
    b.addEventListener('click', onClick);
    return b;
  }

  // ---- sign in / out

  async function signIn(key) {
    adminKey = key;
    try {
      const stats = await api('GET', 'sessions/stats');
      sessionStorage.setItem(KEY_SLOT, key);
      $('signin-error').textContent = '';
      $('signin-panel').hidden = true;
      $('console').hidden = false;
      $('signout').hidden = false;
      showStats(stats);
      statsTimer = window.setInterval(refreshStats, STATS_EVERY_MS);
    } catch (err) {
      adminKey = null;
      sessionStorage.removeItem(KEY_SLOT);
      $('signin-error').textContent = err instanceof ApiFailure ? err.message : String(err);
      return;
    }
    await searchUsers($('prefix').value).catch(fail);
  }

  function signOut(why) {
    adminKey = null;
    sessionStorage.removeItem(KEY_SLOT);
    if (statsTimer !== null) window.clearInterval(statsTimer);
    statsTimer = null;
    $('console').hidden = true;
    $('signout').hidden = true;
    $('signin-panel').hidden = false;
    $('key').value = '';
    $('signin-error').textContent = why || '';
  }

  // ---- stats

  function showStats(stats) {
    $('stat-active-sessions').textContent = String(stats.active_sessions);
    $('stat-active-users').textContent = String(stats.active_users);
    $('stat-expired').textContent = String(stats.expired_awaiting_cleanup);
    $('stat-last-cleanup').textContent = time(stats.last_cleanup_at);
    $('stats-updated').textContent = new Date().toLocaleTimeString();
  }

  async function refreshStats() {
    try {
      showStats(await api('GET', 'sessions/stats'));
    } catch (err) {
      fail(err);
    }
  }

  // ---- users

  async function loadUsers() {
    const cursor = users.cursors[users.cursors.length - 1];
    const query = new URLSearchParams({ prefix: users.prefix, limit: String(PAGE_SIZE) });
    if (cursor !== null) query.set('after', cursor);
    const page = await api('GET', 'sessions/users?' + query.toString());
    users.next = page.next_after;
    const rows = page.users.map((user) => {
      const tr = document.createElement('tr');
      const name = document.createElement('td');
      name.append(button(user.user_id, 'link user-open', () => openSessions(user.user_id)));
      tr.append(name, cell(String(user.sessions)), cell(time(user.last_activity)));
      return tr;
    });
    $('users').tBodies[0].replaceChildren(...rows);
    $('users-empty').hidden = rows.length > 0;
    $('users-prev').disabled = users.cursors.length === 1;
    $('users-next').disabled = users.next === null;
    $('users-page').textContent = 'page ' + users.cursors.length;
  }

  async function searchUsers(prefix) {
    say('');
    users = { prefix, cursors: [null], next: null };
    await loadUsers();
  }

  // ---- a user's sessions

  async function openSessions(userId) {
    openUser = userId;
    try {
      await loadSessions();
    } catch (err) {
      fail(err);
    }
  }

  async function loadSessions() {
    if (openUser === null) return;
    const list = await api('GET', 'sessions/user/' + encodeURIComponent(openUser) + '/sessions');
    $('sessions-user').textContent = openUser;
    const rows = list.sessions.map((s) => {
      const meta = s.metadata || {};
      const { role, permissions, device, user_agent: userAgent, ...rest } = meta;
      const tr = document.createElement('tr');
      tr.dataset.id = s.id;
      const other = Object.keys(rest).length ? JSON.stringify(rest) : '';
      tr.append(
        cell(s.id, 'mono session-id'),
        cell(time(s.created_at)),
        cell(time(s.last_activity)),
        cell(time(s.expires_at)),
        cell(time(s.absolute_expires_at)),
        cell(role === undefined ? '' : String(role)),
        cell(Array.isArray(permissions) ? permissions.join(', ') : ''),
        cell(device !== undefined ? String(device) : (userAgent !== undefined ? String(userAgent) : '')),
        cell(other, 'mono'),
      );
      const actions = document.createElement('td');
      actions.append(button('Revoke', 'danger revoke', () => revokeSession(s.id)));
      tr.append(actions);
      return tr;
    });
    $('sessions').tBodies[0].replaceChildren(...rows);
    $('sessions-empty').hidden = rows.length > 0;
    $('sessions-panel').hidden = false;
  }

  // ---- actions

  async function act(work) {
    try {
      say(await work());
    } catch (err) {
      fail(err);
      return;
    }
    // Each action changes what is shown: refresh all of it. The action's result stays up;
    // a refresh that fails adds its own message.
    try {
      await Promise.all([refreshStats(), loadUsers(), loadSessions()]);
    } catch (err) {
      $('error').textContent = err instanceof ApiFailure ? err.message : String(err);
    }
  }

  function revokeSession(id) {
    return act(async () => {
      await api('DELETE', 'sessions/' + encodeURIComponent(id));
      return 'Session ' + id + ' revoked.';
    });
  }

  function revokeUser() {
    const userId = openUser;
    return act(async () => {
      const result = await api('DELETE', 'sessions/user/' + encodeURIComponent(userId));
      return 'Revoked ' + result.invalidated + ' session(s) of ' + userId + '.';
    });
  }

  function cleanup() {
    return act(async () => {
      const result = await api('POST', 'sessions/cleanup');
      return 'Cleanup deleted ' + result.deleted + ' expired session(s).';
    });
  }

  function logoutEveryone() {
    if ($('logout-confirm-text').value.trim() !== CONFIRM_PHRASE) {
      $('result').textContent = '';
      $('error').textContent = 'Nothing was done: type "' + CONFIRM_PHRASE + '" to confirm the mass logout.';
      return Promise.resolve();
    }
    $('logout-confirm').hidden = true;
    $('logout-confirm-text').value = '';
    return act(async () => {
      const result = await api('DELETE', 'sessions?all=true');
      return 'Logged out everyone: ' + result.invalidated + ' session(s) ended.';
    });
  }

  // ---- wiring

  document.addEventListener('DOMContentLoaded', () => {
    $('signin').addEventListener('submit', (event) => {
      event.preventDefault();
      signIn($('key').value);
    });
    $('signout').addEventListener('click', () => signOut('Signed out.'));
    $('refresh').addEventListener('click', refreshStats);
    $('user-search').addEventListener('submit', (event) => {
      event.preventDefault();
      searchUsers($('prefix').value).catch(fail);
    });
    $('users-next').addEventListener('click', () => {
      if (users.next === null) return;
      users.cursors.push(users.next);
      loadUsers().catch(fail);
    });
    $('users-prev').addEventListener('click', () => {
      if (users.cursors.length > 1) users.cursors.pop();
      loadUsers().catch(fail);
    });
    $('revoke-all').addEventListener('click', revokeUser);
    $('cleanup').addEventListener('click', cleanup);
    $('logout-all').addEventListener('click', () => {
      $('logout-confirm').hidden = false;
      $('logout-confirm-text').focus();
    });
    $('logout-cancel').addEventListener('click', () => {
      $('logout-confirm').hidden = true;
      $('logout-confirm-text').value = '';
      say('Mass logout cancelled; nothing was done.');
    });
    $('logout-confirm-button').addEventListener('click', logoutEveryone);
    if (adminKey !== null) signIn(adminKey);
  });
})();
