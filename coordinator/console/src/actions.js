// Every change the console can make, each as a confirmation dialog that
// says exactly what will happen before it calls the API.
import { api } from './api.js';
import { openAction } from './components/dialog.js';
import { t } from './i18n/index.js';
import { capacityChange } from './model.js';

const after = (onDone) => (result) => {
  if (onDone) onDone(result);
  return result;
};

function capacityLines(group, field, value) {
  if (value === '' || !Number.isInteger(Number(value))) return [];
  const change = capacityChange(group, field, Number(value));
  const lines = [];
  lines.push(t('action.capacity.summary', { what: t(`capacity_name.${field}`), group: group.name, from: group[field], to: change.next[field] }));
  for (const other of ['min', 'desired', 'max']) {
    if (other !== field && change.next[other] !== group[other]) {
      lines.push(t('action.capacity.follows', { what: t(`capacity_name.${other}`), from: group[other], to: change.next[other] }));
    }
  }
  if (change.launches) lines.push(t('action.capacity.launch', { n: change.launches }));
  else if (change.terminations) lines.push(t('action.capacity.terminate', { n: change.terminations }));
  else lines.push(t('action.capacity.no_change', { desired: group.desired }));
  if (change.launches && !group.enabled) lines.push(t('action.capacity.disabled_note'));
  return lines;
}

// Set min, desired or max of a group.
export function setCapacity(group, field, onDone) {
  openAction({
    title: t(`action.set_${field}.title`, { group: group.name }),
    fields: [{ name: 'value', kind: 'number', label: t(`capacity.${field}`), initial: String(group[field]), min: 0, max: 10000 }],
    describe: (v) => capacityLines(group, field, v.value),
    run: (v) => {
      const { patch } = capacityChange(group, field, Number(v.value));
      return api.patchGroup(group.name, patch).then(after(onDone));
    },
    done: (result) => t('action.capacity.done', { group: group.name, min: result.min, desired: result.desired, max: result.max }),
    confirmLabel: t(`action.set_${field}.confirm`),
  });
}

export function setEnabled(group, enable, onDone) {
  openAction({
    title: t(enable ? 'action.enable.title' : 'action.disable.title', { group: group.name }),
    describe: () => t(enable ? 'action.enable.text' : 'action.disable.text', { group: group.name }),
    run: () => api.enableGroup(group.name, enable).then(after(onDone)),
    done: () => t(enable ? 'action.enable.done' : 'action.disable.done', { group: group.name }),
    confirmLabel: t(enable ? 'action.enable.confirm' : 'action.disable.confirm'),
    danger: !enable,
  });
}

export function setProtection(instance, on, onDone) {
  openAction({
    title: t(on ? 'action.protect.title' : 'action.unprotect.title', { id: instance.id }),
    describe: () => t(on ? 'action.protect.text' : 'action.unprotect.text', { id: instance.id, group: instance.group }),
    run: () => api.protect(instance.id, on).then(after(onDone)),
    done: () => t(on ? 'action.protect.done' : 'action.unprotect.done', { id: instance.id }),
    confirmLabel: t(on ? 'action.protect.confirm' : 'action.unprotect.confirm'),
  });
}

// Detach or terminate; `group` (when known) gives the desired capacity the
// text names.
export function removeInstance(kind, instance, group, onDone) {
  const desired = group ? group.desired : null;
  const min = group ? group.min : 0;
  openAction({
    title: t(`action.${kind}.title`, { id: instance.id }),
    fields: [{ name: 'decrement', kind: 'checkbox', label: t('action.decrement.label'), initial: false }],
    describe: (v) => {
      const lines = [t(`action.${kind}.text`, { id: instance.id, group: instance.group })];
      if (v.decrement) {
        lines.push(desired === null
          ? t('action.decrement.yes_unknown')
          : t('action.decrement.yes', { group: instance.group, from: desired, to: Math.max(0, desired - 1) }));
        if (desired !== null && desired - 1 < min) lines.push(t('action.decrement.below_min', { min }));
      } else {
        lines.push(t('action.decrement.no', { group: instance.group }));
      }
      if (instance.protected_from_scale_in) lines.push(t('action.remove.protected_note'));
      return lines;
    },
    run: (v) => (kind === 'detach' ? api.detach(instance.id, v.decrement) : api.terminate(instance.id, v.decrement)).then(after(onDone)),
    done: () => t(`action.${kind}.done`, { id: instance.id }),
    confirmLabel: t(`action.${kind}.confirm`),
    danger: true,
  });
}

export function completeLifecycle(action, onDone) {
  const next = action.transition === 'launching'
    ? { continue: 'action.lifecycle.launch_continue', abandon: 'action.lifecycle.launch_abandon' }
    : { continue: 'action.lifecycle.terminate_continue', abandon: 'action.lifecycle.terminate_abandon' };
  openAction({
    title: t('action.lifecycle.title', { hook: action.hook, id: action.instance_id }),
    fields: [{
      name: 'result', kind: 'select', label: t('action.lifecycle.result'), initial: 'continue',
      options: [{ value: 'continue', label: t('lifecycle.result.continue') }, { value: 'abandon', label: t('lifecycle.result.abandon') }],
    }],
    describe: (v) => [
      t('action.lifecycle.text', { hook: action.hook, id: action.instance_id, result: t(`lifecycle.result.${v.result}`) }),
      t(next[v.result] || next.continue, { id: action.instance_id }),
    ],
    run: (v) => api.completeLifecycle(action.instance_id, action.hook, v.result).then(after(onDone)),
    done: (result) => t('action.lifecycle.done', { id: action.instance_id, state: result && result.state ? t(`state.${result.state}`) : '' }),
    confirmLabel: t('action.lifecycle.confirm'),
  });
}

export function runPolicy(group, policy, onDone) {
  openAction({
    title: t('action.run_policy.title', { policy: policy.name }),
    fields: [{ name: 'honour', kind: 'checkbox', label: t('action.run_policy.honour'), initial: true }],
    describe: (v) => [
      t(policy.type === 'target_tracking' ? 'action.run_policy.text_target' : 'action.run_policy.text_alarm', {
        policy: policy.name, group: group.name, desired: group.desired,
      }),
      v.honour ? t('action.run_policy.with_cooldown') : t('action.run_policy.without_cooldown'),
    ],
    run: (v) => api.executePolicy(group.name, policy.name, v.honour).then(after(onDone)),
    done: (r) => r.from_desired === r.to_desired
      ? t('action.run_policy.done_same', { policy: policy.name, desired: r.to_desired })
      : t('action.run_policy.done', { policy: policy.name, from: r.from_desired, to: r.to_desired }),
    confirmLabel: t('action.run_policy.confirm'),
  });
}

export function rolloutAction(group, rollout, verb, onDone) {
  const from = `${rollout.from.launch_configuration}:${rollout.from.version}`;
  const to = `${rollout.to.launch_configuration}:${rollout.to.version}`;
  openAction({
    title: t(`action.rollout_${verb}.title`, { group }),
    fields: [{ name: 'reason', kind: 'text', label: t('action.rollout.reason'), initial: '' }],
    describe: () => t(`action.rollout_${verb}.text`, { group, id: rollout.id, from, to }),
    run: (v) => api.rolloutAction(group, verb, v.reason.trim()).then(after(onDone)),
    done: (r) => t('action.rollout.done', { id: rollout.id, state: t(`rollout.state.${r.state}`) }),
    confirmLabel: t(`action.rollout_${verb}.confirm`),
    danger: verb === 'rollback' || verb === 'cancel',
  });
}
