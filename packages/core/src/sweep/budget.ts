// A worker's share of its run's budget. Every control interval it reads the run's SWEEPCTL#
// record (max WCU and concurrency for the whole table), the live workers (unexpired leases of the
// run's segments) and the pause flag, and takes an equal share: K workers together stay at the
// table's budget. A slowdown on throttling is counted in the ledger, and every worker that sees the
// count rise slows down too.
import type { Ledger, SweepCheckpoint, SweepControl } from "../ledger/index.js";
import type { SiteLogixTable } from "../schema.js";
import { sleep } from "../sleep.js";
import { ConcurrencyLimit, Throttler } from "../throttler.js";
import { countSweepThrottle, sweepControl } from "./leases.js";
import { SWEEP_DEFAULTS } from "./plan.js";

/** Waits while the operator's pause flag is set. */
export class PauseGate {
  private resume?: { promise: Promise<void>; release: () => void };

  get paused(): boolean {
    return this.resume !== undefined;
  }

  set(paused: boolean): void {
    if (paused && !this.resume) {
      let release!: () => void;
      const promise = new Promise<void>((r) => (release = r));
      this.resume = { promise, release };
    } else if (!paused && this.resume) {
      this.resume.release();
      this.resume = undefined;
    }
  }

  async wait(signal: AbortSignal): Promise<void> {
    while (this.resume && !signal.aborted) {
      await Promise.race([
        this.resume.promise,
        new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true })),
      ]);
    }
  }
}

export interface BudgetOptions {
  ledger?: Ledger;
  table: SiteLogixTable;
  /** Undefined for a dry run: the budget is the given one, nothing is read or shared. */
  sweepId?: string;
  holder: string;
  maxWcu?: number;
  concurrency?: number;
  controlIntervalMs?: number;
}

export class SweepBudget {
  readonly pause = new PauseGate();
  readonly throttler: Throttler;
  readonly limit: ConcurrencyLimit;
  /** The run's budget in force (whole table) and this worker's view of the live workers. */
  maxWcu: number | undefined;
  concurrency: number;
  workers = 1;
  private seenThrottles = 0;
  private slowdowns = 0;
  private first = true;

  constructor(private readonly options: BudgetOptions) {
    this.maxWcu = options.maxWcu;
    this.concurrency = options.concurrency ?? SWEEP_DEFAULTS.concurrency;
    this.throttler = new Throttler(this.maxWcu !== undefined ? { maxWcu: this.maxWcu } : {});
    this.limit = new ConcurrencyLimit(this.concurrency);
  }

  /** A throttling error this worker saw: slow down, and tell the others when the rate was cut. */
  onThrottle = (): void => {
    this.throttler.onThrottle();
    const { slowdowns } = this.throttler.stats;
    if (slowdowns === this.slowdowns) return;
    this.slowdowns = slowdowns;
    const { ledger, sweepId, table } = this.options;
    if (!ledger || !sweepId) return;
    this.seenThrottles++;
    countSweepThrottle(ledger, table, sweepId).catch(() => {
      // Best effort: this worker slowed down already; the others will see the next one.
    });
  };

  /** Reads the budget, the live workers and the pause flag, and applies this worker's share. */
  async refresh(): Promise<void> {
    const { ledger, sweepId, table, holder } = this.options;
    if (!ledger) return;
    const [flag, control, segments] = await Promise.all([
      ledger.pauseFlag(),
      sweepId ? sweepControl(ledger, table, sweepId) : undefined,
      sweepId ? ledger.checkpoints(table, sweepId) : [],
    ]);
    this.pause.set(flag?.paused === true);
    if (control) this.apply(control, segments, holder);
  }

  private apply(control: SweepControl, segments: SweepCheckpoint[], holder: string): void {
    const now = Date.now();
    const live = new Set([holder]);
    for (const s of segments) if (s.leaseHolder && Number(s.leaseUntil ?? 0) > now) live.add(s.leaseHolder);
    this.workers = live.size;
    this.maxWcu = control.maxWcu !== undefined ? Number(control.maxWcu) : undefined;
    this.concurrency = Number(control.concurrency ?? this.concurrency);
    this.throttler.setCap(this.maxWcu !== undefined ? this.maxWcu / this.workers : undefined);
    this.limit.setLimit(Math.max(1, Math.ceil(this.concurrency / this.workers)));
    const throttles = Number(control.throttles ?? 0);
    // Another worker cut its rate since the last read: cut this one too (once per read).
    if (throttles > this.seenThrottles && !this.first) this.throttler.onThrottle();
    this.first = false;
    this.seenThrottles = Math.max(this.seenThrottles, throttles);
    this.slowdowns = this.throttler.stats.slowdowns;
  }

  /** Refreshes every control interval until `signal` aborts; errors go to `onError`. */
  async loop(signal: AbortSignal, onError: (err: unknown) => void): Promise<void> {
    const interval = this.options.controlIntervalMs ?? SWEEP_DEFAULTS.controlIntervalMs;
    for (;;) {
      await sleep(interval, signal);
      if (signal.aborted) return;
      try {
        await this.refresh();
      } catch (err) {
        onError(err);
        return;
      }
    }
  }
}
