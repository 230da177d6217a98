// One item of a sweep: derive its patch (with its rule context), and when it needs work, write it
// under the worker's budget with one conditional update; then count the outcome.
import { applyPatch, type ApplyResult } from "../applier.js";
import type { Clients } from "../clients.js";
import { isErrorNamed } from "../errors.js";
import type { SweepCounts } from "../ledger/index.js";
import { derivePatchFor } from "../rule-context.js";
import { describeBasis, inScope, type Assignment, type Item, type Patch, type Violation } from "../rules.js";
import type { SiteLogixTable } from "../schema.js";
import { retryThrottled } from "../throttler.js";
import type { SweepBudget } from "./budget.js";

export interface SweepDiff {
  key: Record<string, string>;
  /** Target attributes and where their value comes from; never values (they may be personal data). */
  set: { attribute: string; was: "absent" | "empty" | "stale"; from: string }[];
}

export interface SweepSamples {
  rejected: { key: Record<string, string>; reason: string }[];
  violations: { key: Record<string, string>; violations: Violation[] }[];
  /** Dry run: what would be written. */
  diffs: SweepDiff[];
}

export const emptySamples = (): SweepSamples => ({ rejected: [], violations: [], diffs: [] });

export interface ItemOutcome {
  item: Item;
  patch: Patch;
  /** Absent when nothing was written (no work, or a dry run). */
  result?: ApplyResult;
}

/** Derives and applies one item's patch; undefined when stopped before its write. */
export async function sweepItem(
  ctx: {
    doc: Clients["doc"];
    table: SiteLogixTable;
    tableName: string;
    budget: SweepBudget;
    dryRun: boolean;
    signal: AbortSignal;
  },
  item: Item,
): Promise<ItemOutcome | undefined> {
  const { doc, table, tableName, budget, signal } = ctx;
  const onThrottle = budget.onThrottle;
  const patch = await derivePatchFor(
    doc,
    table,
    tableName,
    item,
    { mode: "sweep" },
    { retryThrottling: true, onThrottle },
  );
  if (patch.set.length === 0 || ctx.dryRun) return { item, patch };
  const estimate = budget.throttler.estimate();
  await budget.throttler.acquire(estimate, signal);
  if (signal.aborted) return undefined;
  const result = await retryThrottled(
    async () => {
      try {
        return await applyPatch(doc, tableName, patch, "sweep");
      } catch (err) {
        // The item is in a transaction of the application: its write wins, like any other conflict.
        if (isErrorNamed(err, "TransactionConflictException"))
          return { outcome: "conflict", key: patch.key, consumedWcu: 0 } satisfies ApplyResult;
        throw err;
      }
    },
    { onThrottle },
  );
  budget.throttler.settle(estimate, result.consumedWcu);
  return { item, patch, result };
}

/** Adds one item's outcome to `counts`. */
export function countItem(counts: SweepCounts, table: SiteLogixTable, outcome: ItemOutcome): void {
  const { item, patch, result } = outcome;
  counts.scanned++;
  if (patch.violations.length > 0) counts.violations++;
  if (patch.set.length === 0) {
    if (inScope(table, item)) counts.alreadyNormalized++;
    else counts.outOfScope++;
    return;
  }
  counts.needsWork++;
  if (!result) return;
  counts.consumedWcu += result.consumedWcu;
  if (result.outcome === "applied") counts.applied++;
  else if (result.outcome === "conflict") counts.conflicts++;
  else if (result.outcome === "gone") counts.gone++;
  else if (result.outcome === "rejected") counts.rejected++;
}

/** Keeps up to `limit` samples of each kind (keys and attribute names, never values). */
export function sampleItem(samples: SweepSamples, limit: number, outcome: ItemOutcome, dryRun: boolean): void {
  const { patch, result } = outcome;
  const key = patch.key;
  if (patch.violations.length > 0 && samples.violations.length < limit)
    samples.violations.push({ key, violations: patch.violations });
  if (result?.outcome === "rejected" && samples.rejected.length < limit)
    samples.rejected.push({ key, reason: result.reason ?? "" });
  if (dryRun && patch.set.length > 0 && samples.diffs.length < limit)
    samples.diffs.push({ key, set: patch.set.map(describeAssignment) });
}

function describeAssignment(a: Assignment): SweepDiff["set"][number] {
  return {
    attribute: a.attribute,
    was: a.current === undefined ? "absent" : a.current === "" ? "empty" : "stale",
    from: describeBasis(a.basis),
  };
}
