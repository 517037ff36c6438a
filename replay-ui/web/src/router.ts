/** A few routes under /ui/ on the History API; no router dependency for a handful of pages. */
import { useEffect, useState } from 'react';

export type Route =
  | { name: 'sessions'; search: URLSearchParams }
  | { name: 'session'; id: string; search: URLSearchParams }
  | { name: 'alerts'; search: URLSearchParams }
  | { name: 'alert'; id: string }
  | { name: 'activity' }
  | { name: 'approvals' }
  | { name: 'callback'; search: string }
  | { name: 'not-found' };

export function parseRoute(pathname: string, search: string): Route {
  const path = pathname.replace(/^\/ui\/?/, '').replace(/\/+$/, '');
  if (path === '' || path === 'sessions') return { name: 'sessions', search: new URLSearchParams(search) };
  if (path === 'activity') return { name: 'activity' };
  if (path === 'approvals') return { name: 'approvals' };
  if (path === 'alerts') return { name: 'alerts', search: new URLSearchParams(search) };
  const a = /^alerts\/([^/]+)$/.exec(path);
  if (a) return { name: 'alert', id: decodeURIComponent(a[1]) };
  if (path === 'callback') return { name: 'callback', search };
  const m = /^sessions\/([^/]+)$/.exec(path);
  if (m) return { name: 'session', id: decodeURIComponent(m[1]), search: new URLSearchParams(search) };
  return { name: 'not-found' };
}

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname, location.search));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.pathname, location.search));
    window.addEventListener('popstate', on);
    return () => window.removeEventListener('popstate', on);
  }, []);
  return route;
}

/** An in-app link: a real href (open in a new tab works) that navigates without a reload. */
export function linkProps(to: string) {
  return {
    href: to,
    onClick: (e: { preventDefault(): void; metaKey: boolean; ctrlKey: boolean; shiftKey: boolean; button: number }) => {
      if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      navigate(to);
    },
  };
}
