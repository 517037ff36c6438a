/**
 * The SSH user name names both the caller and the target: `<sub>@<target>` (e.g. `alice@web-1`,
 * `ssh -p 12222 alice@web-1@gateway`). The LAST `@` separates them, so a `sub` that is itself an
 * e-mail address works: `alice@example.com@web-1`. The token's `sub` must equal `<sub>`. The
 * account on the target is the target's configured `user` (callers never choose it).
 */
export interface LoginName {
  sub: string;
  target: string;
}

export function parseLoginName(username: string): LoginName | undefined {
  const at = username.lastIndexOf('@');
  if (at <= 0 || at === username.length - 1) return undefined;
  const sub = username.slice(0, at);
  const target = username.slice(at + 1);
  if (!/^[A-Za-z0-9._-]{1,63}$/.test(target)) return undefined;
  return { sub, target };
}
