// The confirmation dialog every action goes through. It says exactly what
// will happen (the text follows the form's inputs as they change), runs the
// action on Confirm, and shows the API's error inline when it is refused.
//
// openAction({title, fields, describe(values), run(values), done(result, values),
//             confirmLabel, danger})
// fields: [{name, kind: 'number'|'checkbox'|'select'|'text', label, initial,
//           min, max, options: [{value, label}]}]
import { html, useEffect, useRef, useState } from '../html.js';
import { t } from '../i18n/index.js';
import { announce } from './status.js';

let show = null;

export function openAction(spec) {
  if (show) show(spec);
}

function initialValues(fields = []) {
  const values = {};
  for (const field of fields) values[field.name] = field.initial ?? (field.kind === 'checkbox' ? false : '');
  return values;
}

function invalidField(fields = [], values) {
  for (const field of fields) {
    if (field.kind !== 'number') continue;
    const value = values[field.name];
    if (value === '' || !Number.isInteger(Number(value))) return field;
    if (field.min !== undefined && Number(value) < field.min) return field;
    if (field.max !== undefined && Number(value) > field.max) return field;
  }
  return null;
}

function Field({ field, value, onChange }) {
  const id = `action-field-${field.name}`;
  const testid = `confirm-input-${field.name}`;
  if (field.kind === 'checkbox') {
    return html`<div class="field field-check">
      <input id=${id} type="checkbox" checked=${value} data-testid=${testid}
        onChange=${(e) => onChange(e.currentTarget.checked)} />
      <label for=${id}>${field.label}</label>
    </div>`;
  }
  if (field.kind === 'select') {
    return html`<div class="field">
      <label for=${id}>${field.label}</label>
      <select id=${id} value=${value} data-testid=${testid} onChange=${(e) => onChange(e.currentTarget.value)}>
        ${field.options.map((o) => html`<option value=${o.value}>${o.label}</option>`)}
      </select>
    </div>`;
  }
  return html`<div class="field">
    <label for=${id}>${field.label}</label>
    <input id=${id} type=${field.kind === 'number' ? 'number' : 'text'} value=${value} data-testid=${testid}
      min=${field.min} max=${field.max} step=${field.kind === 'number' ? 1 : undefined}
      inputmode=${field.kind === 'number' ? 'numeric' : undefined}
      onInput=${(e) => onChange(e.currentTarget.value)} />
  </div>`;
}

export function ActionDialogHost() {
  const [spec, setSpec] = useState(null);
  const [values, setValues] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const dialog = useRef(null);
  const opener = useRef(null);

  useEffect(() => {
    show = (next) => {
      opener.current = document.activeElement;
      setSpec(next);
      setValues(initialValues(next.fields));
      setError(null);
      setBusy(false);
    };
    return () => {
      show = null;
    };
  }, []);

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (spec && !element.open) element.showModal();
    if (!spec && element.open) element.close();
  }, [spec]);

  const close = () => {
    setSpec(null);
    const back = opener.current;
    if (back && back.isConnected) back.focus();
  };

  const invalid = spec ? invalidField(spec.fields, values) : null;
  const confirm = async (event) => {
    event.preventDefault();
    if (!spec || busy || invalid) return;
    setBusy(true);
    setError(null);
    try {
      const result = await spec.run(values);
      const message = spec.done ? spec.done(result, values) : t('dialog.done');
      close();
      if (message) announce(message);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  const description = spec ? spec.describe(values) : '';
  const lines = Array.isArray(description) ? description.filter(Boolean) : [description];
  return html`<dialog ref=${dialog} class="dialog" aria-labelledby="dialog-title" aria-describedby="dialog-description"
      data-testid="confirm-dialog" onCancel=${(e) => { e.preventDefault(); if (!busy) close(); }}>
    ${spec && html`<form onSubmit=${confirm}>
      <h2 id="dialog-title">${spec.title}</h2>
      ${(spec.fields || []).map((field) => html`<${Field} key=${field.name} field=${field} value=${values[field.name]}
          onChange=${(v) => setValues({ ...values, [field.name]: v })} />`)}
      <div id="dialog-description" class="dialog-description" data-testid="confirm-description">
        ${lines.map((line) => html`<p>${line}</p>`)}
      </div>
      ${invalid && html`<p class="field-error" data-testid="confirm-invalid">
        ${t('dialog.invalid_number', { label: invalid.label, min: invalid.min ?? '…', max: invalid.max ?? '…' })}</p>`}
      ${error && html`<div class="error-box" role="alert" data-testid="confirm-error">
        ${t('dialog.refused', { status: error.status || '—' })}: ${error.message}</div>`}
      <div class="dialog-buttons">
        <button type="button" class="button" data-testid="cancel" disabled=${busy} onClick=${close}>${t('dialog.cancel')}</button>
        <button type="submit" class=${spec.danger ? 'button button-danger' : 'button button-primary'}
          data-testid="confirm" disabled=${busy || !!invalid}>
          ${busy ? t('dialog.working') : spec.confirmLabel || t('dialog.confirm')}</button>
      </div>
    </form>`}
  </dialog>`;
}
