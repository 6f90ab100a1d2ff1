// Launch configurations: the list, one configuration's versions, and a
// field-by-field diff between two versions.
import { api } from '../api.js';
import { ErrorBox, Loading, PageTitle, Section, Time, hrefGroup, hrefLaunchConfiguration, useResource } from '../components/common.js';
import { fmtNumber } from '../format.js';
import { html, useEffect, useMemo, useState } from '../html.js';
import { t } from '../i18n/index.js';
import { useChanges } from '../live.js';
import { diffFields, groupVersions } from '../model.js';

function useConfigurations() {
  const configs = useResource(() => api.launchConfigurations(), []);
  const groups = useResource(() => api.groups(), []);
  useChanges((changes, reconnected) => {
    if (reconnected || changes.some((c) => c.kind === 'launch_configuration')) configs.reload();
    if (reconnected || changes.some((c) => c.kind === 'group')) groups.reload();
  });
  return { configs, groups };
}

function usedBy(groups, id, version) {
  return (groups || []).filter((g) => g.launch_configuration === id && (version === undefined || g.launch_configuration_version === version));
}

const GroupLinks = ({ groups }) => (groups.length
  ? groups.map((g, i) => html`${i ? ', ' : ''}<a href=${hrefGroup(g.name)}>${g.name}</a>`)
  : html`<span class="muted">—</span>`);

export function LaunchConfigurationsPage() {
  useEffect(() => {
    document.title = `${t('lc.title')} · tide`;
  });
  const { configs, groups } = useConfigurations();
  const list = useMemo(() => groupVersions(configs.data), [configs.data]);
  let body;
  if (!configs.data && configs.error) body = html`<${ErrorBox} error=${configs.error} onRetry=${configs.reload} />`;
  else if (!configs.data) body = html`<${Loading} />`;
  else if (!list.length) body = html`<p class="empty">${t('lc.none')}</p>`;
  else {
    body = html`<div class="table-wrap"><table class="table" data-testid="lc-table">
      <caption class="sr-only">${t('lc.title')}</caption>
      <thead><tr><th scope="col">${t('lc.name')}</th><th scope="col">${t('lc.latest')}</th><th scope="col">${t('lc.versions')}</th>
        <th scope="col">${t('lc.command')}</th><th scope="col">${t('lc.price')}</th><th scope="col">${t('lc.used_by')}</th>
        <th scope="col">${t('lc.created')}</th></tr></thead>
      <tbody>${list.map(({ id, versions }) => {
        const latest = versions[0];
        return html`<tr key=${id} data-testid=${`lc-row-${id}`}>
          <th scope="row"><a href=${hrefLaunchConfiguration(id)}>${id}</a></th>
          <td class="num">v${latest.version}</td><td class="num">${versions.length}</td>
          <td class="mono small clip" title=${latest.command}>${latest.command}</td>
          <td class="num">${fmtNumber(latest.hourly_price, 4)}</td>
          <td><${GroupLinks} groups=${usedBy(groups.data, id)} /></td>
          <td><${Time} ms=${latest.created_ms} relative=${true} /></td>
        </tr>`;
      })}</tbody>
    </table></div>`;
  }
  return html`<div>
    <${PageTitle} testid="page-title">${t('lc.title')}<//>
    <${Section} id="lcs" title=${t('lc.all')} count=${configs.data ? list.length : undefined}>${body}<//>
  </div>`;
}

function show(value) {
  if (value === undefined) return html`<span class="muted">${t('lc.absent')}</span>`;
  if (value === '' || value === null) return html`<span class="muted">""</span>`;
  return String(value);
}

