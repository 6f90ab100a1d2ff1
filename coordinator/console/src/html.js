// One place that binds htm to preact, so components read like HTML without
// a JSX compiler: html`<p class="note">${text}</p>`.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
export { render, Fragment } from 'preact';
export { useCallback, useEffect, useMemo, useRef, useState, useLayoutEffect } from 'preact/hooks';
