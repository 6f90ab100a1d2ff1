// The console's languages: every string the UI shows comes from one of the
// catalogues beside this file (en.js, ko.js, zh-CN.js), keyed alike. The
// language is the one chosen in the header (kept in localStorage), else the
// first of navigator.languages that the console speaks, else English.
import { useEffect, useState } from '../html.js';
import en from './en.js';
import ko from './ko.js';
import zhCN from './zh-CN.js';

export const LANGUAGES = [
  { code: 'en', name: 'English' },
  { code: 'ko', name: '한국어' },
  { code: 'zh-CN', name: '简体中文' },
];
const CATALOGUES = { en, ko, 'zh-CN': zhCN };
const STORAGE_KEY = 'tide.console.language';

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function detectLanguage(preferred = navigator.languages || [navigator.language]) {
  const saved = stored();
  if (saved && CATALOGUES[saved]) return saved;
  for (const tag of preferred) {
    const lower = String(tag || '').toLowerCase();
    if (lower.startsWith('ko')) return 'ko';
    if (lower.startsWith('zh')) return 'zh-CN';
    if (lower.startsWith('en')) return 'en';
  }
  return 'en';
}

let current = 'en';
let plural = new Intl.PluralRules('en');
const listeners = new Set();

export const language = () => current;

export function setLanguage(code, remember = true) {
  if (!CATALOGUES[code]) return;
  current = code;
  plural = new Intl.PluralRules(code);
  document.documentElement.lang = code;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, code);
    } catch {
      // private mode: the choice lasts for this page only
    }
  }
  for (const fn of listeners) fn(code);
}

// t('set_desired.launch', {n: 2}): the string for the current language,
// English when the catalogue lacks it, the key itself when both do. An entry
// may be {one, other} (chosen with Intl.PluralRules on params.n).
export function t(key, params) {
  let entry = CATALOGUES[current][key] ?? en[key] ?? key;
  if (typeof entry === 'object') entry = entry[plural.select(Number(params?.n ?? 0))] ?? entry.other;
  if (!params) return entry;
  return entry.replace(/\{(\w+)\}/g, (whole, name) => (params[name] === undefined ? whole : String(params[name])));
}

// Re-renders the calling component when the language changes.
export function useLanguage() {
  const [value, setValue] = useState(current);
  useEffect(() => {
    listeners.add(setValue);
    return () => listeners.delete(setValue);
  }, []);
  return value;
}

export const catalogues = CATALOGUES;
