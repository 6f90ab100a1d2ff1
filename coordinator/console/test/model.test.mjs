// The console's pure logic (src/model.js). Run: node --test test/
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  capacityChange, diffFields, groupHealth, groupVersions, instanceTimeline, policyState, rolloutActions,
} from '../src/model.js';

test('raising desired launches the difference', () => {
  const c = capacityChange({ min: 1, desired: 2, max: 5 }, 'desired', 3);
  assert.deepEqual(c.patch, { desired: 3 });
  assert.equal(c.launches, 1);
  assert.equal(c.terminations, 0);
});

test('a minimum above desired raises desired with it', () => {
  const c = capacityChange({ min: 1, desired: 2, max: 5 }, 'min', 4);
  assert.deepEqual(c.patch, { min: 4, desired: 4 });
  assert.equal(c.launches, 2);
});

test('a maximum below desired lowers desired (and min) with it', () => {
  const c = capacityChange({ min: 3, desired: 4, max: 5 }, 'max', 2);
  assert.deepEqual(c.patch, { min: 2, desired: 2, max: 2 });
  assert.equal(c.terminations, 2);
});

test('an alarm policy is in alarm when its statistic crosses the threshold', () => {
  const policy = { name: 'cpu-high', type: 'alarm', metric: 'cpu', statistic: 'maximum', comparison: '>', threshold: 0.3, enabled: true };
  const metrics = [{ name: 'cpu', used_by: ['cpu-high'], average: 0.2, maximum: 0.5, minimum: 0.1 }];
  assert.deepEqual(policyState(policy, metrics), { state: 'alarm', value: 0.5 });
  assert.equal(policyState({ ...policy, statistic: 'average' }, metrics).state, 'ok');
  assert.equal(policyState({ ...policy, enabled: false }, metrics).state, 'disabled');
  assert.equal(policyState(policy, [{ name: 'cpu', used_by: ['cpu-high'], average: null, maximum: null }]).state, 'no_data');
});

test('a target-tracking policy is above, below or near its target', () => {
  const policy = { name: 'rps', type: 'target_tracking', metric: 'rpi', target: 50, tolerance: 0.1, enabled: true };
  const at = (average) => policyState(policy, [{ name: 'rpi', used_by: ['rps'], average }]).state;
  assert.equal(at(60), 'above');
  assert.equal(at(40), 'below');
  assert.equal(at(52), 'near');
});

test('rollout actions follow docs/rollout.md', () => {
  assert.deepEqual(rolloutActions({ state: 'running' }), ['pause', 'rollback', 'cancel']);
  assert.deepEqual(rolloutActions({ state: 'paused' }), ['resume', 'rollback', 'cancel']);
  assert.deepEqual(rolloutActions({ state: 'rolling_back' }), ['cancel']);
  assert.deepEqual(rolloutActions({ state: 'succeeded' }), []);
});

test('health comes from the group when it has counts, else from the last sample', () => {
  assert.deepEqual(groupHealth({ healthy: 3, unhealthy: 1 }, { healthy: 9 }), { healthy: 3, unhealthy: 1 });
  assert.deepEqual(groupHealth({}, { healthy: 2 }), { healthy: 2, unhealthy: null });
  assert.deepEqual(groupHealth({}, null), { healthy: null, unhealthy: null });
});

test('the diff of two versions names each changed, added and removed field', () => {
  const a = { id: 'web', version: 1, command: 'app --v1', port: 8080, env: { A: '1', B: '2' }, agent: { readiness_path: '/ready' } };
  const b = { id: 'web', version: 2, command: 'app --v2', port: 8080, env: { A: '1', C: '3' }, agent: { readiness_path: '/ready' }, env_files: {} };
  const rows = Object.fromEntries(diffFields(a, b).map((r) => [r.field, r.change]));
  assert.deepEqual(rows, {
    'agent.readiness_path': 'same', command: 'changed', 'env.A': 'same', 'env.B': 'removed', 'env.C': 'added', port: 'same',
  });
});

test('versions are grouped by id, newest first', () => {
  const list = groupVersions([{ id: 'b', version: 1 }, { id: 'a', version: 1 }, { id: 'a', version: 2 }]);
  assert.deepEqual(list.map((e) => [e.id, e.versions.map((v) => v.version)]), [['a', [2, 1]], ['b', [1]]]);
});

test('the timeline orders the record and the activities naming the instance', () => {
  const instance = { id: 'i-1', created_ms: 100, launched_ms: 200, state: 'in_service', state_since_ms: 400 };
  const activities = [
    { id: 'a2', start_ms: 300, type: 'scale_out', cause: 'x', instances: [{ instance_id: 'i-1', ok: true, message: 'launched' }] },
    { id: 'a3', start_ms: 350, type: 'scale_out', cause: 'y', instances: [{ instance_id: 'i-2', ok: true, message: '' }] },
  ];
  assert.deepEqual(instanceTimeline(instance, activities).map((e) => e.kind), ['created', 'launched', 'activity', 'state']);
});
