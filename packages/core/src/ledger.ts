// Migration state, one table for all of it. Item keys:
//   TABLE#<logical> / STATE                    phase, when the normalizer went live
//   TABLE#<logical> / SWEEP#<id>               sweep runs (id starts with the start time: sorts by age)
//   TABLE#<logical> / SWEEPSEG#<id>#<nnnn>     per-segment checkpoints of a sweep run
//   TABLE#<logical> / GATE#<iso time>          verify results (the index gate)
//   TABLE#<logical> / VIOLATION#<keys>         data problems the normalizer could not fix
//   TABLE#<logical> / BACKUP#<iso time>        on-demand backups taken by `backup`
//   STREAM#<subscriber> / SHARD#<shard id>     local stream runner checkpoints
//   CONTROL / PAUSE                            operator's pause flag for running sweeps
import { GetCommand, PutCommand, QueryCommand, UpdateCommand, paginateQuery, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { LogicalTable } from "./schema.js";

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
  /** When it last stopped (signal or error) and, for `failed`, why (never item data). */
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
  sampleViolations: { key: Record<string, string>; violations: { attribute: string; problem: string; at: string; type: string }[] }[];
}

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
          ConditionExpression: "attribute_exists(PK) AND (#status <> :running OR attribute_not_exists(#owner) OR #owner.heartbeatAt < :stale)",
          ExpressionAttributeNames: { "#status": "status", "#owner": "owner", "#error": "error" },
          ExpressionAttributeValues: { ":running": "running", ":owner": owner, ":stale": staleBefore },
        }),
      );
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === "ConditionalCheckFailedException") return false;
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
      if ((err as { name?: string }).name === "ConditionalCheckFailedException") return false;
      throw err;
    }
  }

  async saveCheckpoint(checkpoint: SweepCheckpoint): Promise<void> {
    await this.put(ledgerKeys.sweepSegment(checkpoint.table, checkpoint.sweepId, checkpoint.segment), checkpoint);
  }

  /** Every segment checkpoint of a run, by segment number. */
  async checkpoints(table: LogicalTable, sweepId: string): Promise<SweepCheckpoint[]> {
    const all: SweepCheckpoint[] = [];
    for await (const page of paginateQuery(
      { client: this.doc },
      {
        TableName: this.tableName,
        KeyConditionExpression: "PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues: { ":pk": `TABLE#${table}`, ":prefix": `SWEEPSEG#${sweepId}#` },
        ConsistentRead: true,
      },
    )) {
      all.push(...((page.Items ?? []) as SweepCheckpoint[]));
    }
    return all.sort((a, b) => a.segment - b.segment);
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

  // --- backups ---
  async recordBackup(record: BackupRecord): Promise<void> {
    await this.put({ PK: `TABLE#${record.table}`, SK: `BACKUP#${record.createdAt}` }, record);
  }

  /** The newest backup that completed (AVAILABLE), if any. */
  async latestBackup(table: LogicalTable): Promise<BackupRecord | undefined> {
    const recent = await this.query<BackupRecord>(`TABLE#${table}`, "BACKUP#", { descending: true, limit: 20 });
    return recent.find((b) => b.status === "AVAILABLE");
  }
}
