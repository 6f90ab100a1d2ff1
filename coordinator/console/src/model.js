// What the pages derive from the API's records: pure functions over plain
// data (no DOM, no fetch), so they can be tested with node --test.

// docs/lifecycle.md's states, in lifecycle order.
export const STATES = [
  'pending', 'booting', 'pending_launch_hook', 'warming', 'in_service', 'out_of_rotation',
  'draining', 'pending_terminate_hook', 'terminating', 'terminated', 'launch_failed', 'detached',
];
export const TERMINAL_STATES = new Set(['terminated', 'launch_failed', 'detached']);

export const ACTIVITY_TYPES = [
  'scale_out', 'scale_in', 'attach', 'detach', 'replace_unhealthy', 'terminate_unexpectedly',
  'launch_failed', 'fail_static', 'terminate_stray', 'adopt_instance', 'terminate_instance',
  'rollout', 'metric_query',
];
export const ACTIVITY_STATUSES = ['running', 'successful', 'partially_successful', 'failed', 'cancelled'];

// Badge colour of a lifecycle state.
export function stateKind(state) {
  switch (state) {
    case 'in_service':
      return 'ok';
    case 'pending':
    case 'booting':
    case 'pending_launch_hook':
    case 'warming':
      return 'info';
    case 'out_of_rotation':
    case 'draining':
    case 'pending_terminate_hook':
    case 'terminating':
      return 'warn';
    case 'launch_failed':
      return 'bad';
    default:
      return 'muted';
  }
}

export function statusKind(status) {
  switch (status) {
    case 'successful':
      return 'ok';
    case 'running':
      return 'info';
    case 'partially_successful':
      return 'warn';
    case 'failed':
      return 'bad';
    default:
      return 'muted';
  }
}

export const rolloutActive = (rollout) =>
  !!rollout && ['running', 'paused', 'rolling_back'].includes(rollout.state);

// Which rollout actions the state allows (docs/rollout.md): the server
// decides, the console only hides buttons that would certainly be refused.
export function rolloutActions(rollout) {
  if (!rollout) return [];
  switch (rollout.state) {
    case 'running':
      return ['pause', 'rollback', 'cancel'];
    case 'paused':
      return ['resume', 'rollback', 'cancel'];
    case 'rolling_back':
      return ['cancel'];
    default:
      return [];
  }
}

// min <= desired <= max after changing one of them: the other bounds follow
// (a new minimum above desired raises desired, and so on) so that the
// request is one the API accepts.
export function capacityChange(group, field, value) {
  const next = { min: group.min, desired: group.desired, max: group.max };
  next[field] = value;
  if (field === 'min') {
    if (next.desired < value) next.desired = value;
    if (next.max < value) next.max = value;
  } else if (field === 'max') {
    if (next.desired > value) next.desired = value;
    if (next.min > value) next.min = value;
  }
  const patch = {};
  for (const key of ['min', 'desired', 'max']) if (next[key] !== group[key]) patch[key] = next[key];
  return { next, patch, launches: Math.max(0, next.desired - group.desired), terminations: Math.max(0, group.desired - next.desired) };
}

const COMPARISONS = {
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
};

// A policy's state now, from GET /v1/groups/{g}/metrics (the figures over
// the window the policy reads): {state: 'alarm'|'ok'|'no_data'|'disabled'|
// 'above'|'below'|'near', value}. A state the API itself reports
// (`alarm_state` or `in_alarm`) wins.
export function policyState(policy, metrics) {
  if (policy.enabled === false) return { state: 'disabled', value: null };
  const entry = (metrics || []).find((m) => m.name === policy.metric && (m.used_by || []).includes(policy.name))
    || (metrics || []).find((m) => m.name === policy.metric);
  if (typeof policy.alarm_state === 'string') return { state: policy.alarm_state === 'alarm' ? 'alarm' : policy.alarm_state, value: null };
  if (typeof policy.in_alarm === 'boolean') return { state: policy.in_alarm ? 'alarm' : 'ok', value: entry ? entry.average : null };
  if (!entry) return { state: 'no_data', value: null };
  if (policy.type === 'target_tracking') {
    const value = entry.average;
    if (value === null || value === undefined) return { state: 'no_data', value: null };
    const tolerance = policy.tolerance ?? 0.1;
    const ratio = policy.target ? value / policy.target : 1;
    if (ratio > 1 + tolerance) return { state: 'above', value };
    if (ratio < 1 - tolerance) return { state: 'below', value };
    return { state: 'near', value };
  }
  const statistic = policy.statistic || 'average';
  const value = entry[statistic];
  if (value === null || value === undefined) return { state: 'no_data', value: null };
  const compare = COMPARISONS[policy.comparison] || COMPARISONS['>'];
  return { state: compare(value, policy.threshold) ? 'alarm' : 'ok', value };
}

