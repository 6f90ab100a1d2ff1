// Sortable column headers and a pager: tables of thousands of rows render
// one page at a time.
import { html } from '../html.js';
import { t } from '../i18n/index.js';

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

// rows sorted by accessors[key] (numbers numerically, text naturally: i-2 before i-10).
export function sortRows(rows, sort, accessors) {
  const get = accessors[sort.key];
  if (!get) return rows;
  const sign = sort.dir === 'desc' ? -1 : 1;
  const keyed = rows.map((row) => [get(row), row]);
  keyed.sort(([a], [b]) => {
    if (a === b) return 0;
    if (a === null || a === undefined || a === '') return 1;
    if (b === null || b === undefined || b === '') return -1;
    const order = typeof a === 'number' && typeof b === 'number' ? a - b : collator.compare(String(a), String(b));
    return sign * order;
  });
  return keyed.map(([, row]) => row);
}

export function SortHeader({ label, column, sort, onSort, testid, num = false }) {
  const active = sort.key === column;
  const ariaSort = active ? (sort.dir === 'asc' ? 'ascending' : 'descending') : 'none';
  const next = () => onSort({ key: column, dir: active && sort.dir === 'asc' ? 'desc' : 'asc' });
  return html`<th scope="col" aria-sort=${ariaSort} class=${num ? 'num' : undefined}>
    <button type="button" class="sort-button" data-testid=${testid || `sort-${column}`} onClick=${next}>
      ${label}<span class="sort-mark" aria-hidden="true">${active ? (sort.dir === 'asc' ? ' ▲' : ' ▼') : ''}</span>
    </button>
  </th>`;
}

export function pageOf(rows, page, size) {
  const pages = Math.max(1, Math.ceil(rows.length / size));
  const current = Math.min(Math.max(0, page), pages - 1);
  return { rows: rows.slice(current * size, current * size + size), page: current, pages };
}

export function Pager({ page, pages, total, size, onPage, label }) {
  if (total <= size) return null;
  const first = page * size + 1;
  const last = Math.min(total, first + size - 1);
  return html`<nav class="pager" aria-label=${label}>
    <button type="button" class="button button-small" data-testid="page-prev" disabled=${page === 0}
      onClick=${() => onPage(page - 1)}>${t('table.previous')}</button>
    <span data-testid="page-info">${t('table.range', { first, last, total })}</span>
    <button type="button" class="button button-small" data-testid="page-next" disabled=${page >= pages - 1}
      onClick=${() => onPage(page + 1)}>${t('table.next')}</button>
  </nav>`;
}
