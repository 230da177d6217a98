// Migration state, one table for all of it. Item keys:
//   TABLE#<logical> / STATE                    when the normalizer went live (the phase is derived: status)
//   TABLE#<logical> / SWEEP#<id>               sweep runs (id starts with the start time: sorts by age)
//   TABLE#<logical> / SWEEPSEG#<id>#<nnnn>     per-segment checkpoints of a sweep run
//   TABLE#<logical> / GATE#<iso time>          verify results (the index gate)
//   TABLE#<logical> / VIOLATION#<keys>         data problems the normalizer could not fix (keys, reasons; no values)
//   TABLE#<logical> / BACKUP#<iso time>        on-demand backups taken by `backup`
//   STREAM#<subscriber>#<logical> / MAPPING    local stream runner: the mapping's stream and starting position
//   STREAM#<subscriber>#<logical> / SHARD#<shard id>                  its checkpoint per shard
//   STREAM#<subscriber>#<logical> / FAILURE#<shard id>#<first seq>    its on-failure sink (batch info, no images)
//   CONTROL / PAUSE                            operator's pause flag for running sweeps
// The index gate (may a deploy build a table's target GSIs?) is decided from STATE, SWEEP# and GATE#.
import {
  GetCommand,
  paginateQuery,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from "@aws-sdk/lib-dynamodb";
import type { Outcome } from "./applier.js";
import { tablesWithRules, type Violation } from "./rules.js";
import { itemKey, type LogicalTable, type SiteLogixTable } from "./schema.js";
import { isErrorNamed } from "./errors.js";

export const ledgerKeys = {
  tableState: (table: LogicalTable) => ({ PK: `TABLE#${table}`, SK: "STATE" }),
  gate: (table: LogicalTable, at: string) => ({ PK: `TABLE#${table}`, SK: `GATE#${at}` }),
  sweep: (table: LogicalTable, sweepId: string) => ({ PK: `TABLE#${table}`, SK: `SWEEP#${sweepId}` }),
  sweepSegment: (table: LogicalTable, sweepId: string, segment: number) => ({
    PK: `TABLE#${table}`,
    SK: `SWEEPSEG#${sweepId}#${String(segment).padStart(4, "0")}`,
  }),
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
  /** When it last stopped (signal or error) and, for `failed` or a stop the sweep made itself (credentials), why (never item data). */
  stoppedAt?: string;
  error?: string;
}

/** A segment's position: everything before `cursor` has been fully applied. */
export interface SweepCheckpoint {
  table: LogicalTable;
  sweepId: string;
  segment: number;
  /** The scan's LastEvaluatedKey after the last fully applied page; absent before the first page. */
  cursor?: Record<string, unknown>;
  done: boolean;
  pages: number;
  counts: SweepCounts;
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
  /** The write's outcome: `rejected` (DynamoDB refused it, `reason` says why) or what happened to the rest of the patch. */
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

// --- stream runner checkpoints and on-failure sink ---

/** Where a mapping starts reading a shard it has no checkpoint for. */
export type StreamStartingPosition = "trim-horizon" | "latest";

export interface StreamMapping {
  subscriber: string;
  table: LogicalTable;
  streamArn: string;
  from: StreamStartingPosition;
  /** ISO time of the mapping's first start; with `latest`, records written before it are skipped. */
  startedAt: string;
}

export interface ShardCheckpoint {
  subscriber: string;
  table: LogicalTable;
  streamArn: string;
  shardId: string;
  parentShardId?: string;
  /** Every record up to and including this one is done (delivered, filtered out, or sunk). */
  sequenceNumber?: string;
  /** The shard is closed and every record of it is done: its children may start. */
  finished: boolean;
  updatedAt: string;
}

/** Lambda's on-failure conditions, plus records the stream trimmed before they were read. */
export type StreamFailureCondition = "RetryAttemptsExhausted" | "RecordAgeExceeded" | "RecordsTrimmed";

/** A discarded batch, as Lambda sends it to an on-failure destination, plus the records' keys. */
export interface StreamFailure {
  subscriber: string;
  table: LogicalTable;
  streamArn: string;
  shardId: string;
  condition: StreamFailureCondition;
  startSequenceNumber: string;
  endSequenceNumber: string;
  batchSize: number;
  /** Invocations of the last (smallest) failing batch. */
  attempts: number;
  /** The handler's last error, or its partial-failure response (never item values). */
  error?: string;
  records: { sequenceNumber: string; eventId: string; eventName: string; keys: Record<string, string> }[];
  at: string;
}

export const streamKeys = {
  pk: (subscriber: string, table: LogicalTable) => `STREAM#${subscriber}#${table}`,
  mapping: (subscriber: string, table: LogicalTable) => ({ PK: streamKeys.pk(subscriber, table), SK: "MAPPING" }),
  shard: (subscriber: string, table: LogicalTable, shardId: string) => ({
    PK: streamKeys.pk(subscriber, table),
    SK: `SHARD#${shardId}`,
  }),
  failure: (subscriber: string, table: LogicalTable, shardId: string, startSequenceNumber: string) => ({
    PK: streamKeys.pk(subscriber, table),
    SK: `FAILURE#${shardId}#${startSequenceNumber}`,
  }),
};

const stripKey = <T>(item: T & { PK?: string; SK?: string }): T => {
  const { PK: _pk, SK: _sk, ...rest } = item;
  return rest as T;
};

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

export class Ledger {
  constructor(
    readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  async get<T>(key: { PK: string; SK: string }): Promise<T | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }));
    return out.Item as T | undefined;
  }

  async put(key: { PK: string; SK: string }, record: object): Promise<void> {
    await this.doc.send(new PutCommand({ TableName: this.tableName, Item: { ...record, ...key } }));
  }

  /** Items of one partition whose SK starts with `prefix`, newest (highest SK) first when `descending`. */
  async query<T>(pk: string, prefix: string, options: { descending?: boolean; limit?: number } = {}): Promise<T[]> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: "PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues: { ":pk": pk, ":prefix": prefix },
        ScanIndexForward: !options.descending,
        ConsistentRead: true,
        ...(options.limit ? { Limit: options.limit } : {}),
      }),
    );
    return (out.Items ?? []) as T[];
  }

  async tableState(table: LogicalTable): Promise<TableState> {
    return (await this.get<TableState>(ledgerKeys.tableState(table))) ?? { table };
  }

  /** Records that the normalizer is live for `table` from `at` on; an earlier time is kept. */
  async markNormalizerLive(table: LogicalTable, at: string): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: ledgerKeys.tableState(table),
        UpdateExpression: "SET #table = :table, normalizerLiveAt = if_not_exists(normalizerLiveAt, :at)",
        ExpressionAttributeNames: { "#table": "table" },
        ExpressionAttributeValues: { ":table": table, ":at": at },
      }),
    );
  }

  // --- sweep runs, checkpoints, pause flag and gate results ---

  /** The newest sweep run of a table (any status), if any. */
  async latestSweep(table: LogicalTable): Promise<SweepRun | undefined> {
    return (await this.query<SweepRun>(`TABLE#${table}`, "SWEEP#", { descending: true, limit: 1 }))[0];
  }

  /** Records a new sweep run; fails if one with this id exists. */
  async createSweep(run: SweepRun): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...run, ...ledgerKeys.sweep(run.table, run.sweepId) },
        ConditionExpression: "attribute_not_exists(PK)",
      }),
    );
  }

  /**
   * Makes `owner` the process running a sweep. Succeeds only if the run is not running, or its
   * owner's heartbeat is older than `staleBefore`; returns false otherwise.
   */
  async claimSweep(table: LogicalTable, sweepId: string, owner: SweepOwner, staleBefore: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: ledgerKeys.sweep(table, sweepId),
          UpdateExpression: "SET #status = :running, #owner = :owner REMOVE stoppedAt, #error",
          ConditionExpression:
            "attribute_exists(PK) AND (#status <> :running OR attribute_not_exists(#owner) OR #owner.heartbeatAt < :stale)",
          ExpressionAttributeNames: { "#status": "status", "#owner": "owner", "#error": "error" },
          ExpressionAttributeValues: { ":running": "running", ":owner": owner, ":stale": staleBefore },
        }),
      );
      return true;
    } catch (err) {
      if (isErrorNamed(err, "ConditionalCheckFailedException")) return false;
      throw err;
    }
  }

  /**
   * Updates a run this process owns (heartbeat, status, counts). Returns false when another process
   * has taken the run over: the caller must stop.
   */
  async updateSweep(
    run: Pick<SweepRun, "table" | "sweepId">,
    owner: SweepOwner,
    fields: Partial<Omit<SweepRun, "table" | "sweepId" | "startedAt">>,
  ): Promise<boolean> {
    const names: Record<string, string> = { "#owner": "owner" };
    const values: Record<string, unknown> = { ":host": owner.host, ":pid": owner.pid };
    const sets = Object.entries(fields).map(([k, v], i) => {
      names[`#f${i}`] = k;
      values[`:f${i}`] = v;
      return `#f${i} = :f${i}`;
    });
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: ledgerKeys.sweep(run.table, run.sweepId),
          UpdateExpression: `SET ${sets.join(", ")}`,
          ConditionExpression: "#owner.host = :host AND #owner.pid = :pid",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (err) {
      if (isErrorNamed(err, "ConditionalCheckFailedException")) return false;
      throw err;
    }
  }

  async saveCheckpoint(checkpoint: SweepCheckpoint): Promise<void> {
    await this.put(ledgerKeys.sweepSegment(checkpoint.table, checkpoint.sweepId, checkpoint.segment), checkpoint);
  }

  /** Every segment checkpoint of a run, by segment number. */
  async checkpoints(table: LogicalTable, sweepId: string): Promise<SweepCheckpoint[]> {
    return (await this.queryAll<SweepCheckpoint>(`TABLE#${table}`, `SWEEPSEG#${sweepId}#`)).sort(
      (x, y) => x.segment - y.segment,
    );
  }

  /** Sets or clears the operator's pause flag; running sweeps read it every few seconds. */
  async setPause(paused: boolean, by: string): Promise<PauseFlag> {
    const flag: PauseFlag = { paused, at: new Date().toISOString(), by };
    await this.put(ledgerKeys.pause(), flag);
    return flag;
  }

  async pauseFlag(): Promise<PauseFlag | undefined> {
    return this.get<PauseFlag>(ledgerKeys.pause());
  }

  async recordGate(result: GateResult): Promise<void> {
    await this.put(ledgerKeys.gate(result.table, result.at), result);
  }

  async latestGate(table: LogicalTable): Promise<GateResult | undefined> {
    return (await this.query<GateResult>(`TABLE#${table}`, "GATE#", { descending: true, limit: 1 }))[0];
  }

  // --- normalizer violations ---

  /**
   * Records a data problem the normalizer cannot fix (rule violations, or DynamoDB refusing the write),
   * one entry per item, replaced by the item's latest report. Keys and reasons only, never values.
   */
  async recordNormalizerViolation(entry: NormalizerViolation): Promise<void> {
    await this.put(normalizerViolationKey(entry.table, entry.key), entry);
  }

  async normalizerViolations(table: SiteLogixTable): Promise<NormalizerViolation[]> {
    return this.queryAll<NormalizerViolation>(`TABLE#${table}`, "VIOLATION#");
  }

  // --- stream runner checkpoints and on-failure sink ---

  /** The mapping of `subscriber` to `table`'s stream; created by its first start, kept afterwards. */
  async ensureStreamMapping(mapping: StreamMapping): Promise<StreamMapping> {
    const key = streamKeys.mapping(mapping.subscriber, mapping.table);
    const existing = await this.get<StreamMapping & { PK: string; SK: string }>(key);
    // A different stream ARN means the stream was disabled and re-enabled: its old checkpoints are moot.
    if (existing && existing.streamArn === mapping.streamArn) return stripKey(existing);
    await this.put(key, mapping);
    return mapping;
  }

  async shardCheckpoints(subscriber: string, table: LogicalTable): Promise<ShardCheckpoint[]> {
    return (await this.queryAll<ShardCheckpoint>(streamKeys.pk(subscriber, table), "SHARD#")).map(stripKey);
  }

  async saveShardCheckpoint(checkpoint: ShardCheckpoint): Promise<void> {
    await this.put(streamKeys.shard(checkpoint.subscriber, checkpoint.table, checkpoint.shardId), checkpoint);
  }

  /** Keyed by shard and first sequence number, so a batch sunk twice (crash in between) is one entry. */
  async recordStreamFailure(failure: StreamFailure): Promise<void> {
    await this.put(
      streamKeys.failure(failure.subscriber, failure.table, failure.shardId, failure.startSequenceNumber),
      failure,
    );
  }

  async streamFailures(subscriber: string, table: LogicalTable): Promise<StreamFailure[]> {
    // Numbers come back wrapped (the document client keeps them exact).
    return (await this.queryAll<StreamFailure>(streamKeys.pk(subscriber, table), "FAILURE#")).map((f) => ({
      ...stripKey(f),
      batchSize: Number(f.batchSize),
      attempts: Number(f.attempts),
    }));
  }

  private async queryAll<T>(pk: string, prefix: string): Promise<T[]> {
    const items: T[] = [];
    const pages = paginateQuery(
      { client: this.doc },
      {
        TableName: this.tableName,
        KeyConditionExpression: "PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues: { ":pk": pk, ":prefix": prefix },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) items.push(...((page.Items ?? []) as T[]));
    return items;
  }

  // --- backups ---
  async recordBackup(record: BackupRecord): Promise<void> {
    await this.put({ PK: `TABLE#${record.table}`, SK: `BACKUP#${record.createdAt}` }, record);
  }

  /** The newest backup that completed (AVAILABLE), if any. */
  async latestBackup(table: LogicalTable): Promise<BackupRecord | undefined> {
    const recent = await this.query<BackupRecord>(`TABLE#${table}`, "BACKUP#", { descending: true, limit: 20 });
    return recent.find((b) => b.status === "AVAILABLE");
  }

  // --- index gate ---
  /** Whether a deploy may build `table`'s target GSIs now; when not, every reason why. */
  async indexGate(table: LogicalTable): Promise<IndexGateDecision> {
    const [gate, sweep, state] = await Promise.all([
      this.latestGate(table),
      this.latestSweep(table),
      this.tableState(table),
    ]);
    return decideIndexGate(table, { gate, sweep, normalizerLiveAt: state.normalizerLiveAt });
  }
}

// --- index gate ---
export interface IndexGateDecision {
  table: LogicalTable;
  allowed: boolean;
  /** Why not, one sentence each, naming the command that fixes it; empty when allowed. */
  reasons: string[];
}

/**
 * A table's target GSIs may be built only when its latest verify is green and started after its
 * latest sweep finished and after the normalizer went live (on tables it subscribes to): then every
 * item written before the verify was checked, and every write since is normalized by the stream.
 */
export function decideIndexGate(
  table: LogicalTable,
  facts: { gate?: GateResult; sweep?: SweepRun; normalizerLiveAt?: string },
): IndexGateDecision {
  const { gate, sweep, normalizerLiveAt } = facts;
  const reasons: string[] = [];
  const time = (iso: string) => Date.parse(iso);
  const normalized = (tablesWithRules() as LogicalTable[]).includes(table);
  if (normalized && !normalizerLiveAt)
    reasons.push("the ledger has no record of the normalizer going live on this table (deploy the expand phase first)");
  if (!sweep) reasons.push(`no sweep has run (run \`sitelogix-migrate sweep --table ${table}\`)`);
  else if (sweep.status !== "finished" || !sweep.finishedAt)
    reasons.push(
      `the latest sweep ${sweep.sweepId} has not finished (${sweep.status}) (run \`sitelogix-migrate sweep --table ${table} --resume\`)`,
    );
  if (!gate) reasons.push(`no verify result is recorded (run \`sitelogix-migrate verify --table ${table}\`)`);
  else {
    if (!gate.green)
      reasons.push(`the latest verify (${gate.at}) is not green: ${gate.gaps} gaps, ${gate.violations} violations`);
    if (sweep?.finishedAt && time(gate.at) <= time(sweep.finishedAt))
      reasons.push(
        `the latest verify (${gate.at}) started before the latest sweep finished (${sweep.finishedAt}): run verify again`,
      );
    if (normalized && normalizerLiveAt && time(gate.at) <= time(normalizerLiveAt))
      reasons.push(
        `the latest verify (${gate.at}) started before the normalizer went live (${normalizerLiveAt}): run verify again`,
      );
  }
  return { table, allowed: reasons.length === 0, reasons };
}
