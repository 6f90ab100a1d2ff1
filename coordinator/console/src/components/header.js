// The console's banner: product name, navigation, the live indicator, the
// language switch and logout.
import { html } from '../html.js';
import { LANGUAGES, setLanguage, t, language } from '../i18n/index.js';
import { useLiveState } from '../live.js';

export function LiveIndicator() {
  const state = useLiveState();
  const live = state === 'live';
  const text = live ? t('live.live') : state === 'connecting' ? t('live.connecting') : t('live.reconnecting');
  return html`<span class=${`live ${live ? 'live-on' : 'live-off'}`} data-testid="live"
      data-state=${live ? 'live' : 'reconnecting'} role="status" title=${live ? t('live.live_title') : t('live.reconnecting_title')}>
    <span class="live-dot" aria-hidden="true"></span>${text}</span>`;
}

export function AppHeader({ route, session, onLogout }) {
  const current = (page) => (route.page === page ? 'page' : undefined);
  const lcPage = route.page === 'launch-configurations' || route.page === 'launch-configuration';
  return html`<header class="app-header">
    <a class="skip-link" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>${t('nav.skip')}</a>
    <a class="brand" href="#/" data-testid="brand">tide <span class="brand-sub">${t('app.console')}</span></a>
    <nav aria-label=${t('nav.label')} class="app-nav">
      <a href="#/" aria-current=${current('overview')} data-testid="nav-overview">${t('nav.overview')}</a>
      <a href="#/launch-configurations" aria-current=${lcPage ? 'page' : undefined} data-testid="nav-launch-configurations">${t('nav.launch_configurations')}</a>
    </nav>
    <div class="header-tools">
      ${session && html`<${LiveIndicator} />`}
      <label class="lang-label" for="language-select">${t('header.language')}</label>
      <select id="language-select" data-testid="lang-select" value=${language()} onChange=${(e) => setLanguage(e.currentTarget.value)}>
        ${LANGUAGES.map((l) => html`<option value=${l.code} lang=${l.code}>${l.name}</option>`)}
      </select>
      ${session && session.auth_required !== false && html`<button type="button" class="button button-small" data-testid="logout" onClick=${onLogout}>${t('header.logout')}</button>`}
    </div>
  </header>`;
}
