// A worker process of a sweep run (`sweep --workers K` starts K of them): it claims segments
// through the ledger, one at a time, and runs the segment worker on each until every segment of
// the run is done. A segment another live worker holds is skipped; one whose lease expired (its
// worker died) is taken over, so the run finishes as long as one worker lives.
import type { Clients } from "../clients.js";
import { isErrorNamed } from "../errors.js";
import { emptySweepCounts, type Ledger, ledgerKeys, type SweepCounts, type SweepRun } from "../ledger/index.js";
import type { SiteLogixTable } from "../schema.js";
import { sleep } from "../sleep.js";
import { observeThrottling } from "../throttler.js";
import { SweepBudget } from "./budget.js";
import { addSweepCounts } from "../ledger/index.js";
import { isDeadLocalHolder, SegmentBusyError, workerId } from "./leases.js";
import { runSegmentSlice } from "./segment.js";

export interface SweepWorkerOptions {
  clients: Pick<Clients, "dynamodb" | "doc">;
  ledger: Ledger;
  table: SiteLogixTable;
  tableName: string;
  sweepId: string;
  signal?: AbortSignal;
  leaseMs?: number;
  sliceMs?: number;
  checkpointIntervalMs?: number;
  controlIntervalMs?: number;
  /** How often to look again when every unfinished segment is held by another worker. */
  pollMs?: number;
}

/**
 * Works on the run's segments until all are done (`done: true`; the worker that ends the last one
 * marks the run finished) or the signal stops it.
 */
export async function runSweepWorker(options: SweepWorkerOptions): Promise<{ done: boolean; counts: SweepCounts }> {
  const { ledger, table, sweepId } = options;
  const run = await ledger.get<SweepRun>(ledgerKeys.sweep(table, sweepId));
  if (!run) throw new Error(`${table}: no sweep run ${sweepId} in the ledger`);
  const holder = workerId();
  const stop = new AbortController();
  const onStop = () => stop.abort();
  options.signal?.addEventListener("abort", onStop, { once: true });
  if (options.signal?.aborted) stop.abort();
  const budget = new SweepBudget({
    ledger,
    table,
    sweepId,
    holder,
    ...(options.controlIntervalMs !== undefined ? { controlIntervalMs: options.controlIntervalMs } : {}),
  });
  await budget.refresh();
  let fatal: unknown;
  const control = budget.loop(stop.signal, (err) => {
    fatal ??= err;
    stop.abort();
  });
  const stopObserving = observeThrottling(options.clients.dynamodb, budget.onThrottle);
  const counts = emptySweepCounts();
  let done = false;
  try {
    while (!stop.signal.aborted) {
      const segments = await ledger.checkpoints(table, sweepId);
      const open = segments.filter((s) => !s.done);
      if (open.length === 0 && segments.length >= run.totalSegments) {
        done = true;
        break;
      }
      const now = Date.now();
      // Free segments first, in an order of its own (workers starting together spread out).
      const claimable = open
        .filter((s) => !s.leaseHolder || Number(s.leaseUntil ?? 0) < now || isDeadLocalHolder(s.leaseHolder))
        .sort((x, y) => (((x.segment * 7919) ^ process.pid) % 97) - (((y.segment * 7919) ^ process.pid) % 97));
      let worked = false;
      for (const s of claimable) {
        if (stop.signal.aborted) break;
        try {
          const slice = await runSegmentSlice(
            {
              clients: options.clients,
              ledger,
              tableName: options.tableName,
              signal: stop.signal,
              budget,
              holder,
              ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
              ...(options.checkpointIntervalMs !== undefined
                ? { checkpointIntervalMs: options.checkpointIntervalMs }
                : {}),
              ...(options.controlIntervalMs !== undefined ? { controlIntervalMs: options.controlIntervalMs } : {}),
            },
            {
              sweepId,
              table,
              segment: s.segment,
              totalSegments: run.totalSegments,
              ...(options.sliceMs !== undefined ? { sliceMs: options.sliceMs } : {}),
            },
          );
          addSweepCounts(counts, slice.counts);
          worked = true;
          break;
        } catch (err) {
          if (err instanceof SegmentBusyError) continue;
          if (stop.signal.aborted && isErrorNamed(err, "AbortError")) break;
          throw err;
        }
      }
      if (!worked) await sleep(options.pollMs ?? 1000, stop.signal);
    }
  } finally {
    stop.abort();
    await control;
    stopObserving();
    options.signal?.removeEventListener("abort", onStop);
  }
  if (fatal !== undefined) throw fatal;
  return { done, counts };
}
