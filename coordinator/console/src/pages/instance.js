// One instance: its state, health and load-balancer slot, its lifecycle as
// a timeline (its own record plus the activities that name it), what its
// agent last reported when the API includes it, and the actions.
import { api } from '../api.js';
import { removeInstance, setProtection } from '../actions.js';
import { Badge, ErrorBox, Loading, PageTitle, Section, Time, hrefGroup, hrefLaunchConfiguration, useResource } from '../components/common.js';
import { fmtDateTime, fmtNumber, fmtRelative } from '../format.js';
import { html, useEffect } from '../html.js';
import { t } from '../i18n/index.js';
import { useChanges } from '../live.js';
import { TERMINAL_STATES, instanceTimeline } from '../model.js';
import { ActivityStatus } from './group-activities.js';
import { HealthBadge, StateBadge, yesNo } from './group-instances.js';

function Timeline({ entries }) {
  if (!entries.length) return html`<p class="empty">${t('instance.no_timeline')}</p>`;
  return html`<ol class="timeline" data-testid="timeline">${entries.map((e) => html`<li class="timeline-entry" data-testid="timeline-entry" data-kind=${e.kind}>
    <div class="timeline-time"><time datetime=${new Date(e.t_ms).toISOString()}>${fmtDateTime(e.t_ms)}</time>
      <span class="muted small"> · ${fmtRelative(e.t_ms)}</span></div>
    <div class="timeline-body">
      ${e.kind === 'activity'
        ? html`<strong>${t(`activity.type.${e.activity.type}`)}</strong> <${ActivityStatus} status=${e.activity.status} />
            <div>${e.activity.cause}</div>
            ${e.message && html`<div class=${e.ok === false ? 'field-error' : 'muted'}>${e.message}</div>`}`
        : html`<strong>${t(`instance.timeline.${e.kind}`)}</strong> <${StateBadge} state=${e.state} />`}
    </div>
  </li>`)}</ol>`;
}

