// Which addresses a function's fetch may reach. Checked on the resolved address of every connection
// (and every redirect hop), so a hostname that re-resolves to a private address is still refused.

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/** Never reachable, whatever the caller allows: cloud metadata endpoints live here. */
const ALWAYS_BLOCKED = new BlockList();
ALWAYS_BLOCKED.addSubnet('169.254.0.0', 16, 'ipv4');
ALWAYS_BLOCKED.addAddress('fd00:ec2::254', 'ipv6');
ALWAYS_BLOCKED.addSubnet('0.0.0.0', 8, 'ipv4');
ALWAYS_BLOCKED.addAddress('::', 'ipv6');
ALWAYS_BLOCKED.addSubnet('224.0.0.0', 4, 'ipv4');
ALWAYS_BLOCKED.addSubnet('240.0.0.0', 4, 'ipv4');
ALWAYS_BLOCKED.addSubnet('ff00::', 8, 'ipv6');

/** Loopback and private ranges: refused unless the function is allowed the private network. */
const PRIVATE = new BlockList();
PRIVATE.addSubnet('127.0.0.0', 8, 'ipv4');
PRIVATE.addSubnet('10.0.0.0', 8, 'ipv4');
PRIVATE.addSubnet('172.16.0.0', 12, 'ipv4');
PRIVATE.addSubnet('192.168.0.0', 16, 'ipv4');
PRIVATE.addSubnet('100.64.0.0', 10, 'ipv4');
PRIVATE.addSubnet('198.18.0.0', 15, 'ipv4');
PRIVATE.addAddress('::1', 'ipv6');
PRIVATE.addSubnet('fc00::', 7, 'ipv6');
PRIVATE.addSubnet('fe80::', 10, 'ipv6');

export class EgressRefused extends Error {
  override readonly name = 'EgressRefused';
  readonly code = 'EGRESS_REFUSED';
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it carries. */
function normalize(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { address: mapped[1]!, family: 'ipv4' };
  return { address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
}

/**
 * Verdicts on addresses lately checked (why one is refused, or null), by policy and address: a function
 * calls the same few addresses again and again, and a BlockList check costs ~8 µs. Bounded; a verdict
 * depends on nothing else, so a kept one is the same verdict.
 */
const verdicts = new Map<string, string | null>();
const VERDICTS_KEPT = 1024;

/** Throws EgressRefused when the address may not be reached. */
export function checkAddress(rawAddress: string, allowPrivateNetwork: boolean): void {
  const key = `${allowPrivateNetwork ? 'p' : 'n'}${rawAddress}`;
  let refusal = verdicts.get(key);
  if (refusal === undefined) {
    refusal = judge(rawAddress, allowPrivateNetwork);
    if (verdicts.size >= VERDICTS_KEPT) verdicts.clear();
    verdicts.set(key, refusal);
  }
  if (refusal !== null) throw new EgressRefused(refusal);
}

function judge(rawAddress: string, allowPrivateNetwork: boolean): string | null {
  const { address, family } = normalize(rawAddress);
  if (ALWAYS_BLOCKED.check(address, family)) {
    const why =
      address.startsWith('169.254.') || address === 'fd00:ec2::254'
        ? 'link-local (cloud metadata)'
        : 'reserved';
    return `${rawAddress} is a ${why} address, which functions may never reach`;
  }
  if (!allowPrivateNetwork && PRIVATE.check(address, family)) {
    return `${rawAddress} is a loopback or private address; this function is not allowed to reach the private network`;
  }
  return null;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http(s).Agent that resolves, then refuses forbidden addresses before connecting.
 * Node skips `lookup` for IP literals, so callers check those with checkAddress first.
 */
export function guardedLookup(allowPrivateNetwork: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      try {
        for (const a of addresses) checkAddress(a.address, allowPrivateNetwork);
      } catch (refused) {
        return callback(refused as NodeJS.ErrnoException, []);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first)
        return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}
