// What a group does by itself: scaling policies (with their state now),
// scheduled actions (next fire in the viewer's zone and the schedule's),
// lifecycle hooks and the actions they hold, notification targets.
import { completeLifecycle, runPolicy } from '../actions.js';
import { Badge, ErrorBox, Loading, Section, Time, hrefInstance } from '../components/common.js';
import { fmtDateTime, fmtDuration, fmtNumber, fmtRelative, viewerZone } from '../format.js';
import { html } from '../html.js';
import { t } from '../i18n/index.js';
import { policyState } from '../model.js';

const STATE_KIND = { alarm: 'bad', ok: 'ok', no_data: 'muted', disabled: 'muted', above: 'warn', below: 'info', near: 'ok' };

function adjustmentText(p) {
  if (p.adjustment_type === 'exact') return t('policy.adjust_exact', { n: p.adjustment });
  if (p.adjustment_type === 'percent') return t('policy.adjust_percent', { n: `${p.adjustment > 0 ? '+' : ''}${p.adjustment}` });
  return t('policy.adjust_change', { n: `${p.adjustment > 0 ? '+' : ''}${p.adjustment}` });
}

function conditionText(p) {
  if (p.type === 'target_tracking') {
    return t('policy.target_condition', {
      metric: p.metric, target: fmtNumber(p.target), tolerance: fmtNumber((p.tolerance ?? 0.1) * 100, 0),
    }) + (p.disable_scale_in ? ` ${t('policy.no_scale_in')}` : '');
  }
  return t('policy.alarm_condition', {
    statistic: t(`policy.statistic.${p.statistic}`), metric: p.metric, comparison: p.comparison,
    threshold: fmtNumber(p.threshold), periods: p.evaluation_periods, period: fmtDuration(p.period_ms),
  }) + ` → ${adjustmentText(p)}`;
}

function SpecBody({ resource, items, empty, children }) {
  if (!resource.data && resource.error) return html`<${ErrorBox} error=${resource.error} onRetry=${resource.reload} />`;
  if (!resource.data) return html`<${Loading} />`;
  if (!items.length) return html`<p class="empty">${empty}</p>`;
  return children;
}

export function PoliciesPanel({ group, specs, metrics, onChanged }) {
  const policies = specs.data ? specs.data.policies : [];
  const metricList = metrics.data ? metrics.data.metrics : null;
  return html`<${Section} id="policies" title=${t('policy.title')} count=${specs.data ? policies.length : undefined} testid="policies">
    <${SpecBody} resource=${specs} items=${policies} empty=${t('policy.none')}>
      <div class="table-wrap"><table class="table" data-testid="policies-table">
        <caption class="sr-only">${t('policy.caption', { group: group.name })}</caption>
        <thead><tr>
          <th scope="col">${t('policy.name')}</th><th scope="col">${t('policy.type')}</th>
          <th scope="col">${t('policy.condition')}</th><th scope="col">${t('policy.value_now')}</th>
          <th scope="col">${t('policy.state')}</th><th scope="col">${t('common.actions')}</th>
        </tr></thead>
        <tbody>${policies.map((p) => {
          const state = metricList ? policyState(p, metricList) : { state: 'no_data', value: null };
          const entry = metricList && metricList.find((m) => m.name === p.metric);
          return html`<tr key=${p.name} data-testid=${`policy-row-${p.name}`} data-alarm=${state.state}>
            <th scope="row">${p.name}</th>
            <td>${t(`policy.type.${p.type}`)}</td>
            <td>${conditionText(p)}${p.query && html`<div class="muted small mono clip" title=${p.query}>${p.query}</div>`}</td>
            <td class="num">${fmtNumber(state.value)}${entry && entry.note && html`<div class="muted small">${entry.note}</div>`}</td>
            <td><${Badge} kind=${STATE_KIND[state.state] || 'muted'}>${t(`policy.state.${state.state}`)}<//></td>
            <td class="row-actions"><button type="button" class="button button-small" data-testid=${`policy-run-${p.name}`}
              aria-label=${`${t('policy.run')} ${p.name}`} onClick=${() => runPolicy(group, p, onChanged)}>${t('policy.run')}</button></td>
          </tr>`;
        })}</tbody>
      </table></div>
      <p class="muted small">${t('policy.state_note')}</p>
    <//>
  <//>`;
}

