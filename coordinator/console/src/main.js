// Entry point: choose the language, then render the app.
import { html, render } from './html.js';
import { detectLanguage, setLanguage } from './i18n/index.js';
import { App } from './app.js';

setLanguage(detectLanguage(), false);
const root = document.getElementById('app');
root.textContent = ''; // the <noscript> note
render(html`<${App} />`, root);
