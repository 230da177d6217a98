// The local stream runner's records in the ledger: a mapping's stream and starting position, its
// checkpoint per shard and its on-failure sink (batch info and keys, never images).
import type { LogicalTable } from "../schema.js";

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
