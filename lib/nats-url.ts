// NATS server URLs as logs and error messages may show them: a password or token in the URL is masked.
// Shared by every process that logs where its NATS is (gateway, runner, CLI).

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
