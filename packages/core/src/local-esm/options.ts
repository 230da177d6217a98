// What the local event-source mapping is given and what it reports: options, events, counts,
// defaults, and how errors are described in its events and on-failure entries.
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import type { Clients } from "../clients.js";
import type { Ledger, StreamFailure, StreamMapping, StreamStartingPosition } from "../ledger/index.js";
import type { TableNames } from "../names.js";
import type { SiteLogixTable } from "../schema.js";
import type { Subscription } from "../subscriptions.js";
import { describeError } from "../errors.js";

export type SubscriberName = Subscription["name"];

export type LambdaStreamHandler = (
  event: DynamoDBStreamEvent,
  context: Context,
  // biome-ignore lint/suspicious/noConfusingVoidType: a Lambda handler may return nothing at all
) => Promise<DynamoDBBatchResponse | void | null | undefined>;

export type RunnerEvent =
  | { type: "mapping"; subscriber: SubscriberName; table: SiteLogixTable; mapping: StreamMapping; resumed: boolean }
  | { type: "shard"; subscriber: SubscriberName; table: SiteLogixTable; shardId: string; after?: string }
  | {
      type: "invocation";
      subscriber: SubscriberName;
      table: SiteLogixTable;
      shardId: string;
      records: number;
      result: InvocationResult["kind"];
      error?: string;
    }
  | { type: "sunk"; failure: StreamFailure }
  | { type: "shardFinished"; subscriber: SubscriberName; table: SiteLogixTable; shardId: string }
  /** A stream read or ledger write failed; it is retried with backoff. */
  | { type: "error"; subscriber: SubscriberName; table: SiteLogixTable; shardId?: string; error: string };

export interface SubscriberStats {
  invocations: number;
  /** Records handed to the handler, redeliveries included. */
  recordsDelivered: number;
  failedInvocations: number;
  recordsSunk: number;
}

export interface StreamRunnerOptions {
  clients: Pick<Clients, "dynamodb" | "streams">;
  names: TableNames;
  ledger: Ledger;
  /** Tables whose streams to read (default: all six SiteLogix tables). */
  tables?: readonly SiteLogixTable[];
  /** Which subscribers to run (default: all). */
  subscribers?: readonly SubscriberName[];
  /** The subscriptions and their settings (default: SUBSCRIPTIONS, as deployed). */
  subscriptions?: readonly Subscription[];
  /**
   * Handlers to invoke instead of the subscription's module (tests plug in failing ones). One is
   * invoked concurrently for different tables, as Lambda invokes once per shard: it must be reentrant.
   */
  handlers?: Partial<Record<SubscriberName, LambdaStreamHandler>>;
  /** Where a new mapping starts: the stream's trim horizon (default) or records written from now on. */
  from?: StreamStartingPosition;
  /** Pause between polls of a shard that returned nothing (Lambda polls 4 times a second). */
  pollIntervalMs?: number;
  /** The function timeout the handlers see through `context.getRemainingTimeInMillis()`. */
  functionTimeoutMs?: number;
  /** How often each mapping looks for new shards. */
  discoveryIntervalMs?: number;
  onEvent?: (event: RunnerEvent) => void;
}

export type InvocationResult =
  | { kind: "ok" }
  | { kind: "partial"; failedIndex: number; error: string }
  | { kind: "error"; error: string };

export const DEFAULT_POLL_INTERVAL_MS = 250;
export const DEFAULT_FUNCTION_TIMEOUT_MS = 60_000;
export const MAX_BACKOFF_MS = 5_000;
/** Records listed (keys only) in an on-failure entry. */
export const SUNK_RECORDS_LISTED = 100;

/** A failure as the on-failure destination records it: one line, bounded. */
export const failureText = (err: unknown) => describeError(err).slice(0, 1000);
