// Live updates from the coordinator's event stream (GET /v1/events,
// server-sent events): `hello` when a connection opens, `change` with the
// kinds and ids of what changed, coalesced by the server.
//
// Pages subscribe with useChanges(handler): the handler gets the changes
// gathered over ~150 ms (or a `reconnected` flag after the stream came back,
// when anything may have changed) and refetches only what it shows. While
// the tab is hidden, changes are gathered and delivered when it is shown.
import { api } from './api.js';
import { useEffect, useRef, useState } from './html.js';

const DEBOUNCE_MS = 150;
const MAX_WAIT_MS = 1000;

let source = null;
let state = 'connecting'; // connecting | live | reconnecting
let lostSinceLive = false;
let retryTimer = null;
let retryDelayMs = 1000;
const stateListeners = new Set();
const changeListeners = new Set();

function setState(next) {
  if (state === next) return;
  state = next;
  for (const fn of stateListeners) fn(state);
}

function deliver(changes, reconnected) {
  for (const fn of changeListeners) fn(changes, reconnected);
}

function opened() {
  retryDelayMs = 1000;
  if (lostSinceLive) deliver([], true);
  lostSinceLive = false;
  setState('live');
}

export function startLive() {
  if (source || typeof EventSource === 'undefined') return;
  clearTimeout(retryTimer);
  source = new EventSource('/v1/events', { withCredentials: true });
  source.addEventListener('open', opened);
  source.addEventListener('hello', opened);
  source.addEventListener('change', (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (data && Array.isArray(data.changes)) deliver(data.changes, false);
  });
  source.addEventListener('error', () => {
    if (state === 'live') lostSinceLive = true;
    setState(state === 'connecting' && !lostSinceLive ? 'connecting' : 'reconnecting');
    if (source && source.readyState === EventSource.CLOSED) {
      // The browser gives up on an answer other than 200 (a 401, a proxy's
      // 502): ask the session (a 401 shows the login page) and try again
      // with back-off.
      source = null;
      lostSinceLive = true;
      setState('reconnecting');
      api.session().catch(() => {});
      retryTimer = setTimeout(startLive, retryDelayMs * (0.5 + Math.random()));
      retryDelayMs = Math.min(retryDelayMs * 2, 30000);
    }
  });
}

export function stopLive() {
  clearTimeout(retryTimer);
  if (source) source.close();
  source = null;
  lostSinceLive = false;
  setState('connecting');
}

export function useLiveState() {
  const [value, setValue] = useState(state);
  useEffect(() => {
    stateListeners.add(setValue);
    setValue(state);
    return () => stateListeners.delete(setValue);
  }, []);
  return value;
}

// handler(changes, reconnected) with the changes of the last ~150 ms. The
// latest handler is used, so it may close over the page's current state.
export function useChanges(handler) {
  const handlerRef = useRef(handler);
  handlerRef.current = handler;
  useEffect(() => {
    let pending = [];
    let reconnected = false;
    let timer = null;
    let firstAt = 0;
    const flush = () => {
      timer = null;
      if (document.hidden) return; // delivered on visibilitychange
      const changes = pending;
      const wasReconnected = reconnected;
      pending = [];
      reconnected = false;
      firstAt = 0;
      if (changes.length || wasReconnected) handlerRef.current(changes, wasReconnected);
    };
    const listener = (changes, isReconnect) => {
      pending.push(...changes);
      // {"kind": "all"}: more changed than the server lists; read the page afresh.
      reconnected = reconnected || isReconnect || changes.some((c) => c.kind === 'all');
      const now = Date.now();
      if (!firstAt) firstAt = now;
      clearTimeout(timer);
      timer = setTimeout(flush, now - firstAt >= MAX_WAIT_MS ? 0 : DEBOUNCE_MS);
    };
    const onVisible = () => {
      if (!document.hidden && (pending.length || reconnected)) flush();
    };
    changeListeners.add(listener);
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      clearTimeout(timer);
      changeListeners.delete(listener);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, []);
}

// The groups a batch of changes touches, and whether one of them names no group.
export function changedGroups(changes) {
  const groups = new Set();
  let unscoped = false;
  for (const change of changes) {
    if (change.group) groups.add(change.group);
    else unscoped = true;
  }
  return { groups, unscoped };
}
