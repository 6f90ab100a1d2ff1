// The group's rollout (docs/rollout.md): the current one with its progress
// and actions, or the latest finished one.
import { rolloutAction } from '../actions.js';
import { Badge, ErrorBox, Section, Time, hrefInstance, hrefLaunchConfiguration } from '../components/common.js';
import { fmtDuration, fmtNumber } from '../format.js';
import { html } from '../html.js';
import { t } from '../i18n/index.js';
import { rolloutActions, rolloutActive } from '../model.js';

const STATE_KIND = {
  running: 'info', paused: 'warn', rolling_back: 'warn', succeeded: 'ok', rolled_back: 'bad', cancelled: 'muted', failed: 'bad',
};

function Version({ v }) {
  return html`<a href=${hrefLaunchConfiguration(v.launch_configuration)}>${v.launch_configuration}:${v.version}</a>`;
}

function Ids({ ids }) {
  if (!ids || !ids.length) return html`<span class="muted">—</span>`;
  return ids.map((id, i) => html`${i ? ', ' : ''}<a href=${hrefInstance(id)}>${id}</a>`);
}

function Traffic({ label, f }) {
  return html`<tr><th scope="row">${label}</th><td class="num">${fmtNumber(f.requests, 0)}</td>
    <td class="num">${fmtNumber(f.errors_5xx, 0)}</td><td class="num">${fmtNumber(f.connection_errors, 0)}</td>
    <td class="num">${fmtNumber(f.mean_response_ms, 1)}</td></tr>`;
}

export function RolloutPanel({ group, resource, onChanged }) {
  const rollout = resource.data;
  if (rollout === undefined && !resource.error) return null;
  if (!rollout && !resource.error) return null; // the group never had a rollout
  if (!rollout) return html`<${Section} id="rollout" title=${t('rollout.title')}><${ErrorBox} error=${resource.error} onRetry=${resource.reload} /><//>`;
  const active = rolloutActive(rollout);
  const verbs = rolloutActions(rollout);
  const s = rollout.strategy || {};
  const p = rollout.progress;
  return html`<${Section} id="rollout" title=${active ? t('rollout.title') : t('rollout.last_title')} testid="rollout-panel"
      actions=${verbs.length ? html`${verbs.map((verb) => html`<button type="button"
        class=${verb === 'rollback' || verb === 'cancel' ? 'button button-small button-danger-outline' : 'button button-small'}
        data-testid=${`rollout-${verb}`} onClick=${() => rolloutAction(group.name, rollout, verb, onChanged)}>${t(`rollout.${verb}`)}</button>`)}` : null}>
    <div data-testid="rollout" data-state=${rollout.state}>
      <dl class="facts">
        <div><dt>${t('rollout.id')}</dt><dd class="mono">${rollout.id}</dd></div>
        <div><dt>${t('rollout.versions')}</dt><dd><${Version} v=${rollout.from} /> → <${Version} v=${rollout.to} /></dd></div>
        <div><dt>${t('rollout.state')}</dt><dd><${Badge} kind=${STATE_KIND[rollout.state] || 'muted'}>${t(`rollout.state.${rollout.state}`)}<//></dd></div>
        <div><dt>${t('rollout.phase')}</dt><dd>${t(`rollout.phase.${rollout.phase}`)}${rollout.batch ? ` · ${t('rollout.batch_n', { n: rollout.batch })}` : ''}</dd></div>
        <div><dt>${t('rollout.replaced')}</dt><dd>${t('rollout.replaced_of', { n: rollout.replaced, total: rollout.old_at_start })}</dd></div>
        ${p && html`<div><dt>${t('rollout.progress')}</dt><dd>${t('rollout.progress_text', { target: p.target_instances, old: p.old_instances, serving: p.serving, desired: p.desired })}</dd></div>`}
        <div><dt>${t('rollout.started')}</dt><dd><${Time} ms=${rollout.created_ms} /></dd></div>
        ${rollout.finished_ms > 0 && html`<div><dt>${t('rollout.finished')}</dt><dd><${Time} ms=${rollout.finished_ms} /></dd></div>`}
        ${rollout.reason && html`<div class="wide"><dt>${t('rollout.reason')}</dt><dd>${rollout.reason}</dd></div>`}
        ${active && html`<div class="wide"><dt>${t('rollout.batch_instances')}</dt><dd><${Ids} ids=${rollout.batch_instances} /></dd></div>`}
        ${active && rollout.canary_instances && rollout.canary_instances.length > 0 && html`<div class="wide"><dt>${t('rollout.canary_instances')}</dt><dd><${Ids} ids=${rollout.canary_instances} /></dd></div>`}
        <div class="wide"><dt>${t('rollout.strategy')}</dt><dd class="small">${t('rollout.strategy_text', {
          batch: s.batch, surge: s.max_surge, healthy: s.min_healthy, bake: fmtDuration(s.bake_ms), deadline: fmtDuration(s.batch_deadline_ms),
          on_failure: s.on_failure,
        })}${s.canary && s.canary.count ? ` · ${t('rollout.canary_text', { n: s.canary.count, bake: fmtDuration(s.canary.bake_ms) })}` : ''}</dd></div>
      </dl>
      ${rollout.canary_figures && html`<div class="table-wrap"><table class="table table-compact" data-testid="canary-figures">
        <caption>${t('rollout.canary_figures')}</caption>
        <thead><tr><th scope="col"><span class="sr-only">${t('rollout.servers')}</span></th><th scope="col">${t('rollout.requests')}</th>
          <th scope="col">${t('rollout.errors_5xx')}</th><th scope="col">${t('rollout.connection_errors')}</th><th scope="col">${t('rollout.mean_ms')}</th></tr></thead>
        <tbody><${Traffic} label=${t('rollout.canary')} f=${rollout.canary_figures.canary} />
          <${Traffic} label=${t('rollout.baseline')} f=${rollout.canary_figures.baseline} /></tbody>
      </table></div>`}
    </div>
  <//>`;
}
