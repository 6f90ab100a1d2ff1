// The three catalogues hold the same keys and placeholders, and every key
// the code names (literally or through the value lists it builds keys from)
// exists. Run: node --test test/
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import en from '../src/i18n/en.js';
import ko from '../src/i18n/ko.js';
import zhCN from '../src/i18n/zh-CN.js';
import { ACTIVITY_STATUSES, ACTIVITY_TYPES, STATES } from '../src/model.js';

const src = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
const catalogues = { ko, 'zh-CN': zhCN };

const placeholders = (entry) => {
  const texts = typeof entry === 'object' ? Object.values(entry) : [entry];
  return [...new Set(texts.flatMap((text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1])))].sort();
};

function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'i18n' ? [] : sources(full);
    return full.endsWith('.js') ? [full] : [];
  });
}

test('every catalogue has exactly the English keys', () => {
  for (const [name, catalogue] of Object.entries(catalogues)) {
    const missing = Object.keys(en).filter((k) => !(k in catalogue));
    const extra = Object.keys(catalogue).filter((k) => !(k in en));
    assert.deepEqual(missing, [], `${name} lacks keys`);
    assert.deepEqual(extra, [], `${name} has keys English lacks`);
  }
});

test('translations use the same placeholders', () => {
  for (const [name, catalogue] of Object.entries(catalogues)) {
    for (const key of Object.keys(en)) {
      assert.deepEqual(placeholders(catalogue[key]), placeholders(en[key]), `${name} ${key}`);
    }
  }
});

test('plural entries have an "other" form', () => {
  for (const catalogue of [en, ko, zhCN]) {
    for (const [key, entry] of Object.entries(catalogue)) {
      if (typeof entry === 'object') assert.ok(entry.other, key);
    }
  }
});

test('every literal key in the code exists', () => {
  const missing = [];
  for (const file of sources(src)) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/\bt\(\s*'([a-z_.0-9-]+)'/g)) {
      if (!(match[1] in en)) missing.push(`${path.basename(file)}: ${match[1]}`);
    }
    // keys chosen with a ternary: t(cond ? 'a.b' : 'c.d')
    for (const match of text.matchAll(/\bt\([^()]*?\?\s*'([a-z_.0-9-]+)'\s*:\s*'([a-z_.0-9-]+)'/g)) {
      for (const key of [match[1], match[2]]) if (!(key in en)) missing.push(`${path.basename(file)}: ${key}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('keys built from value lists exist', () => {
  const families = {
    state: STATES,
    'activity.type': ACTIVITY_TYPES,
    'activity.status': ACTIVITY_STATUSES,
    capacity: ['min', 'desired', 'max'],
    capacity_name: ['min', 'desired', 'max'],
    'rollout.state': ['running', 'paused', 'rolling_back', 'succeeded', 'rolled_back', 'cancelled', 'failed'],
    'rollout.phase': ['canary', 'batch'],
    rollout: ['pause', 'resume', 'rollback', 'cancel'],
    'policy.type': ['alarm', 'target_tracking'],
    'policy.statistic': ['average', 'maximum', 'minimum'],
    'policy.state': ['alarm', 'ok', 'no_data', 'disabled', 'above', 'below', 'near'],
    'lifecycle.transition': ['launching', 'terminating'],
    'lifecycle.result': ['continue', 'abandon'],
    termination: ['oldest_instance', 'newest_instance', 'oldest_launch_configuration'],
    exit: ['none', 'scale_in', 'replace', 'detach', 'user', 'rollout'],
    'instance.origin': ['launched', 'attached'],
    'instance.timeline': ['created', 'launched', 'state'],
    'lc.change': ['added', 'removed', 'changed', 'same'],
    'notification.event': ['scale_out_successful', 'scale_out_failed', 'scale_in_successful', 'scale_in_failed',
      'replace_successful', 'replace_failed', 'hook_timeout'],
  };
  const missing = [];
  for (const [prefix, values] of Object.entries(families)) {
    for (const value of values) if (!(`${prefix}.${value}` in en)) missing.push(`${prefix}.${value}`);
  }
  for (const r of ['1h', '24h', '7d']) if (!(`chart.range_${r}` in en)) missing.push(`chart.range_${r}`);
  for (const field of ['desired', 'min', 'max']) {
    for (const suffix of ['title', 'confirm']) if (!(`action.set_${field}.${suffix}` in en)) missing.push(`action.set_${field}.${suffix}`);
  }
  for (const kind of ['detach', 'terminate', 'protect', 'unprotect', 'enable', 'disable']) {
    for (const suffix of ['title', 'text', 'confirm', 'done']) if (!(`action.${kind}.${suffix}` in en)) missing.push(`action.${kind}.${suffix}`);
  }
  for (const verb of ['pause', 'resume', 'rollback', 'cancel']) {
    for (const suffix of ['title', 'text', 'confirm']) if (!(`action.rollout_${verb}.${suffix}` in en)) missing.push(`action.rollout_${verb}.${suffix}`);
  }
  for (const key of ['action.lifecycle.launch_continue', 'action.lifecycle.launch_abandon', 'action.lifecycle.terminate_continue',
    'action.lifecycle.terminate_abandon', 'action.run_policy.text_alarm', 'action.run_policy.text_target']) {
    if (!(key in en)) missing.push(key);
  }
  assert.deepEqual(missing, []);
});