function Diff({ versions }) {
  const [from, setFrom] = useState(versions.length > 1 ? versions[1].version : versions[0].version);
  const [to, setTo] = useState(versions[0].version);
  const [all, setAll] = useState(false);
  const a = versions.find((v) => v.version === Number(from)) || versions[0];
  const b = versions.find((v) => v.version === Number(to)) || versions[0];
  const rows = diffFields(a, b);
  const changed = rows.filter((r) => r.change !== 'same');
  const shown = all ? rows : changed;
  const select = (id, value, onChange, label) => html`<div class="field field-inline">
    <label for=${id}>${label}</label>
    <select id=${id} value=${value} data-testid=${id} onChange=${(e) => onChange(Number(e.currentTarget.value))}>
      ${versions.map((v) => html`<option value=${v.version}>v${v.version}</option>`)}
    </select></div>`;
  return html`<${Section} id="diff" title=${t('lc.diff_title')} testid="lc-diff">
    <div class="toolbar">
      ${select('diff-from', from, setFrom, t('lc.diff_from'))}
      ${select('diff-to', to, setTo, t('lc.diff_to'))}
      <div class="field field-check"><input id="diff-all" type="checkbox" checked=${all} onChange=${(e) => setAll(e.currentTarget.checked)} />
        <label for="diff-all">${t('lc.diff_show_same')}</label></div>
      <span class="muted small" aria-live="polite" data-testid="diff-count">${t('lc.diff_count', { n: changed.length })}</span>
    </div>
    ${shown.length === 0 ? html`<p class="empty">${t('lc.diff_none')}</p>` : html`<div class="table-wrap"><table class="table diff">
      <caption class="sr-only">${t('lc.diff_caption', { from: a.version, to: b.version })}</caption>
      <thead><tr><th scope="col">${t('lc.field')}</th><th scope="col">v${a.version}</th><th scope="col">v${b.version}</th><th scope="col">${t('lc.change')}</th></tr></thead>
      <tbody>${shown.map((r) => html`<tr key=${r.field} class=${`diff-${r.change}`} data-testid=${`diff-row-${r.field}`} data-change=${r.change}>
        <th scope="row" class="mono">${r.field}</th><td class="mono small">${show(r.from)}</td><td class="mono small">${show(r.to)}</td>
        <td>${t(`lc.change.${r.change}`)}</td></tr>`)}</tbody>
    </table></div>`}
  <//>`;
}

export function LaunchConfigurationPage({ id }) {
  useEffect(() => {
    document.title = `${id} · tide`;
  });
  const { configs, groups } = useConfigurations();
  const entry = useMemo(() => groupVersions(configs.data).find((e) => e.id === id), [configs.data, id]);
  let body;
  if (!configs.data && configs.error) body = html`<${ErrorBox} error=${configs.error} onRetry=${configs.reload} />`;
  else if (!configs.data) body = html`<${Loading} />`;
  else if (!entry) body = html`<p class="empty" data-testid="lc-missing">${t('lc.missing', { id })}</p>`;
  else {
    body = html`
      <${Section} id="versions" title=${t('lc.versions')} count=${entry.versions.length}>
        <div class="table-wrap"><table class="table" data-testid="lc-versions-table">
          <caption class="sr-only">${t('lc.versions_caption', { id })}</caption>
          <thead><tr><th scope="col">${t('lc.version')}</th><th scope="col">${t('lc.command')}</th><th scope="col">${t('lc.port')}</th>
            <th scope="col">${t('lc.env')}</th><th scope="col">${t('lc.price')}</th><th scope="col">${t('lc.used_by')}</th><th scope="col">${t('lc.created')}</th></tr></thead>
          <tbody>${entry.versions.map((v) => html`<tr key=${v.version} data-testid=${`lc-version-row-${id}-${v.version}`}>
            <th scope="row">v${v.version}</th>
            <td class="mono small clip" title=${v.command}>${v.command}</td><td class="num">${v.port}</td>
            <td class="small">${Object.keys(v.env || {}).length + Object.keys(v.env_files || {}).length}</td>
            <td class="num">${fmtNumber(v.hourly_price, 4)}</td>
            <td><${GroupLinks} groups=${usedBy(groups.data, id, v.version)} /></td>
            <td><${Time} ms=${v.created_ms} /></td></tr>`)}</tbody>
        </table></div>
      <//>
      ${entry.versions.length > 0 && html`<${Diff} key=${entry.versions.length} versions=${entry.versions} />`}`;
  }
  return html`<div>
    <nav aria-label=${t('nav.breadcrumb')} class="breadcrumb"><a href="#/launch-configurations">${t('lc.title')}</a>${' / '}<span aria-current="page">${id}</span></nav>
    <${PageTitle} testid="page-title"><span class="muted title-kind">${t('lc.kind')}</span> ${id}<//>
    ${body}
  </div>`;
}
