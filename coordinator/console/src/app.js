// The application shell: session, routing, header, the page, the action
// dialog and the status line.
import { api, onUnauthorized } from './api.js';
import { AppHeader } from './components/header.js';
import { ActionDialogHost } from './components/dialog.js';
import { StatusRegion } from './components/status.js';
import { ErrorBox, Loading } from './components/common.js';
import { html, useEffect, useState } from './html.js';
import { t, useLanguage } from './i18n/index.js';
import { startLive, stopLive } from './live.js';
import { navigate, useRoute } from './router.js';
import { viewerZone } from './format.js';
import { OverviewPage } from './pages/overview.js';
import { GroupPage } from './pages/group.js';
import { InstancePage } from './pages/instance.js';
import { LaunchConfigurationPage, LaunchConfigurationsPage } from './pages/launch-configurations.js';
import { LoginPage } from './pages/login.js';
import { NotFoundPage } from './pages/not-found.js';

function Page({ route }) {
  switch (route.page) {
    case 'overview':
      return html`<${OverviewPage} />`;
    case 'group':
      return html`<${GroupPage} key=${route.name} name=${route.name} />`;
    case 'instance':
      return html`<${InstancePage} key=${route.id} id=${route.id} />`;
    case 'launch-configurations':
      return html`<${LaunchConfigurationsPage} />`;
    case 'launch-configuration':
      return html`<${LaunchConfigurationPage} key=${route.id} id=${route.id} />`;
    case 'login':
      return html`<${Loading} />`;
    default:
      return html`<${NotFoundPage} />`;
  }
}

export function App() {
  useLanguage();
  const route = useRoute();
  // undefined: asking; null: not signed in; else GET /console/session's answer
  const [session, setSession] = useState(undefined);
  const [sessionError, setSessionError] = useState(null);
  // Where to go back to after signing in.
  const [returnTo, setReturnTo] = useState('#/');

  const checkSession = () => {
    setSessionError(null);
    api.session().then(
      (s) => setSession(s || { authenticated: true }),
      (error) => {
        if (error.status === 401) setSession(null);
        else setSessionError(error);
      },
    );
  };

  useEffect(() => {
    checkSession();
    return onUnauthorized(() => setSession(null));
  }, []);

  useEffect(() => {
    if (session) startLive();
    else if (session === null) stopLive();
  }, [session]);

  useEffect(() => {
    if (session === null && route.page !== 'login') {
      setReturnTo(location.hash && !location.hash.startsWith('#/login') ? location.hash : '#/');
      navigate('#/login');
    }
    if (session && route.page === 'login') navigate(returnTo);
  }, [session, route.page]);

  const logout = () => {
    api.logout().catch(() => {}).finally(() => {
      setReturnTo('#/');
      setSession(null);
    });
  };

  let content;
  if (sessionError) content = html`<${ErrorBox} error=${sessionError} onRetry=${checkSession} />`;
  else if (session === undefined) content = html`<${Loading} />`;
  else if (session === null) content = html`<${LoginPage} onLogin=${checkSession} linkExpired=${route.query?.link === 'expired'} />`;
  else content = html`<${Page} route=${route} />`;

  return html`
    <${AppHeader} route=${route} session=${session} onLogout=${logout} />
    <main id="main" tabindex="-1" class="app-main">${content}</main>
    <footer class="app-footer">
      <span>${t('footer.times', { zone: viewerZone() })}</span>
      ${session && session.version && html`<span> · ${t('footer.version', { version: session.version })}</span>`}
      <span> · <a href="/console/licenses.txt">${t('footer.licenses')}</a></span>
    </footer>
    <${ActionDialogHost} />
    <${StatusRegion} />`;
}
