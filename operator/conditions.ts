// Status conditions through named marks, as Knative does: one condition set per kind, whose Ready is derived
// from its dependents unless a reconciler marks Ready itself (input that is wrong as a whole).

import type { StatusCondition } from '../api/kube-types.js';

type Status = StatusCondition['status'];

interface Mark {
  status: Status;
  reason: string;
  message: string;
}

/** The conditions of one kind: which type is the summary, which types it summarises (in order of blame). */
export class ConditionSet<T extends string> {
  constructor(
    readonly ready: string,
    readonly dependents: readonly T[],
  ) {}

  /**
   * A fresh set of marks for one reconcile. Conditions not marked in it are dropped: the reconciler
   * computes every condition from the world each time (level-triggered).
   */
  manage(previous: readonly StatusCondition[] | undefined, generation: number | undefined): Conditions<T> {
    return new Conditions(this, previous ?? [], generation);
  }
}

export class Conditions<T extends string> {
  private readonly marks = new Map<string, Mark>();
  private readyReason = 'Ready';
  private readyMessage = '';

  constructor(
    private readonly set: ConditionSet<T>,
    private readonly previous: readonly StatusCondition[],
    private readonly generation: number | undefined,
  ) {}

  markTrue(type: T | string, reason: string, message = ''): this {
    this.marks.set(type, { status: 'True', reason, message });
    return this;
  }

  markFalse(type: T | string, reason: string, message: string): this {
    this.marks.set(type, { status: 'False', reason, message });
    return this;
  }

  markUnknown(type: T | string, reason: string, message: string): this {
    this.marks.set(type, { status: 'Unknown', reason, message });
    return this;
  }

  /** Ready marked False directly: the input is wrong before any dependent could be judged. */
  markNotReady(reason: string, message: string): this {
    return this.markFalse(this.set.ready, reason, message);
  }

  get(type: string): Mark | undefined {
    return type === this.set.ready ? this.readyMark() : this.marks.get(type);
  }

  isTrue(type: string): boolean {
    return this.get(type)?.status === 'True';
  }

  /**
   * Ready: as marked; else False with the first False dependent's reason; else Unknown with the first
   * dependent not True (unmarked counts as Unknown); else True.
   */
  private readyMark(): Mark {
    const explicit = this.marks.get(this.set.ready);
    if (explicit) return explicit;
    for (const dep of this.set.dependents) {
      const m = this.marks.get(dep);
      if (m?.status === 'False') return m;
    }
    for (const dep of this.set.dependents) {
      const m = this.marks.get(dep);
      if (!m) return { status: 'Unknown', reason: 'NotChecked', message: `${dep} was not checked yet` };
      if (m.status !== 'True') return m;
    }
    return { status: 'True', reason: this.readyReason, message: this.readyMessage };
  }

  /** The reason and message Ready carries when derived True. */
  whenReady(reason: string, message = ''): this {
    this.readyReason = reason;
    this.readyMessage = message;
    return this;
  }

  /**
   * The condition list: Ready first, then the others in the set's order, then any extra types. A condition
   * keeps its lastTransitionTime while its status stays (so an unchanged world writes an unchanged status).
   */
  list(now: Date = new Date()): StatusCondition[] {
    const types = [
      this.set.ready,
      ...this.set.dependents.filter((d) => this.marks.has(d)),
      ...[...this.marks.keys()].filter((t) => t !== this.set.ready && !this.set.dependents.includes(t as T)),
    ];
    return types.map((type) => {
      const mark = this.get(type)!;
      const before = this.previous.find((c) => c.type === type);
      return {
        type,
        status: mark.status,
        ...(this.generation !== undefined ? { observedGeneration: this.generation } : {}),
        lastTransitionTime:
          before && before.status === mark.status ? before.lastTransitionTime : now.toISOString(),
        reason: mark.reason,
        message: mark.message,
      };
    });
  }
}

/** The condition of a type in a status, if any. */
export function conditionOf(conditions: readonly StatusCondition[] | undefined, type: string) {
  return conditions?.find((c) => c.type === type);
}
