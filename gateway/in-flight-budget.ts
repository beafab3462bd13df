// The in-flight budget: the bytes and events the gateway holds for open requests (bodies being read,
// events awaiting acknowledgement), shared fairly between write keys and, within a key, client addresses.

/** What a request holds: events awaiting acknowledgement, and bytes (its body and its stored events). */
export interface Amount {
  events: number;
  bytes: number;
}

/** `throttled`: the client holds its fair share while others want theirs; `overloaded`: the gateway is full. */
export type Admission = 'admitted' | 'throttled' | 'overloaded';

/**
 * Clients within their fair share are admitted beyond the budget, up to this multiple of it: the room
 * that lets a newcomer in while someone else filled the budget. The hard bound on what is held.
 */
export const CEILING = 2;

/** How long a refused client counts as waiting: a few of the Retry-After second it was told. */
export const WAITING_MS = 3000;

/**
 * Waiting clients remembered at most (the oldest are forgotten first): an admission looks at each of
 * them once, so this bounds what an attacker refused from many addresses adds to every request.
 */
const MAX_WAITING = 1000;

const DIMENSIONS = ['events', 'bytes'] as const;
type Dimension = (typeof DIMENSIONS)[number];

class Holding {
  events = 0;
  bytes = 0;
  leases = 0;
}

class KeyHolding extends Holding {
  readonly addresses = new Map<string, Holding>();
}

interface Waiting {
  key: string | undefined;
  address: string;
  until: number;
}

/** Who counts when shares are computed: clients with a request open, and those waiting. */
interface Census {
  keys: number;
  /** Waiting addresses without a request open, by key. */
  waitingAddresses: Map<string | undefined, number>;
  /** Waiting clients other than the one asking. */
  waiters: Waiting[];
}

const clientId = (key: string | undefined, address: string) => `${key ?? ''}\u0000${address}`;

/**
 * Admission of a request's growth:
 * 1. a request is always admitted when no other request holds anything;
 * 2. while the total stays within the budget anyone is admitted (work-conserving: a client alone may
 *    use all of it), except a client over its fair share while another client, under its share, is
 *    waiting (was refused in the last WAITING_MS): the room freed goes to that one;
 * 3. beyond the budget, up to CEILING × the budget, a client is admitted only within its fair share:
 *    its key holds at most budget / keys, its address at most the key's share / the key's addresses
 *    (counting clients with a request open, and those waiting). Over it: `throttled`; at the ceiling:
 *    `overloaded`.
 * Requests in flight cannot be pre-empted. Without rule 3's room, a newcomer would be refused for as
 * long as someone else's requests fill the budget; with it, a client of another write key gets in at
 * once. Within one key, an address gets in at once while the key is within its share; when one address
 * filled the key's share it gets what that address's requests free next (rule 2). Rule 3 checks the key
 * as a whole so that many addresses of one key cannot fill the room other keys need.
 */
export class InFlightBudget {
  private readonly total = new Holding();
  /** `undefined`: requests whose write key is in their body, not read yet. */
  private readonly keys = new Map<string | undefined, KeyHolding>();
  /** Refused clients by clientId, oldest first. */
  private readonly waiting = new Map<string, Waiting>();
  private clients = 0;

