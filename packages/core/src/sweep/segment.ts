// The segment worker: the one code path every mode runs (the one-process sweep, `--workers K`
// processes, the Step Functions worker Lambda). It claims a segment with a lease, scans it from its
// checkpoint for a time-boxed slice, applies each item under its share of the run's budget, and
// checkpoints the key of the last item of the fully applied prefix (any item's key is a valid
// ExclusiveStartKey): a crash costs at most the items in flight and those of the last ~100 ms.
import type { Clients } from "../clients.js";
import { describeError, isErrorNamed } from "../errors.js";
import { scanSegment, sweepAttributes } from "../inspector.js";
import { addSweepCounts, emptySweepCounts, type Ledger, type SweepCounts } from "../ledger/index.js";
import type { Item } from "../rules.js";
import { keyAttributes, TABLES, type SiteLogixTable } from "../schema.js";
import { sleep } from "../sleep.js";
import { observeThrottling } from "../throttler.js";
import { SweepBudget } from "./budget.js";
import { Checkpointer, type Position } from "./checkpointer.js";
import { countItem, type ItemOutcome, sampleItem, type SweepSamples, sweepItem } from "./items.js";
import { finishRunIfComplete, LeaseLostError, SegmentLeases, workerId } from "./leases.js";
import { SWEEP_DEFAULTS } from "./plan.js";

export interface SegmentTask {
  sweepId: string;
  table: SiteLogixTable;
  segment: number;
  totalSegments: number;
  /** How long to work before returning (default 10 minutes). */
  sliceMs?: number;
}

export interface SegmentSliceResult {
  /** The segment reached its end (now or earlier). */
  done: boolean;
  /** What this slice applied (its items are in the segment's checkpoint). */
  counts: SweepCounts;
}

export interface SegmentDeps {
  clients: Pick<Clients, "dynamodb" | "doc">;
  ledger: Ledger;
  tableName: string;
  /** Stops the slice gracefully: in-flight writes finish, the checkpoint is saved, the lease released. */
  signal?: AbortSignal;
  /** The worker's share of the run's budget; by default one of its own, refreshed from the ledger. */
  budget?: SweepBudget;
  /** This worker's name in leases (default: host#pid#nonce). */
  holder?: string;
  /** Write nothing, not even the ledger (no lease, no checkpoint): a dry run's segment. */
  dryRun?: boolean;
  /** Take the segment whatever its lease (the caller owns the whole run). */
  force?: boolean;
  /** Mark the run finished when this slice ends its last segment (default true). */
  finishRun?: boolean;
  /** Every item as it completes (progress; counted again if it is rescanned after a crash). */
  onItem?: (outcome: ItemOutcome) => void;
  samples?: { into: SweepSamples; limit: number };
  leaseMs?: number;
  checkpointIntervalMs?: number;
  controlIntervalMs?: number;
}

/** Works on one segment for one slice; see the module comment. Throws SegmentBusyError when it is held. */
export async function runSegmentSlice(deps: SegmentDeps, task: SegmentTask): Promise<SegmentSliceResult> {
  const slice = new SegmentSlice(deps, task);
  return slice.run();
}

class SegmentSlice {
  private readonly holder: string;
  private readonly leases: SegmentLeases;
  private readonly stop = new AbortController();
  private readonly deadline: number;
  private fatal: unknown;
  private position!: Position;
  private readonly sliceCounts = emptySweepCounts();
  private readonly keyNames: string[];
  /** Completed items (all, not only the prefix) for the rates shown by `status`. */
  private rate = { at: performance.now(), scanned: 0, wcu: 0, scannedNow: 0, wcuNow: 0 };

  constructor(
    private readonly deps: SegmentDeps,
    private readonly task: SegmentTask,
  ) {
    this.holder = deps.holder ?? workerId();
    this.leases = new SegmentLeases(deps.ledger, task.table, task.sweepId, this.holder, deps.leaseMs);
    this.deadline = Date.now() + (task.sliceMs ?? SWEEP_DEFAULTS.sliceMs);
    this.keyNames = keyAttributes(TABLES[task.table]);
  }

