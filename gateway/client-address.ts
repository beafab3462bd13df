// The address a request counts under when the in-flight budget is shared: its IPv4 address, or the /64
// of its IPv6 address (one subscriber's allocation: taking a new address from it must not buy a new share).

import { isIPv4, isIPv6 } from 'node:net';

/**
 * The fairness address of `ip` (fastify's `request.ip`: the peer, or with a trusted proxy the client it
 * names). IPv4-mapped IPv6 is IPv4; other IPv6 addresses become their /64 (`2001:db8:0:1::/64`).
 */
export function clientAddress(ip: string): string {
  if (isIPv4(ip)) return ip;
  const bare = ip.split('%')[0]!; // a zone index (fe80::1%eth0) says nothing about the client
  if (!isIPv6(bare)) return ip;
  const groups = expandIPv6(bare);
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (with `::` and a dotted IPv4 tail expanded). */
function expandIPv6(ip: string): number[] {
  const [head = '', tail] = ip.split('::') as [string, string | undefined];
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [Number.parseInt(g, 16)];
          const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const left = parse(head);
  if (tail === undefined) return left;
  const right = parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}