  constructor(
    readonly limits: Readonly<Amount>,
    private readonly onChange?: (held: Readonly<Amount>, active: { keys: number; clients: number }) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get held(): Readonly<Amount> {
    return { events: this.total.events, bytes: this.total.bytes };
  }

  /** Write keys with a request open (requests not authenticated yet count as one). */
  get activeKeys(): number {
    return this.keys.size;
  }

  /** Clients (write key × address) with a request open. */
  get activeClients(): number {
    return this.clients;
  }

  /** Clients refused lately that still count as waiting (at most MAX_WAITING). */
  get waitingClients(): number {
    return this.waiting.size;
  }

  /** Opens a lease, holding nothing yet, for a request from `address` with `key` (if known). */
  lease(key: string | undefined, address: string): Lease {
    return new Lease(this, key, address);
  }

  /** @internal Lease bookkeeping. */
  join(key: string | undefined, address: string): void {
    let k = this.keys.get(key);
    if (!k) {
      k = new KeyHolding();
      this.keys.set(key, k);
    }
    let a = k.addresses.get(address);
    if (!a) {
      a = new Holding();
      k.addresses.set(address, a);
      this.clients++;
    }
    this.total.leases++;
    k.leases++;
    a.leases++;
  }

  /** @internal Gives back what a lease holds and forgets clients with no request open. */
  leave(key: string | undefined, address: string, held: Amount): void {
    this.add(key, address, -held.events, -held.bytes);
    const k = this.keys.get(key)!;
    const a = k.addresses.get(address)!;
    this.total.leases--;
    if (--a.leases === 0) {
      k.addresses.delete(address);
      this.clients--;
    }
    if (--k.leases === 0) this.keys.delete(key);
    this.changed();
  }

  /** @internal Moves a lease to another key with what it holds: no admission, it held that already. */
  rekey(from: string | undefined, to: string | undefined, address: string, held: Amount): void {
    this.leave(from, address, held);
    this.join(to, address);
    this.add(to, address, held.events, held.bytes);
    this.changed();
  }

  /** @internal Whether a lease holding `held` may hold `wanted`; applied when admitted. */
  admit(key: string | undefined, address: string, held: Amount, wanted: Amount): Admission {
    const growth = { events: wanted.events - held.events, bytes: wanted.bytes - held.bytes };
    const grows = DIMENSIONS.filter((d) => growth[d] > 0);
    const othersHold = this.total.events > held.events || this.total.bytes > held.bytes;
    let verdict: Admission = 'admitted';
    if (grows.length > 0 && othersHold) {
      // The common case, room and nobody waiting, is decided without computing a share.
      const fits = this.fits(growth, grows, 1);
      if (!fits || this.waiting.size > 0) {
        const census = this.census(key, address);
        const within = this.withinShare(key, address, growth, grows, census);
        if (fits) {
          if (!within && census.waiters.some((w) => this.underShare(w, census))) verdict = 'throttled';
        } else if (!within) verdict = 'throttled';
        else if (!this.fits(growth, grows, CEILING)) verdict = 'overloaded';
      }
    }
    if (verdict !== 'admitted') {
      this.wait(key, address);
      return verdict;
    }
    this.add(key, address, growth.events, growth.bytes);
    this.changed();
    return verdict;
  }

  private changed(): void {
    this.onChange?.(this.total, { keys: this.keys.size, clients: this.clients });
  }

  private fits(growth: Amount, grows: readonly Dimension[], factor: number): boolean {
    return grows.every((d) => this.total[d] + growth[d] <= factor * this.limits[d]);
  }

  /** One pass over the waiting clients (forgetting those whose wait is over), for the shares. */
  private census(key: string | undefined, address: string): Census {
    const census: Census = { keys: this.keys.size, waitingAddresses: new Map(), waiters: [] };
    if (this.waiting.size === 0) return census;
    const now = this.now();
    const self = clientId(key, address);
    const waitingKeys = new Set<string | undefined>();
    for (const [id, w] of this.waiting) {
      if (w.until <= now) {
        this.waiting.delete(id);
        continue;
      }
      if (id === self) continue;
      census.waiters.push(w);
      const k = this.keys.get(w.key);
      if (!k) waitingKeys.add(w.key);
      if (!k?.addresses.has(w.address)) {
        census.waitingAddresses.set(w.key, (census.waitingAddresses.get(w.key) ?? 0) + 1);
      }
    }
    census.keys += waitingKeys.size;
    return census;
  }

  /** A key's share and the share of each of its addresses, as fractions of the budget. */
  private shares(key: string | undefined, census: Census): { key: number; address: number } {
    const addresses = (this.keys.get(key)?.addresses.size ?? 0) + (census.waitingAddresses.get(key) ?? 0);
    return { key: 1 / census.keys, address: 1 / census.keys / Math.max(1, addresses) };
  }

  private withinShare(
    key: string | undefined,
    address: string,
    growth: Amount,
    grows: readonly Dimension[],
    census: Census,
  ): boolean {
    const share = this.shares(key, census);
    const k = this.keys.get(key)!;
    const a = k.addresses.get(address)!;
    return grows.every(
      (d) =>
        k[d] + growth[d] <= share.key * this.limits[d] && a[d] + growth[d] <= share.address * this.limits[d],
    );
  }

  /** Whether a waiting client's address holds less than its share: it would take room if there were any. */
  private underShare(w: Waiting, census: Census): boolean {
    const share = this.shares(w.key, census);
    const a = this.keys.get(w.key)?.addresses.get(w.address);
    return DIMENSIONS.every((d) => (a?.[d] ?? 0) < share.address * this.limits[d]);
  }

  private wait(key: string | undefined, address: string): void {
    const id = clientId(key, address);
    this.waiting.delete(id); // re-inserted last: the map stays ordered by time
    this.waiting.set(id, { key, address, until: this.now() + WAITING_MS });
    if (this.waiting.size > MAX_WAITING) this.waiting.delete(this.waiting.keys().next().value!);
  }

  private add(key: string | undefined, address: string, events: number, bytes: number): void {
    const k = this.keys.get(key)!;
    const a = k.addresses.get(address)!;
    for (const h of [this.total, k, a]) {
      h.events += events;
      h.bytes += bytes;
    }
  }
}

/** One request's part of the budget: held from its headers until it ends, resized as it goes. */
export class Lease {
  private heldValue: Amount = { events: 0, bytes: 0 };
  private released = false;

  constructor(
    private readonly budget: InFlightBudget,
    private keyValue: string | undefined,
    private readonly address: string,
  ) {
    budget.join(keyValue, address);
  }

  get held(): Readonly<Amount> {
    return this.heldValue;
  }

  /**
   * Asks to hold `wanted` in all (what it held counts towards it), as a request of `key` from now on
   * (a write key read from the body). On refusal the lease keeps what it held.
   */
  hold(wanted: Amount, key: string | undefined = this.keyValue): Admission {
    if (this.released) return 'admitted';
    if (key !== this.keyValue) {
      this.budget.rekey(this.keyValue, key, this.address, this.heldValue);
      this.keyValue = key;
    }
    const verdict = this.budget.admit(this.keyValue, this.address, this.heldValue, wanted);
    if (verdict === 'admitted') this.heldValue = { events: wanted.events, bytes: wanted.bytes };
    return verdict;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.leave(this.keyValue, this.address, this.heldValue);
    this.heldValue = { events: 0, bytes: 0 };
  }
}
