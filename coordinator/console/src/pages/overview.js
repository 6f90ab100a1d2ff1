// Every scaling group at a glance: capacity, health, the last hour's
// capacity and load, badges. One GET /v1/groups and one GET /v1/history on
// load; afterwards only the groups that changed are fetched again.
import { api } from '../api.js';
import { Badge, ErrorBox, Loading, PageTitle, Section, hrefGroup, useResource } from '../components/common.js';
import { Sparkline } from '../components/sparkline.js';
import { SortHeader, sortRows } from '../components/table.js';
import { fmtNumber } from '../format.js';
import { html, useEffect, useMemo, useState } from '../html.js';
import { t } from '../i18n/index.js';
import { changedGroups, useChanges } from '../live.js';
import { groupHealth, groupRolloutState, rolloutActive } from '../model.js';

// The load each group's sparkline shows.
const OVERVIEW_LOAD_METRIC = 'cpu';

const HISTORY_REFRESH_MS = 60000;
// More changed groups than this in one batch: fetch the list again instead.
const MAX_SINGLE_FETCHES = 8;

function Totals({ groups }) {
  let actual = 0;
  let inService = 0;
  let desired = 0;
  let disabled = 0;
  let failStatic = 0;
  for (const g of groups) {
    actual += g.actual ?? 0;
    inService += g.in_service ?? 0;
    desired += g.desired ?? 0;
    if (!g.enabled) disabled++;
    if (g.fail_static) failStatic++;
  }
  const card = (label, value, testid, kind) => html`<div class=${`card ${kind ? `card-${kind}` : ''}`}>
    <dt>${label}</dt><dd data-testid=${testid}>${fmtNumber(value, 0)}</dd></div>`;
  return html`<dl class="cards" aria-label=${t('overview.totals')}>
    ${card(t('overview.groups'), groups.length, 'total-groups')}
    ${card(t('overview.instances'), actual, 'total-instances')}
    ${card(t('capacity.in_service'), inService, 'total-in-service')}
    ${card(t('capacity.desired'), desired, 'total-desired')}
    ${card(t('overview.disabled'), disabled, 'total-disabled', disabled ? 'warn' : '')}
    ${card(t('overview.fail_static'), failStatic, 'total-fail-static', failStatic ? 'bad' : '')}
  </dl>`;
}