function scheduleSets(s) {
  return ['min', 'desired', 'max'].filter((k) => s[k] !== null && s[k] !== undefined)
    .map((k) => `${t(`capacity.${k}`)} ${s[k]}`).join(', ');
}

export function SchedulesPanel({ group, specs }) {
  const schedules = specs.data ? specs.data.schedules : [];
  const here = viewerZone();
  return html`<${Section} id="schedules" title=${t('schedule.title')} count=${specs.data ? schedules.length : undefined} testid="schedules">
    <${SpecBody} resource=${specs} items=${schedules} empty=${t('schedule.none')}>
      <div class="table-wrap"><table class="table" data-testid="schedules-table">
        <caption class="sr-only">${t('schedule.caption', { group: group.name })}</caption>
        <thead><tr>
          <th scope="col">${t('schedule.name')}</th><th scope="col">${t('schedule.when')}</th>
          <th scope="col">${t('schedule.sets')}</th>
          <th scope="col">${t('schedule.next_viewer', { zone: here })}</th>
          <th scope="col">${t('schedule.next_zone')}</th>
          <th scope="col">${t('schedule.last')}</th>
        </tr></thead>
        <tbody>${schedules.map((s) => html`<tr key=${s.name} data-testid=${`schedule-row-${s.name}`}>
          <th scope="row">${s.name}</th>
          <td><span class="mono">${s.cron || t('schedule.once')}</span> <span class="muted small">${s.time_zone || 'UTC'}</span>
            ${(s.start_ms || s.end_ms) && html`<div class="muted small">${s.start_ms ? t('schedule.from', { time: fmtDateTime(s.start_ms, s.time_zone, false) }) : ''}
              ${s.end_ms ? t('schedule.until', { time: fmtDateTime(s.end_ms, s.time_zone, false) }) : ''}</div>`}</td>
          <td>${scheduleSets(s)}</td>
          <td data-testid=${`schedule-next-${s.name}`}>${s.next_fire_ms
            ? html`<time datetime=${new Date(s.next_fire_ms).toISOString()}>${fmtDateTime(s.next_fire_ms)}</time>
                <div class="muted small">${fmtRelative(s.next_fire_ms)}</div>`
            : html`<span class="muted">${t('schedule.never')}</span>`}</td>
          <td data-testid=${`schedule-next-zone-${s.name}`}>${s.next_fire_ms ? fmtDateTime(s.next_fire_ms, s.time_zone || 'UTC') : '—'}</td>
          <td><${Time} ms=${s.last_fired_ms} relative=${true} /></td>
        </tr>`)}</tbody>
      </table></div>
    <//>
  <//>`;
}

