// Small building blocks shared by the pages.
import { html, useEffect, useRef, useState } from '../html.js';
import { t } from '../i18n/index.js';
import { fmtDateTime, fmtDuration, fmtRelative, isoTime, viewerZone } from '../format.js';

export function Loading() {
  return html`<p class="muted" role="status">${t('common.loading')}</p>`;
}

export function ErrorBox({ error, onRetry }) {
  if (!error) return null;
  return html`<div class="error-box" role="alert" data-testid="error">
    <span>${error.message || String(error)}</span>
    ${onRetry && html` <button type="button" class="link-button" onClick=${onRetry}>${t('common.retry')}</button>`}
  </div>`;
}

// A badge: kind is one of ok, warn, bad, info, muted.
export function Badge({ kind = 'muted', testid, title, children }) {
  return html`<span class=${`badge badge-${kind}`} data-testid=${testid} title=${title}>${children}</span>`;
}

// A moment in the viewer's zone (with the zone named); the relative age in its title.
export function Time({ ms, zone, relative = false }) {
  if (!ms) return html`<span class="muted">—</span>`;
  const absolute = fmtDateTime(ms, zone);
  return html`<time datetime=${isoTime(ms)} title=${relative ? absolute : fmtRelative(ms)}>
    ${relative ? fmtRelative(ms) : absolute}</time>`;
}

// The time since `ms`, ticking every few seconds.
export function Age({ ms, now }) {
  if (!ms) return html`<span class="muted">—</span>`;
  return html`<time datetime=${isoTime(ms)} title=${fmtDateTime(ms)}>${fmtDuration(Math.max(0, now - ms))}</time>`;
}

// Date.now(), refreshed every `periodMs`, for ages that move on their own.
export function useNow(periodMs = 5000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), periodMs);
    return () => clearInterval(timer);
  }, [periodMs]);
  return now;
}

export function Section({ id, title, count, actions, children, testid }) {
  return html`<section class="panel" aria-labelledby=${`${id}-title`} data-testid=${testid}>
    <div class="panel-head">
      <h2 id=${`${id}-title`}>${title}${count !== undefined && html` <span class="count">(${count})</span>`}</h2>
      ${actions && html`<div class="panel-actions">${actions}</div>`}
    </div>
    ${children}
  </section>`;
}

export function ZoneNote() {
  return html`<p class="muted small">${t('common.times_in_zone', { zone: viewerZone() })}</p>`;
}

// The page's <h1>, focused when the page opens so that a screen reader
// announces where the user landed.
export function PageTitle({ children, testid, id = 'page-title' }) {
  const ref = useRef(null);
  useEffect(() => {
    if (ref.current && document.activeElement === document.body) ref.current.focus({ preventScroll: true });
  }, []);
  return html`<h1 id=${id} tabindex="-1" ref=${ref} data-testid=${testid}>${children}</h1>`;
}

// { data, error, loading, reload } for an async fetcher; the last data stays
// while a reload runs, so live refreshes never flash a spinner.
export function useResource(fetcher, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const generation = useRef(0);
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;
  const reload = () => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true }));
    return fetcherRef.current().then(
      (data) => {
        if (mine === generation.current) setState({ data, error: null, loading: false });
      },
      (error) => {
        if (mine === generation.current) setState((s) => ({ data: s.data, error, loading: false }));
      },
    );
  };
  useEffect(() => {
    setState({ data: undefined, error: null, loading: true });
    reload();
    return () => {
      generation.current++;
    };
  }, deps);
  return { ...state, reload };
}

// Runs fn at most once per `periodMs` (the last call within a period runs at its end).
export function useThrottle(fn, periodMs) {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const state = useRef({ last: 0, timer: null });
  useEffect(() => () => clearTimeout(state.current.timer), []);
  return () => {
    const s = state.current;
    const wait = s.last + periodMs - Date.now();
    if (wait <= 0) {
      s.last = Date.now();
      fnRef.current();
    } else if (!s.timer) {
      s.timer = setTimeout(() => {
        s.timer = null;
        s.last = Date.now();
        fnRef.current();
      }, wait);
    }
  };
}

export const hrefGroup = (name) => `#/groups/${encodeURIComponent(name)}`;
export const hrefInstance = (id) => `#/instances/${encodeURIComponent(id)}`;
export const hrefLaunchConfiguration = (id) => `#/launch-configurations/${encodeURIComponent(id)}`;
