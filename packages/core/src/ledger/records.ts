// The ledger's records: one table holds all of the migration's state. Item keys:
//   TABLE#<logical> / STATE                    when the normalizer went live (the phase is derived: status)
//   TABLE#<logical> / SWEEP#<id>               sweep runs (id starts with the start time: sorts by age)
//   TABLE#<logical> / SWEEPSEG#<id>#<nnnn>     per-segment checkpoints and leases of a sweep run
//   TABLE#<logical> / SWEEPCTL#<id>            a sweep run's shared budget (max WCU, concurrency)
//   TABLE#<logical> / GATE#<iso time>          verify results (the index gate)
//   TABLE#<logical> / VIOLATION#<keys>         data problems the normalizer could not fix (keys, reasons; no values)
//   TABLE#<logical> / BACKUP#<iso time>        on-demand backups taken by `backup`
//   STREAM#<subscriber>#<logical> / MAPPING    local stream runner: the mapping's stream and starting position
//   STREAM#<subscriber>#<logical> / SHARD#<shard id>                  its checkpoint per shard
//   STREAM#<subscriber>#<logical> / FAILURE#<shard id>#<first seq>    its on-failure sink (batch info, no images)
//   CONTROL / PAUSE                            operator's pause flag for running sweeps
// The index gate (may a deploy build a table's target GSIs?) is decided from STATE, SWEEP# and GATE#
// (phases/index-gate.ts).
import type { Outcome } from "../applier.js";
import type { Violation } from "../rules.js";
import { itemKey, type LogicalTable, type SiteLogixTable } from "../schema.js";

export const ledgerKeys = {
  tableState: (table: LogicalTable) => ({ PK: `TABLE#${table}`, SK: "STATE" }),
  gate: (table: LogicalTable, at: string) => ({ PK: `TABLE#${table}`, SK: `GATE#${at}` }),
  sweep: (table: LogicalTable, sweepId: string) => ({ PK: `TABLE#${table}`, SK: `SWEEP#${sweepId}` }),
  sweepSegment: (table: LogicalTable, sweepId: string, segment: number) => ({
    PK: `TABLE#${table}`,
    SK: `SWEEPSEG#${sweepId}#${String(segment).padStart(4, "0")}`,
  }),
  sweepControl: (table: LogicalTable, sweepId: string) => ({ PK: `TABLE#${table}`, SK: `SWEEPCTL#${sweepId}` }),
  pause: () => ({ PK: "CONTROL", SK: "PAUSE" }),
};

export type SweepStatus = "running" | "stopped" | "failed" | "finished";

/**
 * What a sweep saw and did. scanned = outOfScope + alreadyNormalized + needsWork;
 * needsWork = applied + conflicts + gone + rejected (a dry run applies nothing);
 * violations counts items with at least one (they may need work too).
 */
export interface SweepCounts {
  scanned: number;
  /** Items no rule applies to (HISTORY#, DELIVERY#): never written. */
  outOfScope: number;
  alreadyNormalized: number;
  needsWork: number;
  applied: number;
  /** The application changed the item between the scan and the write: it won. */
  conflicts: number;
  /** The item was deleted between the scan and the write: it stays deleted. */
  gone: number;
  /** DynamoDB refused the write (e.g. item size, an existing index's key type). */
  rejected: number;
  violations: number;
  consumedWcu: number;
}

export const emptySweepCounts = (): SweepCounts => ({
  scanned: 0,
  outOfScope: 0,
  alreadyNormalized: 0,
  needsWork: 0,
  applied: 0,
  conflicts: 0,
  gone: 0,
  rejected: 0,
  violations: 0,
  consumedWcu: 0,
});

export function addSweepCounts(into: SweepCounts, add: SweepCounts): SweepCounts {
  for (const k of Object.keys(into) as (keyof SweepCounts)[]) into[k] += add[k];
  return into;
}

/** The process working on a sweep run; it refreshes `heartbeatAt` every few seconds. */
export interface SweepOwner {
  host: string;
  pid: number;
  heartbeatAt: string;
}

/**
 * One sweep run of one table (dry runs are not recorded). `finishedAt` is set only when every
 * segment reached its end; `counts` are the totals of the segments' checkpoints.
 */
