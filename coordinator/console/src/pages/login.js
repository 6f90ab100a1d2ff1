// Sign in with the coordinator's API token: POST /console/login sets an
// HttpOnly session cookie (204), or answers 401 with the reason.
import { api } from '../api.js';
import { PageTitle } from '../components/common.js';
import { html, useEffect, useState } from '../html.js';
import { t } from '../i18n/index.js';

export function LoginPage({ onLogin, linkExpired }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = `${t('login.title')} · tide`;
  });

  const submit = async (event) => {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await api.login(token);
      setToken('');
      onLogin();
    } catch (e) {
      // A wrong token in the viewer's language; anything else with the server's reason.
      const reason = e.message && !e.message.startsWith('HTTP ') ? e.message : '';
      if (e.status === 401) setError(t('login.rejected'));
      else setError(reason ? `${t('login.failed', { status: e.status || '—' })} ${reason}` : t('login.failed', { status: e.status || '—' }));
    } finally {
      setBusy(false);
    }
  };

  return html`<div class="login">
    <${PageTitle} testid="login-title">${t('login.title')}<//>
    ${linkExpired && html`<p class="error-box" role="alert" data-testid="login-link-expired">${t('login.link_expired')}</p>`}
    <p class="muted">${t('login.intro')}</p>
    <form class="panel login-form" onSubmit=${submit} data-testid="login-form">
      <div class="field">
        <label for="login-token">${t('login.token')}</label>
        <input id="login-token" type="password" autocomplete="current-password" required value=${token}
          aria-describedby=${error ? 'login-error' : 'login-help'} aria-invalid=${error ? 'true' : undefined}
          data-testid="login-token" onInput=${(e) => setToken(e.currentTarget.value)} />
        <p id="login-help" class="muted small">${t('login.help')}</p>
      </div>
      ${error && html`<p id="login-error" class="field-error" role="alert" data-testid="login-error">${error}</p>`}
      <button type="submit" class="button button-primary" disabled=${busy} data-testid="login-submit">
        ${busy ? t('login.signing_in') : t('login.submit')}</button>
    </form>
  </div>`;
}