  async run(): Promise<SegmentSliceResult> {
    const claimed = await this.claim();
    if (!claimed) return { done: true, counts: this.sliceCounts };
    const { budget, ownBudget } = await this.openBudget();
    const onStop = () => this.stop.abort();
    this.deps.signal?.addEventListener("abort", onStop, { once: true });
    if (this.deps.signal?.aborted) this.stop.abort();
    const checkpointer = new Checkpointer(
      () => this.checkpoint(),
      this.deps.checkpointIntervalMs ?? SWEEP_DEFAULTS.checkpointIntervalMs,
      (err) => this.fail(err),
    );
    const renewal = this.renewLoop(checkpointer);
    const control = ownBudget ? budget.loop(this.stop.signal, (err) => this.fail(err)) : Promise.resolve();
    const stopObserving = ownBudget ? observeThrottling(this.deps.clients.dynamodb, budget.onThrottle) : () => {};
    try {
      await this.scan(budget, checkpointer);
    } catch (err) {
      // An abort of the scan request is how a stop interrupts a page: not an error.
      if (!(this.stop.signal.aborted && isErrorNamed(err, "AbortError"))) this.fail(err);
    }
    this.stop.abort();
    await Promise.all([renewal, control]);
    stopObserving();
    this.deps.signal?.removeEventListener("abort", onStop);
    return this.finish(checkpointer);
  }

  /** Step 1: the lease, and the segment's checkpoint to start from. */
  private async claim(): Promise<boolean> {
    if (this.deps.dryRun) {
      this.position = { done: false, pages: 0, counts: emptySweepCounts() };
      return true;
    }
    const checkpoint = await this.leases.claim(this.task.segment, { force: this.deps.force });
    if (!checkpoint) return false;
    this.position = {
      ...(checkpoint.cursor ? { cursor: checkpoint.cursor } : {}),
      done: checkpoint.done,
      pages: Number(checkpoint.pages ?? 0),
      counts: { ...emptySweepCounts(), ...checkpoint.counts },
    };
    return true;
  }

  private async openBudget(): Promise<{ budget: SweepBudget; ownBudget: boolean }> {
    if (this.deps.budget) return { budget: this.deps.budget, ownBudget: false };
    const budget = new SweepBudget({
      ledger: this.deps.ledger,
      table: this.task.table,
      sweepId: this.task.sweepId,
      holder: this.holder,
      ...(this.deps.controlIntervalMs !== undefined ? { controlIntervalMs: this.deps.controlIntervalMs } : {}),
    });
    await budget.refresh();
    return { budget, ownBudget: true };
  }

  private fail(err: unknown): void {
    this.fatal ??= err;
    this.stop.abort();
  }

  /** Step 2: scan from the checkpoint; each page's items are applied, the prefix tracked. */
  private async scan(budget: SweepBudget, checkpointer: Checkpointer): Promise<void> {
    const { doc } = this.deps.clients;
    const signal = this.stop.signal;
    const pages = scanSegment({
      doc,
      tableName: this.deps.tableName,
      segment: this.task.segment,
      totalSegments: this.task.totalSegments,
      attributes: sweepAttributes(this.task.table),
      ...(this.position.cursor ? { cursor: this.position.cursor } : {}),
      signal,
      onThrottle: budget.onThrottle,
    });
    for await (const page of pages) {
      const prefix = new PagePrefix(page.items.length);
      const tasks: Promise<void>[] = [];
      for (const [i, item] of page.items.entries()) {
        await budget.pause.wait(signal);
        if (signal.aborted || Date.now() >= this.deadline) break;
        await budget.limit.acquire();
        if (signal.aborted) {
          budget.limit.release();
          break;
        }
        const task = this.applyItem(budget, item)
          .then((outcome) => {
            if (outcome) this.complete(prefix, i, page.items, outcome, checkpointer);
          })
          .finally(() => budget.limit.release());
        task.catch((err) => this.fail(err));
        tasks.push(task);
      }
      await Promise.allSettled(tasks);
      if (!prefix.complete) return;
      // The whole page is applied: continue after it (its LastEvaluatedKey; none at the segment's end).
      this.position.pages++;
      if (page.cursor) this.position.cursor = page.cursor;
      else this.position.done = true;
      checkpointer.mark();
      if (signal.aborted || Date.now() >= this.deadline) return;
    }
  }

  private applyItem(budget: SweepBudget, item: Item): Promise<ItemOutcome | undefined> {
    return sweepItem(
      {
        doc: this.deps.clients.doc,
        table: this.task.table,
        tableName: this.deps.tableName,
        budget,
        dryRun: this.deps.dryRun === true,
        signal: this.stop.signal,
      },
      item,
    );
  }