// Health counts for the overview: the group's own counts when the API gives
// them, else the latest history sample's.
export function groupHealth(group, lastSample) {
  if (typeof group.healthy === 'number') return { healthy: group.healthy, unhealthy: group.unhealthy ?? null };
  if (group.instances_by_health) {
    return { healthy: group.instances_by_health.healthy ?? 0, unhealthy: group.instances_by_health.unhealthy ?? 0 };
  }
  if (lastSample && typeof lastSample.healthy === 'number') {
    return { healthy: lastSample.healthy, unhealthy: typeof lastSample.unhealthy === 'number' ? lastSample.unhealthy : null };
  }
  return { healthy: null, unhealthy: null };
}

// The rollout the overview can show for a group, if the API includes one
// in the group (`rollout`: a record or its state).
export function groupRolloutState(group) {
  const r = group.rollout;
  if (!r) return null;
  if (typeof r === 'string') return r;
  return r.state || null;
}

// The load metric of a group's sparkline: the first metric its history has.
export function loadMetricOf(samples, metricNames) {
  if (metricNames && metricNames.length) return metricNames[0];
  for (const sample of samples || []) {
    const names = Object.keys(sample.metrics || {});
    if (names.length) return names.sort()[0];
  }
  return null;
}

// An instance's lifecycle as entries {t_ms, kind, state?, text, activity?},
// oldest first: its creation, its launch, the activities that name it
// (their cause, and the message for this instance), and its current state.
export function instanceTimeline(instance, activities) {
  const entries = [];
  if (instance.created_ms) entries.push({ t_ms: instance.created_ms, kind: 'created', state: 'pending' });
  if (instance.launched_ms) entries.push({ t_ms: instance.launched_ms, kind: 'launched', state: 'booting' });
  for (const activity of activities || []) {
    const item = (activity.instances || []).find((i) => i.instance_id === instance.id);
    const named = item || (activity.cause || '').includes(instance.id);
    if (!named) continue;
    entries.push({ t_ms: activity.start_ms, kind: 'activity', activity, message: item ? item.message : '', ok: item ? item.ok : null });
  }
  if (instance.state_since_ms) entries.push({ t_ms: instance.state_since_ms, kind: 'state', state: instance.state });
  entries.sort((a, b) => a.t_ms - b.t_ms);
  return entries;
}

// A launch configuration as flat fields ("env.PORT", "agent.readiness_path").
export function flattenFields(record, prefix = '', out = {}) {
  for (const [key, value] of Object.entries(record || {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      flattenFields(value, name, out); // an empty map adds no field
    } else {
      out[name] = Array.isArray(value) ? JSON.stringify(value) : value;
    }
  }
  return out;
}

const NOT_COMPARED = new Set(['id', 'version', 'created_ms']);

// Field-by-field differences between two versions: [{field, from, to, change:
// 'added'|'removed'|'changed'|'same'}], sorted by field.
export function diffFields(a, b) {
  const left = flattenFields(a);
  const right = flattenFields(b);
  const fields = [...new Set([...Object.keys(left), ...Object.keys(right)])].filter((f) => !NOT_COMPARED.has(f)).sort();
  return fields.map((field) => {
    const inLeft = field in left;
    const inRight = field in right;
    let change = 'same';
    if (!inLeft) change = 'added';
    else if (!inRight) change = 'removed';
    else if (String(left[field]) !== String(right[field])) change = 'changed';
    return { field, from: inLeft ? left[field] : undefined, to: inRight ? right[field] : undefined, change };
  });
}

// Launch configuration versions grouped by id: [{id, versions: [newest first]}].
export function groupVersions(configs) {
  const byId = new Map();
  for (const config of configs || []) {
    if (!byId.has(config.id)) byId.set(config.id, []);
    byId.get(config.id).push(config);
  }
  return [...byId.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, versions]) => ({ id, versions: versions.sort((x, y) => y.version - x.version) }));
}

// The range a history request asks for, and the activities' `since` for it.
export const RANGES = { '1h': 3600000, '24h': 86400000, '7d': 7 * 86400000 };
