// The group's history: capacity (desired, in service, the min..max band)
// and one chart per metric its policies read, with their thresholds and
// targets (the group's other metrics on request); scaling activities are
// markers whose cause shows on hover.
import { Badge, ErrorBox, Loading, Section } from '../components/common.js';
import { TimeChart } from '../components/timechart.js';
import { fmtDateTime, fmtNumber } from '../format.js';
import { html, useMemo, useState } from '../html.js';
import { t } from '../i18n/index.js';

const COLORS = {
  desired: '#1f5fbf',
  in_service: '#1a7f37',
  bound: '#6e7781',
  band: 'rgba(110,119,129,0.10)',
  metric: '#b35900',
  line: '#8250df',
  successful: '#1a7f37',
  failed: '#cf222e',
  running: '#1f5fbf',
  other: '#6e7781',
};

const markerColor = (status) => COLORS[status] || COLORS.other;

export function RangeSwitch({ range, onRange }) {
  return html`<fieldset class="segmented" data-testid="range">
    <legend class="sr-only">${t('chart.range')}</legend>
    ${['1h', '24h', '7d'].map((r) => html`<label class=${range === r ? 'segment segment-on' : 'segment'}>
      <input type="radio" name="history-range" value=${r} checked=${range === r} data-testid=${`range-${r}`}
        onChange=${() => onRange(r)} />${t(`chart.range_${r}`)}</label>`)}
  </fieldset>`;
}

function metricNamesOf(history) {
  if (Array.isArray(history.metrics)) return history.metrics;
  const names = new Set();
  for (const s of history.samples || []) for (const name of Object.keys(s.metrics || {})) names.add(name);
  return [...names].sort();
}

export function GroupChart({ name, history, historyError, onRetry, activities, policies, range, onRange }) {
  const samples = history ? history.samples || [] : [];
  const xs = useMemo(() => samples.map((s) => s.t_ms / 1000), [history]);
  const capacity = useMemo(() => [
    xs,
    samples.map((s) => s.max ?? null),
    samples.map((s) => s.min ?? null),
    samples.map((s) => s.desired ?? null),
    samples.map((s) => s.in_service ?? null),
  ], [history]);
  const markers = useMemo(() => (activities || []).map((a) => ({
    x_s: a.start_ms / 1000,
    color: markerColor(a.status),
    text: `${fmtDateTime(a.start_ms)} · ${t(`activity.type.${a.type}`)} (${t(`activity.status.${a.status}`)}): ${a.cause}`,
  })), [activities]);

  const [allMetrics, setAllMetrics] = useState(false);
  const policyMetrics = new Set((policies || []).map((p) => p.metric));
  const names = history ? metricNamesOf(history) : [];
  const others = names.filter((metric) => !policyMetrics.has(metric));
  const metricCharts = useMemo(() => {
    if (!history) return [];
    return names.filter((metric) => allMetrics || policyMetrics.has(metric)).map((metric) => {
      const lines = (policies || []).filter((p) => p.metric === metric).map((p) => ({
        label: p.type === 'target_tracking'
          ? t('chart.target_line', { policy: p.name, value: fmtNumber(p.target) })
          : t('chart.threshold_line', { policy: p.name, comparison: p.comparison, value: fmtNumber(p.threshold) }),
        value: p.type === 'target_tracking' ? p.target : p.threshold,
      }));
      const data = [xs, samples.map((s) => (s.metrics && typeof s.metrics[metric] === 'number' ? s.metrics[metric] : null))];
      for (const line of lines) data.push(xs.map(() => line.value));
      const series = [
        { label: metric, stroke: COLORS.metric, spanGaps: false },
        ...lines.map((line) => ({ label: line.label, stroke: COLORS.line, dash: [6, 4], width: 1.5, points: { show: false } })),
      ];
      return { metric, data, series };
    });
  }, [history, policies, allMetrics]);

  let body;
  if (!history && historyError) body = html`<${ErrorBox} error=${historyError} onRetry=${onRetry} />`;
  else if (!history) body = html`<${Loading} />`;
  else {
    body = html`
      <${TimeChart} testid="chart" data=${capacity} markers=${markers} syncKey=${`group-${name}`} integer=${true}
        caption=${t('chart.capacity_caption', { n: samples.length, step: history.step_s ?? '—' })}
        series=${[
          { label: t('capacity.max'), stroke: COLORS.bound, dash: [4, 4], width: 1 },
          { label: t('capacity.min'), stroke: COLORS.bound, dash: [4, 4], width: 1 },
          { label: t('capacity.desired'), stroke: COLORS.desired, width: 2 },
          { label: t('capacity.in_service'), stroke: COLORS.in_service, width: 2 },
        ]}
        bands=${[{ series: [1, 2], fill: COLORS.band }]} />
      ${samples.length === 0 && html`<p class="muted" data-testid="chart-empty">${t('chart.no_samples')}</p>`}
      ${metricCharts.map((c) => html`<${TimeChart} key=${c.metric} testid=${`metric-chart-${c.metric}`} data=${c.data}
          series=${c.series} markers=${markers} syncKey=${`group-${name}`} height=${160}
          caption=${t('chart.metric_caption', { metric: c.metric })} />`)}
      ${others.length > 0 && html`<p><button type="button" class="button" data-testid="chart-all-metrics"
          aria-pressed=${allMetrics} onClick=${() => setAllMetrics(!allMetrics)}>
        ${allMetrics ? t('chart.hide_other_metrics') : t('chart.show_other_metrics', { n: others.length })}</button></p>`}
      <p class="muted small legend-line">
        ${t('chart.markers')}
        <${Badge} kind="ok">${t('activity.status.successful')}<//>
        <${Badge} kind="bad">${t('activity.status.failed')}<//>
        <${Badge} kind="info">${t('activity.status.running')}<//>
      </p>`;
  }
  return html`<${Section} id="history" title=${t('chart.title')} testid="history"
      actions=${html`<${RangeSwitch} range=${range} onRange=${onRange} />`}>
    ${body}
  <//>`;
}
