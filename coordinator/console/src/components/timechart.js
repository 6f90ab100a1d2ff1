// A uPlot time-series chart that follows its container's width, formats its
// axes and legend in the viewer's language and zone, and can draw markers
// (scaling activities) whose text shows on hover.
//
// <TimeChart data=${[xs_s, ys...]} series=${[{label, stroke, ...}]} bands=${...}
//            markers=${[{x_s, color, text}]} testid="chart" caption="..." />
import uPlot from 'uplot';
import { html, useEffect, useRef } from '../html.js';
import { fmtAxisTime, fmtDateTime, fmtNumber } from '../format.js';
import { language, t } from '../i18n/index.js';

const MARKER_HIT_PX = 6;

function markersPlugin(getMarkers) {
  let tip = null;
  return {
    hooks: {
      init: (u) => {
        tip = document.createElement('div');
        tip.className = 'chart-tip';
        tip.setAttribute('aria-hidden', 'true');
        tip.style.display = 'none';
        u.over.appendChild(tip);
      },
      draw: (u) => {
        const markers = getMarkers();
        if (!markers.length) return;
        const { ctx } = u;
        const { top, height } = u.bbox;
        const [min, max] = [u.scales.x.min, u.scales.x.max];
        ctx.save();
        for (const marker of markers) {
          if (marker.x_s < min || marker.x_s > max) continue;
          const x = Math.round(u.valToPos(marker.x_s, 'x', true));
          ctx.strokeStyle = marker.color;
          ctx.fillStyle = marker.color;
          ctx.globalAlpha = 0.5;
          ctx.lineWidth = 1 * devicePixelRatio;
          ctx.setLineDash([3 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.globalAlpha = 1;
          const s = 5 * devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(x - s, top);
          ctx.lineTo(x + s, top);
          ctx.lineTo(x, top + s * 1.6);
          ctx.closePath();
          ctx.fill();
        }
        ctx.restore();
      },
      setCursor: (u) => {
        if (!tip) return;
        const left = u.cursor.left;
        if (left === undefined || left < 0) {
          tip.style.display = 'none';
          return;
        }
        const near = getMarkers().filter((m) => Math.abs(u.valToPos(m.x_s, 'x') - left) <= MARKER_HIT_PX);
        if (!near.length) {
          tip.style.display = 'none';
          return;
        }
        tip.textContent = '';
        for (const marker of near.slice(0, 4)) {
          const line = document.createElement('div');
          line.textContent = marker.text;
          tip.appendChild(line);
        }
        tip.style.display = 'block';
        const width = u.over.clientWidth;
        tip.style.left = `${Math.min(left + 10, Math.max(0, width - 280))}px`;
        tip.style.top = '8px';
      },
    },
  };
}

export function TimeChart({ data, series, bands, markers = [], height = 220, testid, caption, syncKey, yRange, integer = false }) {
  const holder = useRef(null);
  const chart = useRef(null);
  const markersRef = useRef(markers);
  markersRef.current = markers;
  // A new chart when the series, the band or the language (labels, axis formats) change.
  const structure = JSON.stringify([language(), series.map((s) => [s.label, s.scale || 'y']), bands || []]);

  useEffect(() => {
    const element = holder.current;
    const options = {
      width: Math.max(200, element.clientWidth),
      height,
      cursor: syncKey ? { sync: { key: syncKey } } : {},
      legend: { live: true },
      scales: { x: { time: true }, y: { range: yRange || ((u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1]) } },
      bands: bands || [],
      series: [
        { label: t('chart.time'), value: (u, v) => (v === null ? '—' : fmtDateTime(v * 1000)) },
        ...series.map((s) => ({ value: (u, v) => (v === null || v === undefined ? '—' : fmtNumber(v)), width: 2, ...s })),
      ],
      axes: [
        { values: (u, splits, axis, space, incr) => splits.map((v) => fmtAxisTime(v * 1000, incr * 1000)) },
        // Instance counts get whole-number ticks only.
        { values: (u, splits) => splits.map((v) => fmtNumber(v)), size: 50, ...(integer ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] } : {}) },
      ],
      plugins: [markersPlugin(() => markersRef.current)],
    };
    chart.current = new uPlot(options, data, element);
    const observer = new ResizeObserver(() => {
      if (chart.current) chart.current.setSize({ width: Math.max(200, element.clientWidth), height });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.current.destroy();
      chart.current = null;
    };
  }, [structure, height]);

  useEffect(() => {
    if (chart.current) chart.current.setData(data);
  }, [data]);

  useEffect(() => {
    if (chart.current) chart.current.redraw(false);
  }, [markers]);

  const points = data[0] ? data[0].length : 0;
  return html`<figure class="chart" data-testid=${testid} data-points=${points}>
    <div ref=${holder} class="chart-canvas"></div>
    ${caption && html`<figcaption class="muted small">${caption}</figcaption>`}
  </figure>`;
}
