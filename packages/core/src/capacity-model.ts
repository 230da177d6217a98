// How long a sweep takes on AWS and what it costs, before choosing between one process and the
// distributed sweep: items, item size and budget → hours, workers, segments and cost. The write units
// per item come from `estimate` (writeUnits: one per started KB of the larger of before and after), so
// the two agree; a sweep's writes are budgeted, its scan reads are not (they bill read units only).
import { type Pricing, type TableEstimate, writeUnits } from "./estimate.js";

/** DynamoDB's default per-table write throughput quota (on-demand and provisioned). */
export const TABLE_WRITE_QUOTA_WCU = 40_000;

/**
 * What one worker sustains when the budget does not hold it back: 32 conditional writes in flight at
 * about 10 ms each, less about 1 ms of SDK CPU per request (issue 14; `npm run bench` measures the CPU).
 */
export const WORKER_WRITES_PER_SECOND = 2_500;

/** Lambda's and Step Functions' prices (us-east-1, 2024), used where pricing.json has none. */
export const SERVERLESS_PRICES = {
  lambdaPerGbSecond: 0.000_016_666_7,
  lambdaPerMillionRequests: 0.2,
  stepFunctionsPerThousandTransitions: 0.025,
} as const;

export interface CapacityInput {
  /** Items in the table (all are scanned). */
  items: number;
  /** Average item size in bytes (as `estimate` measures it). */
  avgItemBytes: number;
  /** Fraction of the items that need a write (estimate's sample; 1 if unknown). */
  needsWorkFraction?: number;
  /** Write units of the whole sweep, when `estimate` measured them (overrides the size-based figure). */
  sweepWriteUnits?: number;
  /** The sweep's budget: write units per second for the whole table (`--max-wcu`). */
  budgetWcu: number;
  /** The table's write quota (default 40,000). The budget is capped at it. */
  tableQuotaWcu?: number;
  /** Writes per second one worker sustains (default WORKER_WRITES_PER_SECOND). */
  workerWritesPerSecond?: number;
  /** A worker Lambda's memory and slice length (distributed sweep). */
  workerMemoryMb?: number;
  sliceMinutes?: number;
}

export interface CapacityPlan {
  itemsToWrite: number;
  writeUnits: number;
  readUnits: number;
  /** The rate the sweep runs at: the budget, unless the quota caps it. */
  effectiveWcu: number;
  hours: number;
  /** Workers needed to reach the budget; 1 means one process is enough. */
  workers: number;
  /** Scan segments: four per worker, so a slow segment does not hold the end back. */
  segments: number;
  distributed: boolean;
  cost: { writes: number; reads: number; lambda: number; stepFunctions: number; total: number };
  limitedBy: "budget" | "quota";
}

const round2 = (x: number) => Math.round(x * 100) / 100;

export function planCapacity(input: CapacityInput, pricing: Pricing): CapacityPlan {
  if (!(input.budgetWcu > 0)) throw new RangeError("the budget (write units per second) must be above 0");
  const quota = input.tableQuotaWcu ?? TABLE_WRITE_QUOTA_WCU;
  const itemsToWrite = Math.round(input.items * (input.needsWorkFraction ?? 1));
  const unitsPerWrite = writeUnits(input.avgItemBytes);
  const totalWriteUnits = input.sweepWriteUnits ?? itemsToWrite * unitsPerWrite;
  // Eventually consistent scan: half a read unit per 4 KB.
  const readUnits = Math.ceil((input.items * input.avgItemBytes) / 4096) * 0.5;
  const effectiveWcu = Math.min(input.budgetWcu, quota);
  const seconds = totalWriteUnits / effectiveWcu;
  const unitsPerItem = itemsToWrite > 0 ? totalWriteUnits / itemsToWrite : 1;
  const writesPerSecond = itemsToWrite > 0 ? effectiveWcu / Math.max(1, unitsPerItem) : 0;
  const perWorker = input.workerWritesPerSecond ?? WORKER_WRITES_PER_SECOND;
  const workers = Math.max(1, Math.ceil(writesPerSecond / perWorker));
  const segments = workers * 4;

  const distributed = workers > 1;
  const workerSeconds = distributed ? workers * seconds : 0;
  const memoryGb = (input.workerMemoryMb ?? 1024) / 1024;
  const invocations = distributed ? Math.ceil(workerSeconds / 60 / (input.sliceMinutes ?? 10)) + segments : 0;
  const lambda =
    workerSeconds * memoryGb * SERVERLESS_PRICES.lambdaPerGbSecond +
    (invocations / 1e6) * SERVERLESS_PRICES.lambdaPerMillionRequests;
  // Per invocation: the task, the choice and the loop; per segment: the child's start and end.
  const transitions = distributed ? invocations * 3 + segments * 2 : 0;
  const stepFunctions = (transitions / 1000) * SERVERLESS_PRICES.stepFunctionsPerThousandTransitions;
  const writes = (totalWriteUnits / 1e6) * pricing.onDemand.perMillionWriteRequestUnits;
  const reads = (readUnits / 1e6) * pricing.onDemand.perMillionReadRequestUnits;
  return {
    itemsToWrite,
    writeUnits: Math.round(totalWriteUnits),
    readUnits: Math.round(readUnits),
    effectiveWcu,
    hours: Math.round((seconds / 3600) * 10) / 10,
    workers,
    segments,
    distributed,
    cost: {
      writes: round2(writes),
      reads: round2(reads),
      lambda: round2(lambda),
      stepFunctions: round2(stepFunctions),
      total: round2(writes + reads + lambda + stepFunctions),
    },
    limitedBy: input.budgetWcu > quota ? "quota" : "budget",
  };
}

/** The plan for a table `estimate` measured, at a budget. */
export function capacityFromEstimate(table: TableEstimate, budgetWcu: number, pricing: Pricing): CapacityPlan {
  return planCapacity(
    {
      items: table.itemCount,
      avgItemBytes: table.avgItemBytes,
      needsWorkFraction: table.itemCount > 0 ? table.needsWork / table.itemCount : 0,
      sweepWriteUnits: table.sweep.writeUnits,
      budgetWcu,
    },
    pricing,
  );
}