export function LifecyclePanel({ group, specs, actions, onChanged }) {
  const hooks = specs.data ? specs.data.hooks : [];
  const pending = actions.data || [];
  return html`<${Section} id="lifecycle" title=${t('lifecycle.title')} testid="lifecycle">
    <h3>${t('lifecycle.hooks')}</h3>
    <${SpecBody} resource=${specs} items=${hooks} empty=${t('lifecycle.no_hooks')}>
      <div class="table-wrap"><table class="table" data-testid="hooks-table">
        <caption class="sr-only">${t('lifecycle.hooks_caption', { group: group.name })}</caption>
        <thead><tr><th scope="col">${t('lifecycle.hook')}</th><th scope="col">${t('lifecycle.transition')}</th>
          <th scope="col">${t('lifecycle.timeout')}</th><th scope="col">${t('lifecycle.default_result')}</th>
          <th scope="col">${t('lifecycle.agent_script')}</th></tr></thead>
        <tbody>${hooks.map((h) => html`<tr key=${h.name} data-testid=${`hook-row-${h.name}`}>
          <th scope="row">${h.name}</th><td>${t(`lifecycle.transition.${h.transition}`)}</td>
          <td>${fmtDuration(h.heartbeat_timeout_ms)}</td><td>${t(`lifecycle.result.${h.default_result}`)}</td>
          <td class="mono small">${h.agent_script || '—'}</td></tr>`)}</tbody>
      </table></div>
    <//>
    <h3>${t('lifecycle.pending')}</h3>
    ${actions.error && html`<${ErrorBox} error=${actions.error} onRetry=${actions.reload} />`}
    ${!pending.length ? html`<p class="empty" data-testid="lifecycle-actions-empty">${t('lifecycle.no_pending')}</p>`
      : html`<div class="table-wrap"><table class="table" data-testid="lifecycle-actions-table">
        <caption class="sr-only">${t('lifecycle.pending_caption', { group: group.name })}</caption>
        <thead><tr><th scope="col">${t('instances.id')}</th><th scope="col">${t('lifecycle.hook')}</th>
          <th scope="col">${t('lifecycle.transition')}</th><th scope="col">${t('lifecycle.started')}</th>
          <th scope="col">${t('lifecycle.deadline')}</th><th scope="col">${t('lifecycle.default_result')}</th>
          <th scope="col">${t('common.actions')}</th></tr></thead>
        <tbody>${pending.map((a) => html`<tr key=${`${a.instance_id}-${a.hook}`} data-testid=${`lifecycle-action-row-${a.instance_id}-${a.hook}`}>
          <th scope="row"><a href=${hrefInstance(a.instance_id)}>${a.instance_id}</a></th>
          <td>${a.hook}</td><td>${t(`lifecycle.transition.${a.transition}`)}</td>
          <td><${Time} ms=${a.started_ms} relative=${true} /></td>
          <td><${Time} ms=${a.deadline_ms} relative=${true} /></td>
          <td>${t(`lifecycle.result.${a.default_result}`)}</td>
          <td class="row-actions"><button type="button" class="button button-small button-primary"
            data-testid=${`lifecycle-complete-${a.instance_id}-${a.hook}`} aria-label=${`${t('lifecycle.complete')} ${a.instance_id} ${a.hook}`}
            onClick=${() => completeLifecycle(a, onChanged)}>${t('lifecycle.complete')}</button></td>
        </tr>`)}</tbody>
      </table></div>`}
  <//>`;
}

export function NotificationsPanel({ group, specs }) {
  const targets = specs.data ? specs.data.notifications : [];
  return html`<${Section} id="notifications" title=${t('notification.title')} count=${specs.data ? targets.length : undefined} testid="notifications">
    <${SpecBody} resource=${specs} items=${targets} empty=${t('notification.none')}>
      <div class="table-wrap"><table class="table" data-testid="notifications-table">
        <caption class="sr-only">${t('notification.caption', { group: group.name })}</caption>
        <thead><tr><th scope="col">${t('notification.name')}</th><th scope="col">${t('notification.url')}</th>
          <th scope="col">${t('notification.format')}</th><th scope="col">${t('notification.events')}</th></tr></thead>
        <tbody>${targets.map((n) => html`<tr key=${n.name} data-testid=${`notification-row-${n.name}`}>
          <th scope="row">${n.name}</th><td class="mono small clip" title=${n.url}>${n.url}</td><td>${n.format}</td>
          <td>${(n.events || []).map((e) => html`<${Badge} kind="muted">${t(`notification.event.${e}`)}<//> `)}</td>
        </tr>`)}</tbody>
      </table></div>
    <//>
  <//>`;
}
