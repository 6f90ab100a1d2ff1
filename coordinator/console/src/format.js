// Numbers, times and durations in the viewer's language and time zone
// (Intl), with formatters cached per language.
import { language } from './i18n/index.js';

const cache = new Map();
function cached(key, make) {
  const full = `${language()}|${key}`;
  let value = cache.get(full);
  if (!value) {
    value = make(language());
    cache.set(full, value);
  }
  return value;
}

export const viewerZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

export function fmtNumber(value, maxFractionDigits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return cached(`n${maxFractionDigits}`, (l) => new Intl.NumberFormat(l, { maximumFractionDigits: maxFractionDigits })).format(value);
}

function dateTimeFormat(timeZone, withSeconds = true) {
  return cached(`dt|${timeZone || ''}|${withSeconds}`, (l) => {
    const options = {
      year: 'numeric', month: 'short', day: 'numeric',
      hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
    };
    if (withSeconds) options.second = '2-digit';
    if (timeZone) options.timeZone = timeZone;
    try {
      return new Intl.DateTimeFormat(l, options);
    } catch {
      // an unknown zone name: the viewer's zone, and the caller shows the name
      delete options.timeZone;
      return new Intl.DateTimeFormat(l, options);
    }
  });
}

// A moment with its zone: "6 Dec 2026, 14:03:22 GMT+9". `timeZone`: an IANA
// name, or the viewer's zone when absent.
export function fmtDateTime(ms, timeZone, withSeconds = true) {
  if (!ms) return '—';
  return dateTimeFormat(timeZone, withSeconds).format(new Date(ms));
}

export function isoTime(ms) {
  return ms ? new Date(ms).toISOString() : '';
}

// For chart axes: the time of day, or the date when ticks are a day or more apart.
export function fmtAxisTime(ms, spanMs) {
  const key = spanMs >= 86400000 ? 'axd' : spanMs >= 60000 ? 'axm' : 'axs';
  return cached(key, (l) => {
    if (key === 'axd') return new Intl.DateTimeFormat(l, { month: 'short', day: 'numeric' });
    if (key === 'axm') return new Intl.DateTimeFormat(l, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    return new Intl.DateTimeFormat(l, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  }).format(new Date(ms));
}

const UNITS = [
  ['day', 86400000],
  ['hour', 3600000],
  ['minute', 60000],
  ['second', 1000],
];

// "5 minutes ago", "in 2 hours".
export function fmtRelative(ms, now = Date.now()) {
  if (!ms) return '—';
  const diff = ms - now;
  const rtf = cached('rel', (l) => new Intl.RelativeTimeFormat(l, { numeric: 'auto' }));
  for (const [unit, size] of UNITS) {
    if (Math.abs(diff) >= size || unit === 'second') return rtf.format(Math.round(diff / size), unit);
  }
  return '';
}

// A compact duration: "2d 3h", "5m 10s", "800ms".
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) {
    return cached('ms', (l) => new Intl.NumberFormat(l, { style: 'unit', unit: 'millisecond', unitDisplay: 'narrow' })).format(Math.max(0, Math.round(ms)));
  }
  // The two largest units, the second left out when it is zero ("1m", "1m 30s").
  const parts = [];
  let rest = ms;
  let seen = 0;
  for (const [unit, size] of UNITS) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count > 0 || seen) {
      seen++;
      if (count > 0) parts.push(cached(`u${unit}`, (l) => new Intl.NumberFormat(l, { style: 'unit', unit, unitDisplay: 'narrow' })).format(count));
    }
    if (seen === 2) break;
  }
  return parts.join(' ');
}
