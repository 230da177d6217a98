// The plan-and-run loop over tables, shared by `sweep` and the rehearsal: every table is planned
// before any runs (an unfinished sweep is reported up front), then each runs in turn, through the
// runner the caller picks (this process, or worker processes), until one stops.
import type { Ledger, SweepRun } from "../ledger/index.js";
import type { SiteLogixTable } from "../schema.js";
import { planSweep, type SweepPlan, UnfinishedSweepError } from "./plan.js";
import type { SweepReport } from "./run.js";

/** Unfinished sweeps on some tables and no --resume: nothing ran. */
export class SweepRefusedError extends Error {
  constructor(readonly refusals: string[]) {
    super(refusals.join("; "));
    this.name = "SweepRefusedError";
  }
}

export type TableSweepResult =
  | { table: SiteLogixTable; skipped: SweepRun }
  | { table: SiteLogixTable; report: SweepReport };

export interface SweepTablesOptions {
  ledger: Ledger;
  tables: SiteLogixTable[];
  resume?: boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Plans one table (the caller may wrap it, e.g. to name the ledger in errors). */
  plan?: (table: SiteLogixTable, plan: () => Promise<SweepPlan>) => Promise<SweepPlan>;
  run: (table: SiteLogixTable, plan: Exclude<SweepPlan, { action: "skip" }>) => Promise<SweepReport>;
  /** Each table's result as it ends (skip or report). */
  onResult?: (result: TableSweepResult) => void | Promise<void>;
}

export async function sweepTables(options: SweepTablesOptions): Promise<TableSweepResult[]> {
  const plans = new Map<SiteLogixTable, SweepPlan>();
  const refusals: string[] = [];
  for (const table of options.tables) {
    const plan = () => planSweep(options.ledger, table, { resume: options.resume, dryRun: options.dryRun });
    try {
      plans.set(table, await (options.plan ? options.plan(table, plan) : plan()));
    } catch (err) {
      if (!(err instanceof UnfinishedSweepError)) throw err;
      refusals.push(err.message);
    }
  }
  if (refusals.length > 0) throw new SweepRefusedError(refusals);
  const results: TableSweepResult[] = [];
  for (const table of options.tables) {
    if (options.signal?.aborted) break;
    const plan = plans.get(table)!;
    const result: TableSweepResult =
      plan.action === "skip" ? { table, skipped: plan.run } : { table, report: await options.run(table, plan) };
    results.push(result);
    await options.onResult?.(result);
    // The next table would meet the same credentials: stop here, resumable.
    if ("report" in result && result.report.stopReason) break;
  }
  return results;
}
