// A group's instances: text and state filters, sortable columns, one page
// of 100 rows at a time (fast at thousands), and the per-instance actions.
import { removeInstance, setProtection } from '../actions.js';
import { Age, Badge, ErrorBox, Loading, Section, hrefInstance, useNow } from '../components/common.js';
import { Pager, SortHeader, pageOf, sortRows } from '../components/table.js';
import { html, useMemo, useState } from '../html.js';
import { t } from '../i18n/index.js';
import { STATES, TERMINAL_STATES, stateKind } from '../model.js';

const PAGE_SIZE = 100;
const STATE_ORDER = Object.fromEntries(STATES.map((s, i) => [s, i]));

export function StateBadge({ state }) {
  return html`<${Badge} kind=${stateKind(state)}>${t(`state.${state}`)}<//>`;
}

export function HealthBadge({ instance }) {
  return instance.health === 'healthy'
    ? html`<${Badge} kind="ok">${t('health.healthy')}<//>`
    : html`<${Badge} kind="bad" title=${instance.health_reason || undefined}>${t('health.unhealthy')}<//>`;
}

export const yesNo = (value) => (value === null || value === undefined ? t('common.unknown') : value ? t('common.yes') : t('common.no'));

function InstanceRow({ instance: i, group, now, onChanged }) {
  const terminal = TERMINAL_STATES.has(i.state);
  return html`<tr data-testid=${`instance-row-${i.id}`} data-state=${i.state} data-health=${i.health}>
    <th scope="row"><a href=${hrefInstance(i.id)}>${i.id}</a>${i.origin === 'attached' && html` <${Badge} kind="muted">${t('instance.attached')}<//>`}</th>
    <td><${StateBadge} state=${i.state} /></td>
    <td><${HealthBadge} instance=${i} />${i.health !== 'healthy' && i.health_reason && html`<div class="muted small clip" title=${i.health_reason}>${i.health_reason}</div>`}</td>
    <td>${yesNo(i.ready)}</td>
    <td>${i.in_lb ? html`<${Badge} kind="ok">${t('instance.in_lb')}<//>` : html`<span class="muted">${t('common.no')}</span>`}</td>
    <td class="mono">${i.address ? `${i.address}:${i.port}` : '—'}</td>
    <td class="num"><${Age} ms=${i.created_ms} now=${now} /></td>
    <td>${i.launch_configuration}:${i.launch_configuration_version}</td>
    <td>${i.protected_from_scale_in ? html`<${Badge} kind="info">${t('instance.protected')}<//>` : html`<span class="muted">—</span>`}</td>
    <td class="row-actions">
      ${!terminal && html`
        <button type="button" class="button button-small" aria-label=${`${t(i.protected_from_scale_in ? 'instance.unprotect' : 'instance.protect')} ${i.id}`}
          data-testid=${`instance-action-${i.protected_from_scale_in ? 'unprotect' : 'protect'}-${i.id}`}
          onClick=${() => setProtection(i, !i.protected_from_scale_in, onChanged)}>
          ${t(i.protected_from_scale_in ? 'instance.unprotect' : 'instance.protect')}</button>
        <button type="button" class="button button-small" aria-label=${`${t('instance.detach')} ${i.id}`}
          data-testid=${`instance-action-detach-${i.id}`} onClick=${() => removeInstance('detach', i, group, onChanged)}>${t('instance.detach')}</button>
        <button type="button" class="button button-small button-danger-outline" aria-label=${`${t('instance.terminate')} ${i.id}`}
          data-testid=${`instance-action-terminate-${i.id}`} onClick=${() => removeInstance('terminate', i, group, onChanged)}>${t('instance.terminate')}</button>`}
    </td>
  </tr>`;
}

export function InstancesPanel({ group, resource, showAll, onShowAll, onChanged }) {
  const now = useNow(5000);
  const [filter, setFilter] = useState('');
  const [stateFilter, setStateFilter] = useState('');
  const [sort, setSort] = useState({ key: 'created', dir: 'desc' });
  const [page, setPage] = useState(0);
  const instances = resource.data;

  const filtered = useMemo(() => {
    if (!instances) return [];
    const needle = filter.trim().toLowerCase();
    const rows = instances.filter((i) => (!stateFilter || i.state === stateFilter)
      && (!needle || i.id.toLowerCase().includes(needle) || (i.address || '').includes(needle)
        || (i.provider_id || '').toLowerCase().includes(needle) || `${i.launch_configuration}:${i.launch_configuration_version}`.includes(needle)));
    return sortRows(rows, sort, {
      id: (i) => i.id,
      state: (i) => STATE_ORDER[i.state] ?? 99,
      health: (i) => i.health,
      ready: (i) => (i.ready === null ? -1 : i.ready ? 1 : 0),
      in_lb: (i) => (i.in_lb ? 1 : 0),
      address: (i) => (i.address ? `${i.address}:${String(i.port).padStart(5, '0')}` : ''),
      created: (i) => i.created_ms,
      version: (i) => `${i.launch_configuration}:${String(i.launch_configuration_version).padStart(8, '0')}`,
      protected: (i) => (i.protected_from_scale_in ? 1 : 0),
    });
  }, [instances, filter, stateFilter, sort]);
  const shown = pageOf(filtered, page, PAGE_SIZE);
  const statesPresent = useMemo(() => STATES.filter((s) => (instances || []).some((i) => i.state === s)), [instances]);

  let body;
  if (!instances && resource.error) body = html`<${ErrorBox} error=${resource.error} onRetry=${resource.reload} />`;
  else if (!instances) body = html`<${Loading} />`;
  else {
    const header = (label, column) => html`<${SortHeader} label=${label} column=${column} sort=${sort}
      onSort=${(s) => { setSort(s); setPage(0); }} testid=${`sort-instances-${column}`} />`;
    body = html`
      <div class="toolbar">
        <div class="field field-inline">
          <label for="instance-filter">${t('instances.filter')}</label>
          <input id="instance-filter" type="search" value=${filter} data-testid="instance-filter"
            onInput=${(e) => { setFilter(e.currentTarget.value); setPage(0); }} />
        </div>
        <div class="field field-inline">
          <label for="instance-state-filter">${t('instances.state_filter')}</label>
          <select id="instance-state-filter" value=${stateFilter} data-testid="instance-state-filter"
            onChange=${(e) => { setStateFilter(e.currentTarget.value); setPage(0); }}>
            <option value="">${t('common.all')}</option>
            ${(stateFilter && !statesPresent.includes(stateFilter) ? [...statesPresent, stateFilter] : statesPresent)
              .map((s) => html`<option value=${s}>${t(`state.${s}`)}</option>`)}
          </select>
        </div>
        <div class="field field-check">
          <input id="instance-show-all" type="checkbox" checked=${showAll} data-testid="instance-show-all"
            onChange=${(e) => onShowAll(e.currentTarget.checked)} />
          <label for="instance-show-all">${t('instances.show_terminated')}</label>
        </div>
        <span class="muted small" aria-live="polite" data-testid="instance-count">${t('instances.showing', { n: filtered.length, total: instances.length })}</span>
      </div>
      ${instances.length === 0
        ? html`<p class="empty">${t('instances.none')}</p>`
        : html`<div class="table-wrap"><table class="table" data-testid="instances-table">
          <caption class="sr-only">${t('instances.caption', { group: group.name })}</caption>
          <thead><tr>
            ${header(t('instances.id'), 'id')}
            ${header(t('instances.state'), 'state')}
            ${header(t('instances.health'), 'health')}
            ${header(t('instances.ready'), 'ready')}
            ${header(t('instances.in_lb'), 'in_lb')}
            ${header(t('instances.address'), 'address')}
            ${header(t('instances.age'), 'created')}
            ${header(t('instances.version'), 'version')}
            ${header(t('instances.protection'), 'protected')}
            <th scope="col">${t('common.actions')}</th>
          </tr></thead>
          <tbody>${shown.rows.map((i) => html`<${InstanceRow} key=${i.id} instance=${i} group=${group} now=${now} onChanged=${onChanged} />`)}</tbody>
        </table></div>
        <${Pager} page=${shown.page} pages=${shown.pages} total=${filtered.length} size=${PAGE_SIZE}
          onPage=${setPage} label=${t('instances.pages')} />`}`;
  }
  return html`<${Section} id="instances" title=${t('instances.title')} count=${instances ? instances.length : undefined} testid="instances">${body}<//>`;
}