// What the agent last reported (`report`: {received_ms, ready, healthy,
// probes: [{name, kind, passing, message, latency_ms}], metrics: {cpu_pct,
// ..., custom: {name: value}}}), absent until the agent's first REPORT.
function AgentReport({ instance }) {
  const report = instance.report || null;
  if (!report) {
    return html`<p class="muted" data-testid="agent-report-missing">${t('instance.report_unavailable')}</p>`;
  }
  const probes = Array.isArray(report.probes) ? report.probes : [];
  const { custom, ...builtin } = report.metrics && typeof report.metrics === 'object' ? report.metrics : {};
  const metrics = [...Object.entries(builtin), ...Object.entries(custom || {})];
  return html`<div data-testid="agent-report">
    ${report.received_ms && html`<p>${t('instance.report_at')} <${Time} ms=${report.received_ms} /></p>`}
    ${probes.length > 0 && html`<div class="table-wrap"><table class="table table-compact">
      <caption>${t('instance.probes')}</caption>
      <thead><tr><th scope="col">${t('instance.probe')}</th><th scope="col">${t('instance.probe_result')}</th><th scope="col">${t('instance.probe_detail')}</th></tr></thead>
      <tbody>${probes.map((p) => html`<tr><th scope="row">${p.name || p.kind || '—'}</th>
        <td>${p.passing ? html`<${Badge} kind="ok">${t('common.ok')}<//>` : html`<${Badge} kind="bad">${t('common.failing')}<//>`}</td>
        <td class="small">${p.message || ''}${p.latency_ms !== undefined ? ` (${p.latency_ms} ms)` : ''}</td></tr>`)}</tbody>
    </table></div>`}
    ${metrics.length > 0 && html`<div class="table-wrap"><table class="table table-compact">
      <caption>${t('instance.metrics')}</caption>
      <thead><tr><th scope="col">${t('instance.metric')}</th><th scope="col">${t('instance.value')}</th></tr></thead>
      <tbody>${metrics.map(([k, v]) => html`<tr><th scope="row">${k}</th><td class="num">${typeof v === 'number' ? fmtNumber(v, 3) : String(v)}</td></tr>`)}</tbody>
    </table></div>`}
  </div>`;
}

export function InstancePage({ id }) {
  const instance = useResource(() => api.instance(id), [id]);
  const group = instance.data ? instance.data.group : null;
  const activities = useResource(() => (group ? api.activities(group, { limit: 500 }) : Promise.resolve([])), [group]);
  const groupInfo = useResource(() => (group ? api.group(group).catch(() => null) : Promise.resolve(null)), [group]);

  useEffect(() => {
    document.title = `${id} · tide`;
  });

  useChanges((changes, reconnected) => {
    if (reconnected) {
      instance.reload();
      activities.reload();
      groupInfo.reload();
      return;
    }
    if (changes.some((c) => c.kind === 'instance' && (c.id === id || (!c.id && c.group === group)))) instance.reload();
    if (changes.some((c) => c.kind === 'activity' && c.group === group)) activities.reload();
    if (changes.some((c) => c.kind === 'group' && c.group === group)) groupInfo.reload();
  });

  const onChanged = () => {
    instance.reload();
    activities.reload();
    groupInfo.reload();
  };

  if (!instance.data && instance.error) {
    return html`<div><${PageTitle}>${id}<//><${ErrorBox} error=${instance.error} onRetry=${instance.reload} /></div>`;
  }
  if (!instance.data) return html`<${Loading} />`;
  const i = instance.data;
  const terminal = TERMINAL_STATES.has(i.state);
  const timeline = instanceTimeline(i, activities.data);
  const slot = i.lb_slot || null;  // {backend, slot}
  const lb = groupInfo.data && groupInfo.data.load_balancer;
  return html`<div>
    <nav aria-label=${t('nav.breadcrumb')} class="breadcrumb">
      <a href="#/">${t('nav.overview')}</a>${' / '}<a href=${hrefGroup(i.group)}>${i.group}</a>${' / '}<span aria-current="page">${i.id}</span>
    </nav>
    <section class="panel group-header" aria-labelledby="page-title" data-testid="instance-detail" data-state=${i.state} data-health=${i.health}>
      <div class="group-title">
        <${PageTitle} testid="page-title"><span class="muted title-kind">${t('instance.kind')}</span> ${i.id}<//>
        <div class="badges"><${StateBadge} state=${i.state} /> <${HealthBadge} instance=${i} />
          ${i.protected_from_scale_in && html`<${Badge} kind="info">${t('instance.protected')}<//>`}</div>
      </div>
      ${!terminal && html`<div class="group-actions">
        <button type="button" class="button" data-testid=${i.protected_from_scale_in ? 'action-unprotect' : 'action-protect'}
          onClick=${() => setProtection(i, !i.protected_from_scale_in, onChanged)}>${t(i.protected_from_scale_in ? 'instance.unprotect' : 'instance.protect')}</button>
        <button type="button" class="button" data-testid="action-detach" onClick=${() => removeInstance('detach', i, groupInfo.data, onChanged)}>${t('instance.detach')}</button>
        <button type="button" class="button button-danger-outline" data-testid="action-terminate" onClick=${() => removeInstance('terminate', i, groupInfo.data, onChanged)}>${t('instance.terminate')}</button>
      </div>`}
      <dl class="facts">
        <div><dt>${t('instance.group')}</dt><dd><a href=${hrefGroup(i.group)}>${i.group}</a></dd></div>
        <div><dt>${t('instance.origin')}</dt><dd>${t(`instance.origin.${i.origin}`)}</dd></div>
        <div><dt>${t('instances.address')}</dt><dd class="mono">${i.address ? `${i.address}:${i.port}` : '—'}</dd></div>
        <div><dt>${t('instance.provider_id')}</dt><dd class="mono">${i.provider_id || '—'}</dd></div>
        <div><dt>${t('instances.version')}</dt><dd><a href=${hrefLaunchConfiguration(i.launch_configuration)}>${i.launch_configuration}:${i.launch_configuration_version}</a></dd></div>
        <div><dt>${t('instances.ready')}</dt><dd>${yesNo(i.ready)}</dd></div>
        <div><dt>${t('instance.agent')}</dt><dd>${i.agent_connected ? t('instance.agent_connected') : t('instance.agent_disconnected')}</dd></div>
        ${i.health_reason && html`<div class="wide"><dt>${t('instance.health_reason')}</dt><dd>${i.health_reason}</dd></div>`}
        ${i.exit_reason && i.exit_reason !== 'none' && html`<div><dt>${t('instance.exit_reason')}</dt><dd>${t(`exit.${i.exit_reason}`)}</dd></div>`}
        <div><dt>${t('instance.created')}</dt><dd><${Time} ms=${i.created_ms} /></dd></div>
        <div><dt>${t('instance.state_since')}</dt><dd><${Time} ms=${i.state_since_ms} /></dd></div>
      </dl>
    </section>
    <${Section} id="lb" title=${t('instance.lb_title')} testid="lb-slot">
      <dl class="facts">
        <div><dt>${t('instances.in_lb')}</dt><dd data-testid="in-lb">${i.in_lb ? t('instance.in_rotation') : t('instance.not_in_rotation')}</dd></div>
        <div><dt>${t('group.load_balancer')}</dt><dd>${lb && lb.backend ? (lb.port ? `${lb.backend} :${lb.port}` : lb.backend) : t('group.no_load_balancer')}</dd></div>
        ${slot && html`<div><dt>${t('instance.slot')}</dt><dd class="mono">${slot.backend} #${slot.slot}</dd></div>`}
      </dl>
      <p class="muted small">${t('instance.lb_rule')}</p>
    <//>
    <${Section} id="timeline" title=${t('instance.timeline')}>
      ${activities.error && html`<${ErrorBox} error=${activities.error} onRetry=${activities.reload} />`}
      <${Timeline} entries=${timeline} />
    <//>
    <${Section} id="agent" title=${t('instance.report_title')}><${AgentReport} instance=${i} /><//>
  </div>`;
}
