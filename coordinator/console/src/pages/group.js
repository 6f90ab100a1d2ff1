// One scaling group: its capacity and actions, history chart, rollout,
// instances, activities, policies, schedules, lifecycle hooks and
// notifications. Live changes refetch only the parts they touch.
import { api } from '../api.js';
import { setCapacity, setEnabled } from '../actions.js';
import { Badge, ErrorBox, Loading, PageTitle, hrefLaunchConfiguration, useResource, useThrottle } from '../components/common.js';
import { fmtDuration } from '../format.js';
import { html, useEffect, useState } from '../html.js';
import { t } from '../i18n/index.js';
import { useChanges } from '../live.js';
import { RANGES, rolloutActive } from '../model.js';
import { ActivitiesPanel } from './group-activities.js';
import { GroupChart } from './group-chart.js';
import { InstancesPanel } from './group-instances.js';
import { RolloutPanel } from './group-rollout.js';
import { LifecyclePanel, NotificationsPanel, PoliciesPanel, SchedulesPanel } from './group-specs.js';

// The chart's samples and the policies' figures move without change
// events; they are fetched again at these periods while the page is open.
const HISTORY_REFRESH_MS = { '1h': 15000, '24h': 60000, '7d': 300000 };
const METRICS_REFRESH_MS = 15000;