  /** Step 3: one item done; the prefix moves on over every item done before it. */
  private complete(prefix: PagePrefix, i: number, items: Item[], outcome: ItemOutcome, cp: Checkpointer): void {
    const counts = emptySweepCounts();
    countItem(counts, this.task.table, outcome);
    this.rate.scannedNow++;
    this.rate.wcuNow += counts.consumedWcu;
    this.deps.onItem?.(outcome);
    if (this.deps.samples)
      sampleItem(this.deps.samples.into, this.deps.samples.limit, outcome, this.deps.dryRun === true);
    for (const j of prefix.done(i, counts)) {
      addSweepCounts(this.position.counts, prefix.counts[j]!);
      addSweepCounts(this.sliceCounts, prefix.counts[j]!);
      const item = items[j]!;
      this.position.cursor = Object.fromEntries(this.keyNames.map((k) => [k, item[k]]));
    }
    cp.mark();
  }

  /** Step 4: the checkpoint (and lease renewal) with the current rates. */
  private async checkpoint(): Promise<void> {
    if (this.deps.dryRun) return;
    await this.leases.save(this.task.segment, { ...this.position, ...this.rates() });
  }

  private rates(): { itemsPerSecond: number; wcuPerSecond: number } {
    const now = performance.now();
    const seconds = Math.max((now - this.rate.at) / 1000, 0.001);
    const itemsPerSecond = Math.round(((this.rate.scannedNow - this.rate.scanned) / seconds) * 10) / 10;
    const wcuPerSecond = Math.round(((this.rate.wcuNow - this.rate.wcu) / seconds) * 10) / 10;
    if (now - this.rate.at >= 2000)
      this.rate = { ...this.rate, at: now, scanned: this.rate.scannedNow, wcu: this.rate.wcuNow };
    return { itemsPerSecond, wcuPerSecond };
  }

  /** Renews the lease every control interval even when no item completes (a paused or slow worker). */
  private async renewLoop(checkpointer: Checkpointer): Promise<void> {
    // At least 100 ms: a lease of 0 (a test's, or `--lease-ms 0` to take a run over at once) must not
    // turn this into a loop that never yields to the event loop.
    const interval = Math.max(
      100,
      Math.min(this.deps.controlIntervalMs ?? SWEEP_DEFAULTS.controlIntervalMs, this.leaseMs / 3),
    );
    for (;;) {
      await sleep(interval, this.stop.signal);
      if (this.stop.signal.aborted) return;
      checkpointer.mark();
    }
  }

  private get leaseMs(): number {
    return this.deps.leaseMs ?? SWEEP_DEFAULTS.leaseMs;
  }

  /** Step 5: the final checkpoint, the lease released (or the failure recorded), the run finished. */
  private async finish(checkpointer: Checkpointer): Promise<SegmentSliceResult> {
    const lost = this.fatal instanceof LeaseLostError;
    if (!lost && !this.deps.dryRun) {
      try {
        await checkpointer.close();
        await this.leases.save(this.task.segment, { ...this.position, ...this.rates() }, { release: true });
      } catch (err) {
        this.fatal ??= err;
      }
    }
    if (this.fatal !== undefined) {
      if (!lost && !this.deps.dryRun) await this.leases.fail(this.task.segment, oneLine(this.fatal));
      throw this.fatal;
    }
    if (this.position.done && this.deps.finishRun !== false && !this.deps.dryRun)
      await finishRunIfComplete(this.deps.ledger, this.task.table, this.task.sweepId);
    return { done: this.position.done, counts: this.sliceCounts };
  }
}

/** Which items of a page are done, and how far the fully done prefix reaches. */
class PagePrefix {
  readonly counts: (SweepCounts | undefined)[];
  private next = 0;

  constructor(readonly size: number) {
    this.counts = new Array(size);
  }

  get complete(): boolean {
    return this.next === this.size;
  }

  /** Marks item `i` done; returns the items the prefix newly covers, in order. */
  done(i: number, counts: SweepCounts): number[] {
    this.counts[i] = counts;
    const covered: number[] = [];
    while (this.next < this.size && this.counts[this.next]) covered.push(this.next++);
    return covered;
  }
}

/** An error as one line without item data (SDK messages name attributes and keys, not values). */
export function oneLine(err: unknown): string {
  return describeError(err).split("\n")[0]!;
}