function GroupRow({ group, samples, rollout }) {
  const name = group.name;
  const last = samples && samples.length ? samples[samples.length - 1] : null;
  const health = groupHealth(group, last);
  const rolloutState = rollout ? rollout.state : groupRolloutState(group);
  return html`<tr data-testid=${`group-row-${name}`}>
    <th scope="row"><a href=${hrefGroup(name)} data-testid=${`group-link-${name}`}>${name}</a>
      <div class="muted small">${group.launch_configuration}:${group.launch_configuration_version}</div></th>
    <td>
      <div class="badges">
        ${group.enabled
          ? html`<${Badge} kind="ok" testid=${`badge-enabled-${name}`}>${t('group.enabled')}<//>`
          : html`<${Badge} kind="warn" testid=${`badge-disabled-${name}`}>${t('group.disabled')}<//>`}
        ${group.fail_static && html`<${Badge} kind="bad" testid=${`badge-fail-static-${name}`} title=${t('group.fail_static_title')}>${t('group.fail_static')}<//>`}
        ${rolloutState && (rolloutActive({ state: rolloutState }))
          && html`<${Badge} kind="info" testid=${`badge-rollout-${name}`}>${t('group.rollout_badge', { state: t(`rollout.state.${rolloutState}`) })}<//>`}
      </div>
    </td>
    <td class="num" data-testid=${`min-${name}`}>${group.min}</td>
    <td class="num strong" data-testid=${`desired-${name}`}>${group.desired}</td>
    <td class="num" data-testid=${`in-service-${name}`}>${group.in_service ?? '—'}</td>
    <td class="num" data-testid=${`max-${name}`}>${group.max}</td>
    <td class="num">
      <span data-testid=${`healthy-${name}`} class="health-ok">${health.healthy ?? '—'}</span>
      ${' / '}
      <span data-testid=${`unhealthy-${name}`} class=${health.unhealthy ? 'health-bad' : ''}>${health.unhealthy ?? '—'}</span>
    </td>
    <td><${Sparkline} samples=${samples} loadMetric=${OVERVIEW_LOAD_METRIC} testid=${`sparkline-${name}`} /></td>
  </tr>`;
}

export function OverviewPage() {
  useEffect(() => {
    document.title = `${t('overview.title')} · tide`;
  });
  const groupsResource = useResource(() => api.groups(), []);
  // Capacity and CPU only: every group's agents report CPU, and all the
  // metrics of 100 groups would be several times the bytes.
  const historyResource = useResource(() => api.fleetHistory('1h', '60s', OVERVIEW_LOAD_METRIC), []);
  // Fetched again one by one as changes arrive; starts as the list.
  const [groups, setGroups] = useState(null);
  // Rollouts learned from change events (GET /v1/groups/{g}/rollout).
  const [rollouts, setRollouts] = useState({});
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState({ key: 'name', dir: 'asc' });

  useEffect(() => {
    if (groupsResource.data) setGroups(groupsResource.data);
  }, [groupsResource.data]);

  useEffect(() => {
    const timer = setInterval(() => historyResource.reload(), HISTORY_REFRESH_MS);
    return () => clearInterval(timer);
  }, []);

  const refetchGroup = (name) =>
    api.group(name).then(
      (group) => setGroups((list) => {
        const rest = (list || []).filter((g) => g.name !== name);
        return [...rest, group];
      }),
      (error) => {
        if (error.status === 404) setGroups((list) => (list || []).filter((g) => g.name !== name));
      },
    );

  useChanges((changes, reconnected) => {
    if (reconnected) {
      groupsResource.reload();
      historyResource.reload();
      return;
    }
    const relevant = changes.filter((c) => ['group', 'instance', 'rollout'].includes(c.kind));
    const { groups: touched, unscoped } = changedGroups(relevant);
    if (unscoped || touched.size > MAX_SINGLE_FETCHES) groupsResource.reload();
    else for (const name of touched) refetchGroup(name);
    const rolloutGroups = new Set(changes.filter((c) => c.kind === 'rollout' && c.group).map((c) => c.group));
    for (const name of rolloutGroups) {
      api.rollout(name).then((r) => setRollouts((all) => ({ ...all, [name]: r })), () => {});
    }
  });

  const history = historyResource.data;
  const visible = useMemo(() => {
    if (!groups) return [];
    const needle = filter.trim().toLowerCase();
    const rows = needle ? groups.filter((g) => g.name.toLowerCase().includes(needle) || (g.launch_configuration || '').toLowerCase().includes(needle)) : groups;
    return sortRows(rows, sort, {
      name: (g) => g.name,
      min: (g) => g.min,
      desired: (g) => g.desired,
      in_service: (g) => g.in_service,
      max: (g) => g.max,
    });
  }, [groups, filter, sort]);

  let body;
  if (!groups && groupsResource.error) body = html`<${ErrorBox} error=${groupsResource.error} onRetry=${groupsResource.reload} />`;
  else if (!groups) body = html`<${Loading} />`;
  else if (groups.length === 0) body = html`<p class="empty" data-testid="no-groups">${t('overview.no_groups')}</p>`;
  else {
    body = html`
      <div class="toolbar">
        <div class="field field-inline">
          <label for="group-filter">${t('overview.filter')}</label>
          <input id="group-filter" type="search" value=${filter} data-testid="group-filter" onInput=${(e) => setFilter(e.currentTarget.value)} />
        </div>
        <span class="muted small" aria-live="polite">${t('overview.showing', { n: visible.length, total: groups.length })}</span>
      </div>
      <div class="table-wrap">
        <table class="table" data-testid="groups-table">
          <caption class="sr-only">${t('overview.table_caption')}</caption>
          <thead><tr>
            <${SortHeader} label=${t('group.name')} column="name" sort=${sort} onSort=${setSort} />
            <th scope="col">${t('group.status')}</th>
            <${SortHeader} num label=${t('capacity.min')} column="min" sort=${sort} onSort=${setSort} />
            <${SortHeader} num label=${t('capacity.desired')} column="desired" sort=${sort} onSort=${setSort} />
            <${SortHeader} num label=${t('capacity.in_service')} column="in_service" sort=${sort} onSort=${setSort} />
            <${SortHeader} num label=${t('capacity.max')} column="max" sort=${sort} onSort=${setSort} />
            <th scope="col" class="num">${t('overview.health')}</th>
            <th scope="col">${t('overview.last_hour')}</th>
          </tr></thead>
          <tbody>
            ${visible.map((g) => html`<${GroupRow} key=${g.name} group=${g} samples=${history && history.groups ? history.groups[g.name] : null}
                rollout=${rollouts[g.name]} />`)}
          </tbody>
        </table>
      </div>
      ${historyResource.error && html`<${ErrorBox} error=${historyResource.error} onRetry=${historyResource.reload} />`}
      <p class="muted small legend-line">
        <span class="key key-desired" aria-hidden="true"></span>${t('capacity.desired')}
        <span class="key key-in-service" aria-hidden="true"></span>${t('capacity.in_service')}
        <span class="key key-load" aria-hidden="true"></span>${t('overview.load')}
      </p>`;
  }

  return html`<div>
    <${PageTitle} testid="page-title">${t('overview.title')}<//>
    ${groups && html`<${Totals} groups=${groups} />`}
    <${Section} id="groups" title=${t('overview.groups')} count=${groups ? groups.length : undefined}>${body}<//>
  </div>`;
}
