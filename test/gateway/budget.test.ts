// The in-flight budget's rules as a specification (pure: no server): work-conserving up to the budget,
// fair shares by write key then address beyond it, never more than the ceiling; and client addresses.

import { describe, expect, it } from 'vitest';
import { clientAddress } from '../../gateway/client-address.js';
import { CEILING, InFlightBudget, WAITING_MS } from '../../gateway/in-flight-budget.js';

const LIMITS = { events: 1000, bytes: 1000 };
const bytes = (n: number) => ({ events: 0, bytes: n });

describe('InFlightBudget', () => {
  it('lets a client alone use the whole budget, and throttles it beyond', () => {
    const budget = new InFlightBudget(LIMITS);
    expect(budget.lease('heavy', '10.0.0.1').hold(bytes(600))).toBe('admitted');
    expect(budget.lease('heavy', '10.0.0.1').hold(bytes(400))).toBe('admitted');
    expect(budget.held.bytes).toBe(1000);
    expect(budget.lease('heavy', '10.0.0.1').hold(bytes(1))).toBe('throttled');
  });

  it('admits a request when nothing else is held, whatever its size', () => {
    const budget = new InFlightBudget(LIMITS);
    expect(budget.lease('k', '10.0.0.1').hold(bytes(5000))).toBe('admitted');
  });

  it('admits another key within its share beyond the budget, while the key over its share is throttled', () => {
    const budget = new InFlightBudget(LIMITS);
    for (let i = 0; i < 10; i++) expect(budget.lease('heavy', '10.0.0.1').hold(bytes(100))).toBe('admitted');
    const light = budget.lease('light', '10.0.0.2');
    expect(light.hold(bytes(100))).toBe('admitted');
    expect(budget.lease('heavy', '10.0.0.1').hold(bytes(100))).toBe('throttled');
    // The light key's share is half the budget: it may grow to it, not past it.
    expect(light.hold(bytes(500))).toBe('admitted');
    expect(light.hold(bytes(501))).toBe('throttled');
    expect(light.held.bytes).toBe(500);
  });

  it('admits a second address of another key within both shares, beyond the budget', () => {
    const budget = new InFlightBudget(LIMITS);
    budget.lease('heavy', '10.0.0.1').hold(bytes(1000));
    expect(budget.lease('other', '10.0.0.2').hold(bytes(100))).toBe('admitted');
    // The key's share is 500, this address's 250.
    expect(budget.lease('other', '10.0.0.3').hold(bytes(200))).toBe('admitted');
    expect(budget.lease('other', '10.0.0.3').hold(bytes(100))).toBe('throttled');
  });

  it('within one public write key, gives the room an attacker frees to the browser that waits for it', () => {
    let now = 0;
    const budget = new InFlightBudget(LIMITS, undefined, () => now);
    const attacker = Array.from({ length: 10 }, () => budget.lease('public', '198.51.100.66'));
    for (const l of attacker) expect(l.hold(bytes(100))).toBe('admitted');
    // Alone, the key took the whole budget: the browser waits...
    const browser = budget.lease('public', '203.0.113.7');
    expect(browser.hold(bytes(100))).toBe('throttled');
    // ...and what the attacker's requests free is kept for it, not retaken.
    attacker[0]!.release();
    expect(budget.lease('public', '198.51.100.66').hold(bytes(100))).toBe('throttled');
    now += 1000;
    expect(browser.hold(bytes(100))).toBe('admitted');
    // Once nobody waits any more, the attacker may use free room again (work-conserving).
    browser.release();
    now += WAITING_MS + 1;
    expect(budget.lease('public', '198.51.100.66').hold(bytes(100))).toBe('admitted');
  });

  it('keeps free room only for waiting clients under their share, not for those over it', () => {
    const budget = new InFlightBudget(LIMITS);
    budget.lease('w', '1').hold(bytes(400));
    budget.lease('x', '2').hold(bytes(400));
    const z = budget.lease('z', '3');
    z.hold(bytes(100));
    // Three keys: a share is 333. w, over it, is refused and waits; it holds more than its share.
    expect(budget.lease('w', '1').hold(bytes(200))).toBe('throttled');
    // So x, over its share too, may still take free room...
    expect(budget.lease('x', '2').hold(bytes(50))).toBe('admitted');
    // ...until z, under its share, is refused (it asks for more than its share) and waits.
    expect(z.hold(bytes(400))).toBe('throttled');
    expect(budget.lease('x', '2').hold(bytes(10))).toBe('throttled');
    expect(z.hold(bytes(150))).toBe('admitted');
  });

  it('remembers a bounded number of waiting clients, however many addresses are refused', () => {
    const budget = new InFlightBudget(LIMITS);
    budget.lease('heavy', 'a').hold(bytes(1000));
    for (let i = 0; i < 5000; i++) {
      const lease = budget.lease('attacker', `2001:db8:${i.toString(16)}::/64`);
      expect(lease.hold(bytes(600))).toBe('throttled');
      lease.release();
    }
    expect(budget.waitingClients).toBe(1000);
    // Still decided, still fair: a client within its share gets in.
    expect(budget.lease('light', 'b').hold(bytes(100))).toBe('admitted');
  });

  it('counts events as well as bytes', () => {
    const budget = new InFlightBudget(LIMITS);
    expect(budget.lease('heavy', 'a').hold({ events: 1000, bytes: 10 })).toBe('admitted');
    expect(budget.lease('heavy', 'a').hold({ events: 1, bytes: 1 })).toBe('throttled');
    expect(budget.lease('light', 'b').hold({ events: 100, bytes: 10 })).toBe('admitted');
  });

  it('keeps the total under the ceiling however many keys arrive, then refuses them as overloaded', () => {
    const budget = new InFlightBudget(LIMITS);
    expect(budget.lease('k0', 'a').hold(bytes(1000))).toBe('admitted');
    const verdicts: string[] = [];
    // Each newcomer's share is computed as it arrives; together they would add up past any bound.
    for (let i = 1; i <= 50; i++) {
      const lease = budget.lease(`k${i}`, 'a');
      verdicts.push(lease.hold(bytes(Math.floor(1000 / (i + 1)))));
      expect(budget.held.bytes).toBeLessThanOrEqual(CEILING * LIMITS.bytes);
    }
    expect(verdicts).toContain('overloaded');
  });

  it('gives everything back on release, and forgets clients with nothing open', () => {
    const budget = new InFlightBudget(LIMITS);
    const leases = [budget.lease('a', '1'), budget.lease('b', '2'), budget.lease(undefined, '3')];
    for (const l of leases) l.hold({ events: 10, bytes: 100 });
    expect(budget.activeKeys).toBe(3);
    expect(budget.activeClients).toBe(3);
    for (const l of leases) {
      l.release();
      l.release(); // twice is harmless
    }
    expect(budget.held).toEqual({ events: 0, bytes: 0 });
    expect(budget.activeKeys).toBe(0);
    expect(budget.activeClients).toBe(0);
  });

  it('moves a request to the write key its body names, with what it held', () => {
    const changes: number[] = [];
    const budget = new InFlightBudget(LIMITS, (held) => changes.push(held.bytes));
    const lease = budget.lease(undefined, '10.0.0.1');
    expect(lease.hold(bytes(300))).toBe('admitted');
    expect(lease.hold({ events: 5, bytes: 400 }, 'from-body')).toBe('admitted');
    expect(budget.held).toEqual({ events: 5, bytes: 400 });
    expect(budget.activeKeys).toBe(1);
    lease.release();
    expect(changes.at(-1)).toBe(0);
  });

  it('keeps what a lease held when its growth is refused', () => {
    const budget = new InFlightBudget(LIMITS);
    budget.lease('other', 'x').hold(bytes(900));
    const lease = budget.lease('other', 'x');
    expect(lease.hold(bytes(100))).toBe('admitted');
    expect(lease.hold(bytes(200))).toBe('throttled');
    expect(lease.held.bytes).toBe(100);
    expect(budget.held.bytes).toBe(1000);
  });
});

describe('clientAddress', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::ffff:cb00:7107', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:DB8:0:0:1::1', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
  ])('%s counts as %s', (ip, expected) => {
    expect(clientAddress(ip)).toBe(expected);
  });
});
