// A polite live region for what an action did ("Desired capacity of web set
// to 3"), so that the result is read out and stays visible for a while.
import { html, useEffect, useState } from '../html.js';

let push = null;

export function announce(message) {
  if (push) push(message);
}

export function StatusRegion() {
  const [message, setMessage] = useState('');
  useEffect(() => {
    let timer = null;
    push = (text) => {
      setMessage(text);
      clearTimeout(timer);
      timer = setTimeout(() => setMessage(''), 8000);
    };
    return () => {
      push = null;
      clearTimeout(timer);
    };
  }, []);
  return html`<div class="status-region" role="status" aria-live="polite" data-testid="status-message">${message}</div>`;
}
