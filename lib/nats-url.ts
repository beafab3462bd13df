// NATS server URLs: credentials written in them (nats://user:pass@host, nats://token@host) turned into
// connection options, since the nats.js client does not read them; and URLs as logs show them, masked.
// Shared by every process that connects to NATS (gateway, runner, CLI).

/** `nats://user:secret@host:4222` → `nats://user:***@host:4222`; `nats://token@host` → `nats://***@host`. */
export function displayUrl(url: string): string {
  const m = /^([a-z]+:\/\/)([^@/]*)@(.*)$/i.exec(url);
  if (!m) return url;
  const [, scheme, userinfo, rest] = m;
  const user = userinfo!.includes(':') ? `${userinfo!.split(':')[0]}:***` : '***';
  return `${scheme}${user}@${rest}`;
}

/** One URL, a comma-separated list or an array, masked and joined for display. */
export function displayServers(servers: string | readonly string[]): string {
  const list = typeof servers === 'string' ? servers.split(',') : servers;
  return list
    .map((s) => s.trim())
    .filter(Boolean)
    .map(displayUrl)
    .join(', ');
}

export interface NatsUrlCredentials {
  /** The URLs without their userinfo. */
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/**
 * Moves credentials out of the URLs into options nats.js understands. One set applies to the whole
 * connection: the first URL that carries credentials provides them.
 */
export function natsUrlCredentials(servers: string | readonly string[]): NatsUrlCredentials {
  const list = (typeof servers === 'string' ? servers.split(',') : [...servers])
    .map((s) => s.trim())
    .filter(Boolean);
  const out: NatsUrlCredentials = { servers: [] };
  for (const url of list) {
    const m = /^([a-z]+:\/\/)([^@/]*)@(.*)$/i.exec(url);
    if (!m) {
      out.servers.push(url);
      continue;
    }
    const [, scheme, userinfo, rest] = m;
    out.servers.push(`${scheme}${rest}`);
    if (out.user !== undefined || out.token !== undefined) continue;
    const colon = userinfo!.indexOf(':');
    if (colon >= 0) {
      out.user = decodeURIComponent(userinfo!.slice(0, colon));
      out.pass = decodeURIComponent(userinfo!.slice(colon + 1));
    } else if (userinfo) {
      out.token = decodeURIComponent(userinfo);
    }
  }
  return out;
}
