// A sweep run as the ledger shows it, whoever runs it (one process, worker processes, the state
// machine's Lambdas): segments done, live workers, rates against the budget, ETA, failed segments.
// And the operator's live reconfiguration of a running sweep (--set-max-wcu, --set-concurrency).
import type { Ledger, SweepRun } from "../ledger/index.js";
import type { SiteLogixTable } from "../schema.js";
import { setSweepControl, sumCounts, sweepControl } from "./leases.js";
import { failedOf } from "./run.js";

export interface SweepRunView {
  sweepId: string;
  status: SweepRun["status"];
  totalSegments: number;
  segmentsDone: number;
  /** Distinct workers holding an unexpired lease on a segment. */
  activeWorkers: number;
  scanned: number;
  applied: number;
  itemsPerSecond: number;
  wcuPerSecond: number;
  /** The budget in force for the whole table (absent: no cap) and the items in flight over all workers. */
  maxWcu?: number;
  concurrency?: number;
  /** Seconds left at the current rate, from the table's approximate item count; absent when unknown. */
  etaSeconds?: number;
  failedSegments: { segment: number; failedAt: string; error: string }[];
}

export async function sweepRunView(ledger: Ledger, run: SweepRun, estimatedTotal?: number): Promise<SweepRunView> {
  const [segments, control] = await Promise.all([
    ledger.checkpoints(run.table, run.sweepId),
    sweepControl(ledger, run.table, run.sweepId),
  ]);
  const now = Date.now();
  const live = segments.filter((s) => s.leaseHolder && Number(s.leaseUntil ?? 0) > now);
  const counts = segments.length > 0 ? sumCounts(segments) : (run.counts ?? sumCounts([]));
  const itemsPerSecond = round(live.reduce((n, s) => n + Number(s.itemsPerSecond ?? 0), 0));
  const wcuPerSecond = round(live.reduce((n, s) => n + Number(s.wcuPerSecond ?? 0), 0));
  const left = estimatedTotal !== undefined ? Math.max(0, estimatedTotal - counts.scanned) : undefined;
  return {
    sweepId: run.sweepId,
    status: run.status,
    totalSegments: run.totalSegments,
    segmentsDone: segments.filter((s) => s.done).length,
    activeWorkers: new Set(live.map((s) => s.leaseHolder)).size,
    scanned: counts.scanned,
    applied: counts.applied,
    itemsPerSecond,
    wcuPerSecond,
    ...(control?.maxWcu !== undefined ? { maxWcu: Number(control.maxWcu) } : {}),
    ...(control?.concurrency !== undefined ? { concurrency: Number(control.concurrency) } : {}),
    ...(left !== undefined && itemsPerSecond > 0 && run.status === "running"
      ? { etaSeconds: Math.round(left / itemsPerSecond) }
      : {}),
    failedSegments: failedOf(segments),
  };
}

const round = (n: number) => Math.round(n * 10) / 10;

/** No running sweep of the table to reconfigure. */
export class NoRunningSweepError extends Error {
  constructor(readonly table: SiteLogixTable) {
    super(`${table}: no sweep is running or unfinished; set the budget when starting it (--max-wcu, --concurrency)`);
    this.name = "NoRunningSweepError";
  }
}

/**
 * Changes the budget of a table's unfinished sweep (maxWcu null lifts the cap); its workers take
 * their share within one control interval (2 s).
 */
export async function reconfigureSweep(
  ledger: Ledger,
  table: SiteLogixTable,
  fields: { maxWcu?: number | null; concurrency?: number },
): Promise<{ sweepId: string; maxWcu?: number; concurrency: number }> {
  const run = await ledger.latestSweep(table);
  if (!run || run.status === "finished") throw new NoRunningSweepError(table);
  const control = await setSweepControl(ledger, run, fields);
  return {
    sweepId: run.sweepId,
    ...(control.maxWcu !== undefined ? { maxWcu: Number(control.maxWcu) } : {}),
    concurrency: Number(control.concurrency),
  };
}
