// Rate and concurrency control for the sweep (and anything else that must not crowd out the
// application): a token bucket on consumed write capacity, adaptive slow-down on throttling (AIMD,
// on top of the SDK's own retries), and a concurrency limit that gives backpressure.
import { sleep } from "./sleep.js";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";

/** Error names DynamoDB (and the SDK's retry strategy) treat as throttling. */
const THROTTLING_ERRORS = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "TooManyRequestsException",
  "LimitExceededException",
]);

export function isThrottlingError(err: unknown): boolean {
  const e = err as {
    name?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: { throttling?: boolean };
  } | null;
  return (
    !!e &&
    (THROTTLING_ERRORS.has(e.name ?? "") || e.$metadata?.httpStatusCode === 429 || e.$retryable?.throttling === true)
  );
}

export interface ThrottlerOptions {
  /** Cap on consumed write capacity units per second; undefined: no cap until DynamoDB throttles. */
  maxWcu?: number;
  /** How much unused capacity may be saved up, in seconds of the current rate. */
  burstSeconds?: number;
  now?: () => number;
}

export interface ThrottlerStats {
  /** Throttling errors seen (each SDK attempt counts). */
  throttles: number;
  /** Times the rate was cut because of them. */
  slowdowns: number;
  /** The rate currently enforced (WCU/s); null when there is none. */
  limit: number | null;
}

const WINDOW_MS = 2000;
const SLOWDOWN_EVERY_MS = 500;
const RECOVER_EVERY_MS = 1000;
const MIN_RATE = 1;

/**
 * Token bucket on consumed WCU. A write first `acquire`s its estimated cost (waiting until the bucket
 * is out of debt), then `settle`s with what DynamoDB reported, so the long-run rate matches real
 * consumption even though the cost of a write is only known afterwards.
 *
 * On throttling the rate is halved (from the rate actually achieved over the last seconds, so this
 * works without a cap too) at most every 500 ms; every second without throttling it grows by 15%,
 * back to the cap, or to no limit at all.
 */
export class Throttler {
  private cap: number;
  private readonly burstSeconds: number;
  private readonly now: () => number;
  private limit: number;
  private tokens = 0;
  private readonly startedAt: number;
  private refilledAt: number;
  private lastSlowdown = -Infinity;
  private lastRecovery: number;
  private readonly recent: { at: number; wcu: number }[] = [];
  private queue: Promise<void> = Promise.resolve();
  private throttles = 0;
  private slowdowns = 0;
  /** Running average cost of one write: the estimate for the next one. */
  private averageCost = 1;

  constructor(options: ThrottlerOptions = {}) {
    if (options.maxWcu !== undefined && !(options.maxWcu > 0))
      throw new Error(`max WCU must be positive, got ${options.maxWcu}`);
    this.cap = options.maxWcu ?? Infinity;
    this.burstSeconds = options.burstSeconds ?? 0.5;
    this.now = options.now ?? (() => performance.now());
    this.limit = this.cap;
    this.startedAt = this.now();
    this.refilledAt = this.startedAt;
    this.lastRecovery = this.startedAt;
  }

  get stats(): ThrottlerStats {
    return {
      throttles: this.throttles,
      slowdowns: this.slowdowns,
      limit: Number.isFinite(this.limit) ? this.limit : null,
    };
  }

  /**
   * Changes the cap (a running sweep's share of its table's budget); undefined lifts it. A rate
   * cut by throttling stays cut, below the new cap, and recovers towards it.
   */
  setCap(maxWcu: number | undefined): void {
    if (maxWcu !== undefined && !(maxWcu > 0)) throw new Error(`max WCU must be positive, got ${maxWcu}`);
    const next = maxWcu ?? Infinity;
    if (next === this.cap) return;
    const atCap = this.limit >= this.cap;
    this.cap = next;
    if (atCap || this.limit > next) this.limit = next;
    if (Number.isFinite(this.limit)) this.tokens = Math.min(this.tokens, Math.max(this.limit * this.burstSeconds, 1));
  }

  /** The estimate to pass to `acquire` and `settle` for the next write. */
  estimate(): number {
    return this.averageCost;
  }

  /** Waits until a write of `cost` WCU fits the rate (FIFO), then books it. Returns early on abort. */
  async acquire(cost: number, signal?: AbortSignal): Promise<void> {
    // No cap and no slowdown in force: nothing to wait for.
    if (this.limit === Infinity) return;
    const turn = this.queue.then(() => this.take(cost, signal));
    this.queue = turn;
    await turn;
  }

