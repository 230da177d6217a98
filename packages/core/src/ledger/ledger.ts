// The ledger: reads and writes of the migration's state (records.ts, stream.ts) in its one table.
import {
  GetCommand,
  paginateQuery,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from "@aws-sdk/lib-dynamodb";
import { isErrorNamed } from "../errors.js";
import { decideIndexGate, type IndexGateDecision } from "../phases/index-gate.js";
import type { LogicalTable, SiteLogixTable } from "../schema.js";
import {
  type BackupRecord,
  type GateResult,
  ledgerKeys,
  type NormalizerViolation,
  normalizerViolationKey,
  type PauseFlag,
  type SweepCheckpoint,
  type SweepOwner,
  type SweepRun,
  type TableState,
} from "./records.js";
import { type ShardCheckpoint, type StreamFailure, type StreamMapping, streamKeys } from "./stream.js";

const stripKey = <T>(item: T & { PK?: string; SK?: string }): T => {
  const { PK: _pk, SK: _sk, ...rest } = item;
  return rest as T;
};

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
            "attribute_exists(PK) AND " +
            "(#status <> :running OR attribute_not_exists(#owner) OR #owner.heartbeatAt < :stale)",
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
