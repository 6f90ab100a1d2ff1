import { PageTitle } from '../components/common.js';
import { html } from '../html.js';
import { t } from '../i18n/index.js';

export function NotFoundPage() {
  return html`<div>
    <${PageTitle}>${t('notfound.title')}<//>
    <p><a href="#/">${t('notfound.back')}</a></p>
  </div>`;
}
