// The overview's per-group sparkline: desired and in-service capacity on one
// scale, the load metric on its own, as a small SVG (a hundred of them cost
// less than one canvas chart each).
import { html } from '../html.js';
import { t } from '../i18n/index.js';
import { fmtNumber } from '../format.js';

const W = 120;
const H = 32;
const PAD = 2;

function path(samples, value, low, high, t0, t1) {
  const span = t1 - t0 || 1;
  const range = high - low || 1;
  let d = '';
  let pen = false;
  for (const sample of samples) {
    const v = value(sample);
    if (v === null || v === undefined || Number.isNaN(v)) {
      pen = false;
      continue;
    }
    const x = PAD + ((sample.t_ms - t0) / span) * (W - 2 * PAD);
    const y = H - PAD - ((v - low) / range) * (H - 2 * PAD);
    d += `${pen ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)}`;
    pen = true;
  }
  return d;
}

export function Sparkline({ samples, loadMetric, testid }) {
  if (!samples || samples.length === 0) {
    return html`<span class="muted small" data-testid=${testid} data-points="0">${t('overview.no_history')}</span>`;
  }
  const t0 = samples[0].t_ms;
  const t1 = samples[samples.length - 1].t_ms;
  let high = 1;
  let loadHigh = 0;
  for (const s of samples) {
    high = Math.max(high, s.desired ?? 0, s.in_service ?? 0);
    const load = loadMetric ? s.metrics?.[loadMetric] : null;
    if (typeof load === 'number') loadHigh = Math.max(loadHigh, load);
  }
  const last = samples[samples.length - 1];
  const lastLoad = loadMetric ? last.metrics?.[loadMetric] : null;
  const label = t('overview.sparkline_label', {
    desired: last.desired ?? '—',
    in_service: last.in_service ?? '—',
  }) + (loadMetric ? ` ${t('overview.sparkline_load', { metric: loadMetric, value: fmtNumber(lastLoad), max: fmtNumber(loadHigh) })}` : '');
  return html`<svg class="sparkline" viewBox=${`0 0 ${W} ${H}`} width=${W} height=${H} role="img"
      aria-label=${label} data-testid=${testid} data-points=${samples.length}>
    <title>${label}</title>
    ${loadMetric && loadHigh > 0 && html`<path class="spark-load" d=${path(samples, (s) => s.metrics?.[loadMetric], 0, loadHigh * 1.1, t0, t1)} />`}
    <path class="spark-desired" d=${path(samples, (s) => s.desired, 0, high * 1.15, t0, t1)} />
    <path class="spark-in-service" d=${path(samples, (s) => s.in_service, 0, high * 1.15, t0, t1)} />
  </svg>`;
}
