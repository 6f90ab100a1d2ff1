// Hash routes: #/ (overview), #/groups/<name>, #/launch-configurations[/<name>],
// #/instances/<id>, #/login[?link=expired]. Names are URI-encoded in the hash;
// a query after the path (`?key=value`) is in route.query.
import { useEffect, useState } from './html.js';

export function parseRoute(hash = location.hash) {
  const [path, search = ''] = (hash.replace(/^#/, '') || '/').split('?');
  const query = Object.fromEntries(new URLSearchParams(search));
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  if (parts.length === 0) return { page: 'overview' };
  if (parts[0] === 'login' && parts.length === 1) return { page: 'login', query };
  if (parts[0] === 'groups' && parts.length === 2) return { page: 'group', name: parts[1] };
  if (parts[0] === 'instances' && parts.length === 2) return { page: 'instance', id: parts[1] };
  if (parts[0] === 'launch-configurations' && parts.length === 1) return { page: 'launch-configurations' };
  if (parts[0] === 'launch-configurations' && parts.length === 2) return { page: 'launch-configuration', id: parts[1] };
  return { page: 'not-found', path };
}

export function navigate(hash) {
  if (location.hash !== hash) location.hash = hash;
}

export function useRoute() {
  const [route, setRoute] = useState(() => ({ ...parseRoute(), hash: location.hash }));
  useEffect(() => {
    const onChange = () => setRoute({ ...parseRoute(), hash: location.hash });
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