function GroupHeader({ group, rollout, onChanged }) {
  const n = group.name;
  const figure = (label, value, testid, strong) => html`<div class=${strong ? 'figure figure-strong' : 'figure'}>
    <dt>${label}</dt><dd data-testid=${testid}>${value ?? '—'}</dd></div>`;
  const states = Object.entries(group.instances_by_state || {});
  return html`<section class="panel group-header" aria-labelledby="page-title" data-testid="group-header">
    <div class="group-title">
      <${PageTitle} testid="page-title"><span class="muted title-kind">${t('group.kind')}</span> ${n}<//>
      <div class="badges">
        ${group.enabled
          ? html`<${Badge} kind="ok" testid="group-enabled">${t('group.enabled')}<//>`
          : html`<${Badge} kind="warn" testid="group-disabled">${t('group.disabled')}<//>`}
        ${group.fail_static && html`<${Badge} kind="bad" testid="group-fail-static" title=${t('group.fail_static_title')}>${t('group.fail_static')}<//>`}
        ${rolloutActive(rollout) && html`<${Badge} kind="info" testid="group-rollout">${t('group.rollout_badge', { state: t(`rollout.state.${rollout.state}`) })}<//>`}
      </div>
    </div>
    <dl class="figures" aria-label=${t('group.capacity')}>
      ${figure(t('capacity.min'), group.min, `min-${n}`)}
      ${figure(t('capacity.desired'), group.desired, `desired-${n}`, true)}
      ${figure(t('capacity.in_service'), group.in_service, `in-service-${n}`)}
      ${figure(t('capacity.actual'), group.actual, `actual-${n}`)}
      ${figure(t('capacity.max'), group.max, `max-${n}`)}
    </dl>
    <div class="group-actions">
      <button type="button" class="button button-primary" data-testid="action-set-desired" onClick=${() => setCapacity(group, 'desired', onChanged)}>${t('group.set_desired')}</button>
      <button type="button" class="button" data-testid="action-set-min" onClick=${() => setCapacity(group, 'min', onChanged)}>${t('group.set_min')}</button>
      <button type="button" class="button" data-testid="action-set-max" onClick=${() => setCapacity(group, 'max', onChanged)}>${t('group.set_max')}</button>
      ${group.enabled
        ? html`<button type="button" class="button button-danger-outline" data-testid="action-disable" onClick=${() => setEnabled(group, false, onChanged)}>${t('group.disable')}</button>`
        : html`<button type="button" class="button" data-testid="action-enable" onClick=${() => setEnabled(group, true, onChanged)}>${t('group.enable')}</button>`}
    </div>
    <dl class="facts">
      <div><dt>${t('group.launch_configuration')}</dt><dd><a href=${hrefLaunchConfiguration(group.launch_configuration)}>${group.launch_configuration}:${group.launch_configuration_version}</a></dd></div>
      <div><dt>${t('group.load_balancer')}</dt><dd>${group.load_balancer && group.load_balancer.backend ? (group.load_balancer.port ? `${group.load_balancer.backend} :${group.load_balancer.port}` : group.load_balancer.backend) : t('group.no_load_balancer')}</dd></div>
      <div><dt>${t('group.termination_policy')}</dt><dd>${t(`termination.${group.termination_policy}`)}</dd></div>
      <div><dt>${t('group.cooldown')}</dt><dd>${fmtDuration(group.default_cooldown_ms)}</dd></div>
      <div><dt>${t('group.grace')}</dt><dd>${fmtDuration(group.health_check_grace_period_ms)}</dd></div>
      <div><dt>${t('group.by_state')}</dt><dd>${states.length ? states.map(([s, c]) => `${t(`state.${s}`)} ${c}`).join(' · ') : '—'}</dd></div>
    </dl>
  </section>`;
}

export function GroupPage({ name }) {
  const [range, setRange] = useState('1h');
  const [showAll, setShowAll] = useState(false);
  const [activityFilter, setActivityFilter] = useState({ type: '', status: '', limit: 50 });

  const group = useResource(() => api.group(name), [name]);
  const instances = useResource(() => api.instances(name, showAll), [name, showAll]);
  const activities = useResource(() => api.activities(name, activityFilter), [name, activityFilter]);
  const specs = useResource(async () => {
    const [policies, schedules, hooks, notifications] = await Promise.all([
      api.policies(name), api.schedules(name), api.hooks(name), api.notifications(name),
    ]);
    return { policies, schedules, hooks, notifications };
  }, [name]);
  const lifecycle = useResource(() => api.lifecycleActions(name), [name]);
  const rollout = useResource(() => api.rollout(name), [name]);
  const metrics = useResource(() => api.groupMetrics(name), [name]);
  const history = useResource(() => api.history(name, range), [name, range]);
  const markers = useResource(
    () => api.activities(name, { since: Date.now() - RANGES[range], limit: 1000 }),
    [name, range],
  );

  const reloadHistory = useThrottle(() => history.reload(), 5000);
  const reloadMarkers = useThrottle(() => markers.reload(), 2000);

  useEffect(() => {
    document.title = `${name} · tide`;
  });
  useEffect(() => {
    const timer = setInterval(() => history.reload(), HISTORY_REFRESH_MS[range]);
    return () => clearInterval(timer);
  }, [range]);
  useEffect(() => {
    const timer = setInterval(() => metrics.reload(), METRICS_REFRESH_MS);
    return () => clearInterval(timer);
  }, []);

  const reloadAll = () => {
    for (const r of [group, instances, activities, specs, lifecycle, rollout, metrics, history, markers]) r.reload();
  };

  useChanges((changes, reconnected) => {
    if (reconnected) {
      reloadAll();
      return;
    }
    const kinds = new Set(changes.filter((c) => c.group === name || !c.group).map((c) => c.kind));
    if (kinds.has('group') || kinds.has('instance') || kinds.has('rollout')) group.reload();
    if (kinds.has('instance')) {
      instances.reload();
      lifecycle.reload();
      reloadHistory();
    }
    if (kinds.has('activity')) {
      activities.reload();
      reloadMarkers();
    }
    if (kinds.has('rollout')) rollout.reload();
    if (kinds.has('spec')) {
      specs.reload();
      metrics.reload();
    }
    if (kinds.has('group')) reloadHistory();
  });

  // After an action, refetch at once what it changes (the change events
  // follow, but the user should see the result now).
  const onChanged = () => {
    group.reload();
    instances.reload();
    activities.reload();
    lifecycle.reload();
    rollout.reload();
  };

  if (!group.data && group.error) {
    return html`<div>
      <${PageTitle} testid="page-title">${name}<//>
      <${ErrorBox} error=${group.error} onRetry=${group.reload} />
      <p><a href="#/">${t('notfound.back')}</a></p>
    </div>`;
  }
  if (!group.data) return html`<${Loading} />`;
  const g = group.data;
  return html`<div class="group-page">
    <nav aria-label=${t('nav.breadcrumb')} class="breadcrumb"><a href="#/">${t('nav.overview')}</a>${' / '}<span aria-current="page">${name}</span></nav>
    ${group.error && html`<${ErrorBox} error=${group.error} onRetry=${group.reload} />`}
    <${GroupHeader} group=${g} rollout=${rollout.data} onChanged=${onChanged} />
    <${GroupChart} name=${name} history=${history.data} historyError=${history.error} onRetry=${history.reload}
      activities=${markers.data} policies=${specs.data ? specs.data.policies : []} range=${range} onRange=${setRange} />
    <${RolloutPanel} group=${g} resource=${rollout} onChanged=${onChanged} />
    <${InstancesPanel} group=${g} resource=${instances} showAll=${showAll} onShowAll=${setShowAll} onChanged=${onChanged} />
    <${ActivitiesPanel} group=${g} resource=${activities} filter=${activityFilter} onFilter=${setActivityFilter} />
    <${PoliciesPanel} group=${g} specs=${specs} metrics=${metrics} onChanged=${onChanged} />
    <${SchedulesPanel} group=${g} specs=${specs} />
    <${LifecyclePanel} group=${g} specs=${specs} actions=${lifecycle} onChanged=${onChanged} />
    <${NotificationsPanel} group=${g} specs=${specs} />
  </div>`;
}