export interface SweepRun {
  table: LogicalTable;
  sweepId: string;
  startedAt: string;
  finishedAt?: string;
  status: SweepStatus;
  totalSegments: number;
  counts?: SweepCounts;
  owner?: SweepOwner;
  /**
   * When it last stopped (signal or error) and, for `failed` or a stop the sweep made itself
   * (credentials), why (never item data).
   */
  stoppedAt?: string;
  error?: string;
  /** A distributed sweep: its current Step Functions execution (sweep-machine/execution.ts). */
  executionArn?: string;
}

/**
 * A segment's position and lease: everything up to and including the item whose key is `cursor`
 * has been fully applied (a scan resumes after it: any item's key is a valid ExclusiveStartKey).
 */
export interface SweepCheckpoint {
  table: LogicalTable;
  sweepId: string;
  segment: number;
  /** The key of the last item of the fully applied prefix; absent before the first item. */
  cursor?: Record<string, unknown>;
  done: boolean;
  /** Scan pages fully applied. */
  pages: number;
  counts: SweepCounts;
  updatedAt: string;
  /** The worker working on it (`host#pid#nonce`) and until when (epoch ms) unless it renews. */
  leaseHolder?: string;
  leaseUntil?: number;
  /** Rates of its current worker, for `status` (items scanned/s, consumed WCU/s). */
  itemsPerSecond?: number;
  wcuPerSecond?: number;
  /** Set by a worker that failed on it, or by the state machine's Catch; cleared when it is claimed again. */
  failedAt?: string;
  error?: string;
}

/**
 * A sweep run's shared budget, read by every worker every few seconds: each takes an equal share
 * of `maxWcu` and `concurrency` among the live workers. `throttles` counts slowdowns any worker
 * made: a rise makes the others slow down too.
 */
export interface SweepControl {
  table: LogicalTable;
  sweepId: string;
  /** Consumed WCU/s for the whole table; absent: no cap (throttling still slows down). */
  maxWcu?: number;
  /** Items in flight over all workers. */
  concurrency: number;
  throttles: number;
  updatedAt: string;
}

export interface PauseFlag {
  paused: boolean;
  at: string;
  /** Who set it (user@host). */
  by: string;
}

export interface TableState {
  table: LogicalTable;
  /** ISO time from which the normalizer has processed every write of this table. */
  normalizerLiveAt?: string;
}

export interface GateResult {
  table: LogicalTable;
  /** ISO time the verify scan started: every item written before it was checked. */
  at: string;
  green: boolean;
  /** Items missing (or holding a stale) key attribute of a target GSI that the rules would derive. */
  gaps: number;
  /** Items with a key attribute of the wrong type or empty, or a rule violation. */
  violations: number;
  /**
   * Items indexed under a derived value the application owns that differs from what the rules derive
   * (informational: never blocks the gate). Absent in gates recorded before it was counted.
   */
  disagreements?: number;
  scanned?: number;
  /** Per target GSI: counts and up to 20 sample keys each (keys and attribute names only). */
  indexes?: IndexCheck[];
}

export interface IndexCheck {
  index: string;
  keyAttributes: string[];
  gaps: number;
  violations: number;
  sampleGaps: { key: Record<string, string>; attributes: string[] }[];
  sampleViolations: {
    key: Record<string, string>;
    violations: { attribute: string; problem: string; at: string; type: string }[];
  }[];
  /** Items whose application-owned key attributes (named) differ from the rules' derivation. */
  disagreements: number;
  sampleDisagreements: { key: Record<string, string>; attributes: string[] }[];
}

// --- normalizer violations ---

/** What the normalizer could not fix on one item: reported, not retried (retrying cannot fix data). */
export interface NormalizerViolation {
  table: SiteLogixTable;
  key: Record<string, string>;
  /**
   * The write's outcome: `rejected` (DynamoDB refused it, `reason` says why) or what happened to the
   * rest of the patch.
   */
  outcome: Outcome;
  violations: Violation[];
  reason?: string;
  eventId: string;
  sequenceNumber: string;
  /** When the normalizer saw it (ISO). */
  at: string;
}

export const normalizerViolationKey = (table: SiteLogixTable, key: Record<string, string>) => ({
  PK: `TABLE#${table}`,
  SK: `VIOLATION#${Object.entries(itemKey(table, key))
    .map(([name, value]) => `${name}=${value}`)
    .join("#")}`,
});

/** One `backup` attempt; only AVAILABLE backups are restore points. */
export interface BackupRecord {
  table: LogicalTable;
  tableName: string;
  backupName: string;
  backupArn?: string;
  createdAt: string;
  status: "AVAILABLE" | "FAILED";
  error?: string;
  sizeBytes?: number;
}
