// A group's scaling activities, newest first, filtered by type and status
// on the server; each shows its cause and what happened to each instance.
import { Badge, ErrorBox, Loading, Section, Time, hrefInstance } from '../components/common.js';
import { fmtDuration } from '../format.js';
import { html } from '../html.js';
import { t } from '../i18n/index.js';
import { ACTIVITY_STATUSES, ACTIVITY_TYPES, statusKind } from '../model.js';

export function ActivityStatus({ status }) {
  return html`<${Badge} kind=${statusKind(status)}>${t(`activity.status.${status}`)}<//>`;
}

function ActivityInstances({ activity }) {
  if (!activity.instances || !activity.instances.length) return html`<span class="muted">—</span>`;
  return html`<ul class="plain-list">${activity.instances.slice(0, 10).map((item) => html`<li>
    <a href=${hrefInstance(item.instance_id)}>${item.instance_id}</a>
    ${!item.ok && html` <${Badge} kind="bad">${t('activity.instance_failed')}<//>`}
    ${item.message && html` <span class="muted small">${item.message}</span>`}
  </li>`)}
  ${activity.instances.length > 10 && html`<li class="muted small">${t('activity.more_instances', { n: activity.instances.length - 10 })}</li>`}</ul>`;
}

export function ActivitiesTable({ activities, caption, showGroup = false }) {
  return html`<div class="table-wrap"><table class="table" data-testid="activities-table">
    <caption class="sr-only">${caption}</caption>
    <thead><tr>
      <th scope="col">${t('activity.started')}</th>
      ${showGroup && html`<th scope="col">${t('group.name')}</th>`}
      <th scope="col">${t('activity.type')}</th>
      <th scope="col">${t('activity.status')}</th>
      <th scope="col">${t('activity.cause')}</th>
      <th scope="col">${t('activity.instances')}</th>
      <th scope="col">${t('activity.duration')}</th>
    </tr></thead>
    <tbody>${activities.map((a) => html`<tr key=${a.id} data-testid=${`activity-row-${a.id}`} data-type=${a.type} data-status=${a.status}>
      <td class="nowrap"><${Time} ms=${a.start_ms} /></td>
      ${showGroup && html`<td>${a.group}</td>`}
      <td>${t(`activity.type.${a.type}`)}</td>
      <td><${ActivityStatus} status=${a.status} /></td>
      <td class="cause">${a.cause}</td>
      <td><${ActivityInstances} activity=${a} /></td>
      <td class="num">${a.end_ms ? fmtDuration(a.end_ms - a.start_ms) : html`<span class="muted">${t('activity.running_now')}</span>`}</td>
    </tr>`)}</tbody>
  </table></div>`;
}

export function ActivitiesPanel({ group, resource, filter, onFilter }) {
  const activities = resource.data;
  const select = (id, key, values, label, prefix) => html`<div class="field field-inline">
    <label for=${id}>${label}</label>
    <select id=${id} value=${filter[key]} data-testid=${id} onChange=${(e) => onFilter({ ...filter, [key]: e.currentTarget.value, limit: 50 })}>
      <option value="">${t('common.all')}</option>
      ${values.map((v) => html`<option value=${v}>${t(`${prefix}.${v}`)}</option>`)}
    </select>
  </div>`;
  let body;
  if (!activities && resource.error) body = html`<${ErrorBox} error=${resource.error} onRetry=${resource.reload} />`;
  else if (!activities) body = html`<${Loading} />`;
  else if (!activities.length) body = html`<p class="empty">${t('activity.none')}</p>`;
  else body = html`<${ActivitiesTable} activities=${activities} caption=${t('activity.caption', { group: group.name })} />
    ${activities.length >= filter.limit && filter.limit < 1000 && html`<button type="button" class="button" data-testid="activities-more"
      onClick=${() => onFilter({ ...filter, limit: Math.min(1000, filter.limit * 4) })}>${t('activity.load_more')}</button>`}`;
  return html`<${Section} id="activities" title=${t('activity.title')} testid="activities">
    <div class="toolbar">
      ${select('activity-type-filter', 'type', ACTIVITY_TYPES, t('activity.type'), 'activity.type')}
      ${select('activity-status-filter', 'status', ACTIVITY_STATUSES, t('activity.status'), 'activity.status')}
      ${resource.error && activities && html`<${ErrorBox} error=${resource.error} />`}
    </div>
    ${body}
  <//>`;
}
