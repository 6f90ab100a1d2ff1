// The coordinator's admin API (docs/api.md) as the console uses it. Every
// request carries the session cookie and X-Tide-Console (the server accepts
// the cookie only with that header, so another site cannot forge a request);
// a 401 from any request sends the app to the login page.

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || '';
  }
}

const unauthorizedListeners = new Set();

// fn() runs whenever a request is answered 401.
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

export async function request(method, path, body) {
  const headers = { 'X-Tide-Console': '1', Accept: 'application/json' };
  const init = { method, credentials: 'same-origin', headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, `network: ${error.message}`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401) {
    for (const fn of unauthorizedListeners) fn();
  }
  if (!response.ok) {
    const message = data && typeof data.error === 'string' ? data.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, message, data && data.field);
  }
  return data;
}

const get = (path) => request('GET', path);
const post = (path, body) => request('POST', path, body ?? {});
const seg = encodeURIComponent;

function query(params) {
  const parts = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '' || value === false) continue;
    parts.push(value === true ? seg(key) : `${seg(key)}=${seg(value)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

export const api = {
  // session (served by the coordinator beside the console's files)
  session: () => get('/console/session'),
  login: (token) => request('POST', '/console/login', { token }),
  logout: () => request('POST', '/console/logout'),

  groups: () => get('/v1/groups').then((d) => d.groups),
  group: (g) => get(`/v1/groups/${seg(g)}`),
  patchGroup: (g, fields) => request('PATCH', `/v1/groups/${seg(g)}`, fields),
  enableGroup: (g, enable) => post(`/v1/groups/${seg(g)}/${enable ? 'enable' : 'disable'}`),
  groupMetrics: (g) => get(`/v1/groups/${seg(g)}/metrics`),

  history: (g, since) => get(`/v1/groups/${seg(g)}/history${query({ since })}`),
  // `metrics`: the metrics to include, comma-separated (all when absent).
  fleetHistory: (since, step, metrics) => get(`/v1/history${query({ since, step, metrics })}`),

  instances: (g, all) => get(`/v1/instances${query({ group: g, all })}`).then((d) => d.instances),
  instance: (id) => get(`/v1/instances/${seg(id)}`),
  detach: (id, decrement) => post(`/v1/instances/${seg(id)}/detach`, { decrement_desired: decrement }),
  terminate: (id, decrement) => post(`/v1/instances/${seg(id)}/terminate`, { decrement_desired: decrement }),
  protect: (id, on) => post(`/v1/instances/${seg(id)}/protection`, { protected: on }),

  activities: (g, filter = {}) =>
    get(`/v1/groups/${seg(g)}/activities${query(filter)}`).then((d) => d.activities),

  launchConfigurations: () => get('/v1/launch-configurations').then((d) => d.launch_configurations),

  policies: (g) => get(`/v1/groups/${seg(g)}/policies`).then((d) => d.policies),
  executePolicy: (g, name, honourCooldown) =>
    post(`/v1/groups/${seg(g)}/policies/${seg(name)}/execute`, { honour_cooldown: honourCooldown }),
  schedules: (g) => get(`/v1/groups/${seg(g)}/schedules`).then((d) => d.schedules),
  hooks: (g) => get(`/v1/groups/${seg(g)}/hooks`).then((d) => d.hooks),
  notifications: (g) => get(`/v1/groups/${seg(g)}/notifications`).then((d) => d.notifications),
  lifecycleActions: (g) => get(`/v1/groups/${seg(g)}/lifecycle-actions`).then((d) => d.lifecycle_actions),
  completeLifecycle: (id, hook, result) =>
    post(`/v1/instances/${seg(id)}/lifecycle/complete`, hook ? { hook, result } : { result }),

  // The group's current rollout or its latest finished one; null when it never had one.
  rollout: (g) =>
    get(`/v1/groups/${seg(g)}/rollout`).catch((error) => {
      if (error.status === 404) return null;
      throw error;
    }),
  rolloutAction: (g, verb, reason) => post(`/v1/groups/${seg(g)}/rollout/${verb}`, reason ? { reason } : {}),
};