  private async take(cost: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      this.adjust();
      if (!Number.isFinite(this.limit)) return;
      const capacity = Math.max(this.limit * this.burstSeconds, 1);
      // A write larger than the bucket may start once the bucket is full; its debt is paid afterwards.
      const needed = Math.min(cost, capacity);
      if (this.tokens >= needed) {
        this.tokens -= cost;
        return;
      }
      if (signal?.aborted) return;
      await sleep(Math.max(1, ((needed - this.tokens) / this.limit) * 1000), signal);
    }
  }

  /** Books what a write really consumed (the applier's `consumedWcu`) against its estimate. */
  settle(estimate: number, consumed: number): void {
    if (Number.isFinite(this.limit)) this.tokens -= consumed - estimate;
    this.averageCost += (consumed - this.averageCost) * 0.05;
    const now = this.now();
    this.recent.push({ at: now, wcu: consumed });
    this.forget(now);
  }

  /** A throttling error was seen (by the SDK on any attempt, or after its retries). */
  onThrottle(): void {
    this.throttles++;
    const now = this.now();
    if (now - this.lastSlowdown < SLOWDOWN_EVERY_MS) return;
    this.adjust();
    const achieved = this.achievedRate();
    const base = achieved > 0 ? Math.min(this.limit, achieved) : this.limit;
    // Nothing written lately and no cap: there is no rate to cut; the SDK's backoff handles it.
    if (!Number.isFinite(base)) return;
    this.lastSlowdown = now;
    this.lastRecovery = now;
    this.slowdowns++;
    this.limit = Math.max(MIN_RATE, base / 2);
    this.tokens = Math.min(this.tokens, 0);
  }

  /** Consumed WCU per second over the last two seconds (less right after the first write). */
  achievedRate(): number {
    const now = this.now();
    this.forget(now);
    const window = Math.min(WINDOW_MS, Math.max(now - this.startedAt, 100));
    return this.recent.reduce((sum, r) => sum + r.wcu, 0) / (window / 1000);
  }

  /** Drops consumption older than the window (memory stays flat however long the sweep). */
  private forget(now: number): void {
    while (this.recent.length > 0 && this.recent[0]!.at < now - WINDOW_MS) this.recent.shift();
  }

  /** Refills the bucket and lets the rate recover after a slowdown. */
  private adjust(): void {
    const now = this.now();
    if (Number.isFinite(this.limit)) {
      this.tokens = Math.min(
        this.tokens + ((now - this.refilledAt) / 1000) * this.limit,
        Math.max(this.limit * this.burstSeconds, 1),
      );
    }
    this.refilledAt = now;
    if (this.limit < this.cap && now - this.lastRecovery >= RECOVER_EVERY_MS) {
      const steps = Math.floor((now - this.lastRecovery) / RECOVER_EVERY_MS);
      this.lastRecovery += steps * RECOVER_EVERY_MS;
      this.limit = this.limit * 1.15 ** steps + steps;
      // Without a cap, a limit far above what is being consumed no longer limits anything.
      if (
        this.limit >= this.cap ||
        (!Number.isFinite(this.cap) && this.limit > 4 * Math.max(this.achievedRate(), MIN_RATE))
      )
        this.limit = this.cap;
    }
  }
}

/**
 * Reports every throttling error the client sees, including the attempts the SDK's retry strategy
 * retries on its own: the middleware sits inside the retry loop. Returns a function that removes it.
 */
export function observeThrottling(client: DynamoDBClient, onThrottle: () => void): () => void {
  const name = `sitelogixThrottleObserver${++observers}`;
  type Next = (args: unknown) => Promise<unknown>;
  const observer = (next: Next) => async (args: unknown) => {
    try {
      return await next(args);
    } catch (err) {
      if (isThrottlingError(err)) onThrottle();
      throw err;
    }
  };
  type Middleware = Parameters<DynamoDBClient["middlewareStack"]["addRelativeTo"]>[0];
  client.middlewareStack.addRelativeTo(observer as unknown as Middleware, {
    relation: "after",
    toMiddleware: "retryMiddleware",
    name,
  });
  return () => void client.middlewareStack.remove(name);
}
let observers = 0;

/** At most `limit` tasks at once; `acquire` waits for a free slot (FIFO). */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private limit: number) {
    if (!(limit >= 1)) throw new Error(`concurrency must be at least 1, got ${limit}`);
  }

  get size(): number {
    return this.limit;
  }

  /** Changes the limit; a lower one takes effect as tasks finish, a higher one at once. */
  setLimit(limit: number): void {
    if (!(limit >= 1)) throw new Error(`concurrency must be at least 1, got ${limit}`);
    this.limit = limit;
    while (this.active < this.limit && this.waiting.length > 0) {
      this.active++;
      this.waiting.shift()!();
    }
  }

  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Frees a slot, handing it straight to the next waiter if there is one. */
  release(): void {
    if (this.active > this.limit || this.waiting.length === 0) this.active--;
    else this.waiting.shift()!();
  }

  /** Runs `task` in a slot. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }
}

/**
 * Runs `attempt` until it does not fail with throttling (the SDK's own retries are exhausted by
 * then): reports each throttle and backs off exponentially with jitter, up to 10 s. Other errors,
 * and an abort, end it.
 */
export async function retryThrottled<T>(
  attempt: () => Promise<T>,
  options: { onThrottle?: () => void; signal?: AbortSignal } = {},
): Promise<T> {
  for (let retries = 0; ; retries++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isThrottlingError(err) || options.signal?.aborted) throw err;
      options.onThrottle?.();
      await sleep(throttleBackoffMs(retries), options.signal);
    }
  }
}

/** Full-jitter exponential backoff after `retries` throttled attempts: up to 0.1 s, 0.2 s, … 10 s. */
export function throttleBackoffMs(retries: number): number {
  return Math.random() * Math.min(10_000, 100 * 2 ** retries);
}
