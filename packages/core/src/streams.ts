// Stream records as the handlers see them: Lambda's DynamoDB event format, checked and decoded once
// here for the normalizer and the audit logger alike, and the per-item ordering of a batch; and the
// local event-source-mapping runner, which reads the streams through the DynamoDB Streams API and
// invokes the handlers with Lambda's semantics.
import { randomBytes, randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamsApiRecord,
  type Shard,
} from "@aws-sdk/client-dynamodb-streams";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { keyString, normalizeImage, type RawImage } from "./audit/values.js";
import type { Clients } from "./clients.js";
import type { Ledger, ShardCheckpoint, StreamFailure, StreamFailureCondition, StreamMapping, StreamStartingPosition } from "./ledger.js";
import type { TableNames } from "./names.js";
import type { Item } from "./rules.js";
import { SITELOGIX_TABLES, type SiteLogixTable } from "./schema.js";
import { matchesFilter, SUBSCRIPTIONS, type Subscription } from "./subscriptions.js";
import { ConcurrencyLimit, sleep } from "./throttler.js";

export type StreamEventName = "INSERT" | "MODIFY" | "REMOVE";

/** What places a record, checked: its table, event, identity and position in the stream. */
export interface RecordEnvelope {
  /** Physical name of the table the record comes from (from its eventSourceARN). */
  tableName: string;
  eventName: StreamEventName;
  eventId: string;
  /**
   * Stream order within a shard: a decimal string whose length varies on AWS (21 digits on DynamoDB
   * Local), so compare with compareSequenceNumbers, never as strings.
   */
  sequenceNumber: string;
  /** ISO time of the write (to the second on AWS, to the minute on DynamoDB Local: never order by it). */
  approximateCreationTime: string;
}

export interface DecodedRecord extends RecordEnvelope {
  keys: Record<string, string>;
  newImage?: Item;
  oldImage?: Item;
  /** Set for service deletions (TTL expiry): `{ type: "Service", principalId: "dynamodb.amazonaws.com" }`. */
  userIdentity?: { type: string; principalId: string };
  sizeBytes?: number;
}

/** A record that cannot be decoded; carries what is known of it (never item images). */
export class MalformedRecordError extends Error {
  constructor(
    message: string,
    readonly eventId?: string,
    readonly sequenceNumber?: string,
  ) {
    super(message);
    this.name = "MalformedRecordError";
  }
}

/** Throws the MalformedRecordError of a record, saying why (never with its images). */
export function malformedRecord(record: DynamoDBRecord, why: string): never {
  const eventId = record.eventID;
  throw new MalformedRecordError(`malformed stream record${eventId ? ` ${eventId}` : ""}: ${why}`, eventId, record.dynamodb?.SequenceNumber);
}

/** Numeric order of two sequence numbers (decimal strings of varying length on AWS). */
export function compareSequenceNumbers(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Starts the work on a whole batch of stream records at once: records of different items run
 * concurrently (`concurrency` at a time), the records of one item one after another in the batch's
 * (stream) order, and once one fails its item's later records fail without running, so Lambda's
 * redelivery from the earliest failure never applies an item's changes out of order. Returns each
 * record's outcome, for a processor that collects them record by record (Powertools, sequentially):
 * the order comes from the batch, not from the order of those calls.
 */
export function inItemOrder<T>(
  records: readonly DynamoDBRecord[],
  itemOf: (record: DynamoDBRecord) => string | undefined,
  work: (record: DynamoDBRecord) => Promise<T>,
  concurrency: number,
): (record: DynamoDBRecord) => Promise<T> {
  const limit = new ConcurrencyLimit(concurrency);
  const outcomes = new Map<DynamoDBRecord, Promise<T>>();
  const lastOfItem = new Map<string, Promise<T>>();
  for (const record of records) {
    const item = itemOf(record);
    const before = item === undefined ? undefined : lastOfItem.get(item);
    const outcome = (async () => {
      await before?.catch(() => {
        throw new Error(`an earlier record of ${item} in this batch failed; this one is retried after it`);
      });
      return limit.run(() => work(record));
    })();
    outcome.catch(() => undefined); // awaited by the caller, record by record
    outcomes.set(record, outcome);
    if (item !== undefined) lastOfItem.set(item, outcome);
  }
  return (record) => outcomes.get(record) ?? limit.run(() => work(record));
}

/** `arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>` → `<name>`. */
export function tableNameFromStreamArn(arn: string): string {
  const match = /:table\/([^/]+)\/stream\//.exec(arn);
  if (!match?.[1]) throw new MalformedRecordError(`not a DynamoDB stream ARN: ${arn}`);
  return match[1];
}

// Images are unmarshalled with numbers wrapped so no value is ever rounded.
const image = (attrs: unknown) => (attrs ? (unmarshall(attrs as never, { wrapNumbers: true }) as Item) : undefined);

/** Normalizes `{ type, principalId }` (Lambda) and `{ Type, PrincipalId }` (Streams API) alike. */
export function userIdentityOf(raw: unknown): DecodedRecord["userIdentity"] {
  if (!raw || typeof raw !== "object") return undefined;
  const r = raw as Record<string, unknown>;
  const type = r.type ?? r.Type;
  const principalId = r.principalId ?? r.PrincipalId;
  return typeof type === "string" && typeof principalId === "string" ? { type, principalId } : undefined;
}

/** The checks every consumer of a record needs, and what they establish; throws MalformedRecordError. */
export function recordEnvelope(record: DynamoDBRecord): RecordEnvelope {
  const fail = (why: string) => malformedRecord(record, why);
  const eventId = record.eventID;
  const sequenceNumber = record.dynamodb?.SequenceNumber;
  if (!eventId) return fail("no eventID");
  if (!sequenceNumber) return fail("no SequenceNumber");
  const eventName = record.eventName;
  if (eventName !== "INSERT" && eventName !== "MODIFY" && eventName !== "REMOVE") return fail(`unknown eventName ${String(eventName)}`);
  if (!record.eventSourceARN) return fail("no eventSourceARN");
  const tableName = tableNameFromStreamArn(record.eventSourceARN);
  const created = record.dynamodb?.ApproximateCreationDateTime;
  if (typeof created !== "number" || !Number.isFinite(created)) return fail("no ApproximateCreationDateTime");
  return { tableName, eventName, eventId, sequenceNumber, approximateCreationTime: new Date(created * 1000).toISOString() };
}

/** A record with its keys and images unmarshalled (numbers wrapped): what the normalizer works on. */
export function decodeRecord(record: DynamoDBRecord): DecodedRecord {
  const envelope = recordEnvelope(record);
  const keys = image(record.dynamodb?.Keys);
  if (!keys || Object.keys(keys).length === 0) return malformedRecord(record, "no Keys");
  const userIdentity = userIdentityOf(record.userIdentity);
  const newImage = image(record.dynamodb?.NewImage);
  const oldImage = image(record.dynamodb?.OldImage);
  return {
    ...envelope,
    keys: Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, String(v)])),
    ...(newImage ? { newImage } : {}),
    ...(oldImage ? { oldImage } : {}),
    ...(userIdentity ? { userIdentity } : {}),
    ...(record.dynamodb?.SizeBytes !== undefined ? { sizeBytes: record.dynamodb.SizeBytes } : {}),
  };
}

/** The fields of a record that identify it in logs and failure reports: never its images. */
export function recordRef(record: DynamoDBRecord): { tableName?: string; keys: Record<string, string>; eventName?: string; eventId?: string; sequenceNumber?: string } {
  const keys: Record<string, string> = {};
  try {
    for (const [name, v] of Object.entries(normalizeImage((record.dynamodb?.Keys ?? {}) as RawImage))) keys[name] = keyString(v, name);
  } catch {
    // Keys that cannot be read are left out; the event id and sequence number still identify the record.
  }
  let tableName: string | undefined;
  try {
    tableName = record.eventSourceARN ? tableNameFromStreamArn(record.eventSourceARN) : undefined;
  } catch {
    tableName = undefined;
  }
  return {
    ...(tableName ? { tableName } : {}),
    keys,
    ...(record.eventName ? { eventName: record.eventName } : {}),
    ...(record.eventID ? { eventId: record.eventID } : {}),
    ...(record.dynamodb?.SequenceNumber ? { sequenceNumber: record.dynamodb.SequenceNumber } : {}),
  };
}

/**
 * A DynamoDB Streams API record (GetRecords) in the shape Lambda delivers it: epoch-second
 * ApproximateCreationDateTime, eventSourceARN added, userIdentity in Lambda's casing.
 */
export function toLambdaRecord(record: StreamsApiRecord, streamArn: string): DynamoDBRecord {
  const identity = userIdentityOf(record.userIdentity);
  const d = record.dynamodb;
  return {
    eventID: record.eventID,
    eventName: record.eventName as StreamEventName,
    eventVersion: record.eventVersion ?? "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: record.awsRegion,
    eventSourceARN: streamArn,
    dynamodb: {
      ...(d?.ApproximateCreationDateTime ? { ApproximateCreationDateTime: Math.floor(d.ApproximateCreationDateTime.getTime() / 1000) } : {}),
      Keys: d?.Keys as never,
      ...(d?.NewImage ? { NewImage: d.NewImage as never } : {}),
      ...(d?.OldImage ? { OldImage: d.OldImage as never } : {}),
      SequenceNumber: d?.SequenceNumber,
      SizeBytes: d?.SizeBytes,
      StreamViewType: d?.StreamViewType as never,
    },
    ...(identity ? { userIdentity: identity } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// The local event-source mapping (`sitelogix-migrate stream`, local mode, tests): one mapping per
// (subscription, table), as the stacks declare them, each with its own checkpoints in the ledger.
// Reproduced from Lambda's documented behaviour for DynamoDB streams: shards in order and parents
// before children; batches up to batchSize within a batching window; event-name filters; partial
// batch responses (checkpoint before the lowest failed record, retry from there); bisect on
// function error (not counted as a retry); maximumRetryAttempts and maximumRecordAgeInSeconds,
// after which the batch goes to the on-failure sink and the shard moves on.
// ---------------------------------------------------------------------------------------------

export type SubscriberName = Subscription["name"];

export type LambdaStreamHandler = (event: DynamoDBStreamEvent, context: Context) => Promise<DynamoDBBatchResponse | void | null | undefined>;

export type RunnerEvent =
  | { type: "mapping"; subscriber: SubscriberName; table: SiteLogixTable; mapping: StreamMapping; resumed: boolean }
  | { type: "shard"; subscriber: SubscriberName; table: SiteLogixTable; shardId: string; after?: string }
  | { type: "invocation"; subscriber: SubscriberName; table: SiteLogixTable; shardId: string; records: number; result: InvocationResult["kind"]; error?: string }
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

type InvocationResult = { kind: "ok" } | { kind: "partial"; failedIndex: number; error: string } | { kind: "error"; error: string };

interface Pending {
  record: DynamoDBRecord;
  seq: string;
  matches: boolean;
  fetchedAt: number;
}

const DEFAULT_POLL_INTERVAL_MS = 250;
const DEFAULT_FUNCTION_TIMEOUT_MS = 60_000;
const MAX_BACKOFF_MS = 5_000;
/** GetRecords refuses a higher Limit. */
const GET_RECORDS_LIMIT = 1000;
/** Records listed (keys only) in an on-failure entry. */
const SUNK_RECORDS_LISTED = 100;

const errorName = (err: unknown) => (err as { name?: string } | null)?.name;
const describeError = (err: unknown) => `${errorName(err) ?? "Error"}: ${(err as Error)?.message ?? String(err)}`.slice(0, 1000);

/**
 * Imports a handler as SST names it (`packages/functions/src/normalizer.handler`, relative to the
 * repository root); each `instance` gets a module instance of its own (module state included).
 */
export async function loadHandler(spec: string, instance = "default"): Promise<LambdaStreamHandler> {
  const dot = spec.lastIndexOf(".");
  const modulePath = spec.slice(0, dot);
  const exportName = spec.slice(dot + 1);
  // Resolved here, not at module load: this module is also bundled into the Lambda functions.
  const root = fileURLToPath(new URL("../../../", import.meta.url));
  const file = [".ts", ".js", ".mjs"].map((ext) => join(root, modulePath + ext)).find((f) => existsSync(f));
  if (!file) throw new Error(`handler module ${modulePath} not found under ${root}`);
  const handler = (await import(`${pathToFileURL(file).href}?instance=${encodeURIComponent(instance)}`))[exportName];
  if (typeof handler !== "function") throw new Error(`${file} exports no function ${exportName}`);
  return handler as LambdaStreamHandler;
}

/** A Lambda context as the runtime builds it; the deadline makes `getRemainingTimeInMillis` real. */
function lambdaContext(functionName: string, streamArn: string, timeoutMs: number): Context {
  const [, , , region = "local", account = "000000000000"] = streamArn.split(":");
  const deadline = Date.now() + timeoutMs;
  const noop = () => undefined;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${region}:${account}:function:${functionName}`,
    memoryLimitInMB: "1024",
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${new Date().toISOString().slice(0, 10).replaceAll("-", "/")}/[$LATEST]${randomBytes(16).toString("hex")}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: noop,
    fail: noop,
    succeed: noop,
  };
}

/**
 * The function of one mapping, like the execution environment that serves a shard: its invocations
 * are serialized, and mappings run concurrently (Lambda invokes once per shard at a time). Each
 * mapping imports its own instance of the handler module, because handler modules keep
 * per-invocation state at module level (Powertools), which Lambda never shares between concurrent
 * invocations and neither does the runner.
 */
class FunctionInvoker {
  private queue: Promise<unknown> = Promise.resolve();
  private handler?: LambdaStreamHandler;
  readonly stats: SubscriberStats = { invocations: 0, recordsDelivered: 0, failedInvocations: 0, recordsSunk: 0 };

  constructor(
    readonly subscription: Subscription,
    private readonly source: () => Promise<LambdaStreamHandler>,
    private readonly timeoutMs: number,
  ) {}

  /** Imports the handler module before anything is read: a wiring error must stop the runner, not sink records. */
  async load(): Promise<void> {
    this.handler ??= await this.source();
  }

  invoke(records: DynamoDBRecord[], streamArn: string): Promise<InvocationResult> {
    const run = this.queue.then(() => this.invokeNow(records, streamArn));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async invokeNow(records: DynamoDBRecord[], streamArn: string): Promise<InvocationResult> {
    this.stats.invocations++;
    this.stats.recordsDelivered += records.length;
    const result = await this.call(records, streamArn);
    if (result.kind !== "ok") this.stats.failedInvocations++;
    return result;
  }

  private async call(records: DynamoDBRecord[], streamArn: string): Promise<InvocationResult> {
    let response: Awaited<ReturnType<LambdaStreamHandler>>;
    try {
      const handler = this.handler!;
      const context = lambdaContext(`sitelogix-local-${this.subscription.name}`, streamArn, this.timeoutMs);
      const call = Promise.resolve().then(() => handler({ Records: records }, context));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Task timed out after ${(this.timeoutMs / 1000).toFixed(2)} seconds`)), this.timeoutMs);
      });
      try {
        response = await Promise.race([call, timeout]);
      } finally {
        clearTimeout(timer);
        // Lambda would end the environment; here the next invocation waits until this one is over.
        await call.catch(() => undefined);
      }
    } catch (err) {
      return { kind: "error", error: describeError(err) };
    }
    const failures = response?.batchItemFailures;
    if (!failures || failures.length === 0) return { kind: "ok" };
    // As Lambda: an empty, null or unknown itemIdentifier makes the whole batch a failure.
    const index = new Map(records.map((r, i) => [r.dynamodb?.SequenceNumber, i]));
    const failed = failures.map((f) => (typeof f?.itemIdentifier === "string" ? index.get(f.itemIdentifier) : undefined));
    if (failed.some((i) => i === undefined)) return { kind: "error", error: "invalid batchItemFailures: an itemIdentifier is not a sequence number of the batch" };
    const failedIndex = Math.min(...(failed as number[]));
    return { kind: "partial", failedIndex, error: `partial batch failure: ${failures.length} of ${records.length} records failed` };
  }
}

/** Keys of a Lambda-format record as strings (for reports; never images). */
function keysOf(record: DynamoDBRecord): Record<string, string> {
  const keys = image(record.dynamodb?.Keys) ?? {};
  return Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, String(v)]));
}

/** Reads one shard and delivers its records, checkpointing in the ledger as it goes. */
class ShardConsumer {
  private buffer: Pending[] = [];
  /** undefined: not yet positioned; null: the shard is closed and read to its end. */
  private iterator: string | null | undefined;
  private checkpoint: string | undefined;
  private nextPollAt = 0;
  private readErrors = 0;

  constructor(
    private readonly mapping: MappingRunner,
    private readonly shard: Shard,
    checkpoint: ShardCheckpoint | undefined,
  ) {
    this.checkpoint = checkpoint?.sequenceNumber;
  }

  private get shardId() {
    return this.shard.ShardId!;
  }

  private get settings() {
    return this.mapping.invoker.subscription;
  }

  async run(): Promise<boolean> {
    const m = this.mapping;
    m.emit({ type: "shard", subscriber: m.subscriber, table: m.table, shardId: this.shardId, ...(this.checkpoint ? { after: this.checkpoint } : {}) });
    while (!m.signal.aborted) {
      if (this.iterator === undefined) {
        await this.position();
        continue;
      }
      await this.skipHead();
      const matching = this.buffer.filter((p) => p.matches);
      const now = Date.now();
      // A batch goes when it is full, when the window since its first record is over, or at the shard's end.
      const windowEnds = matching.length > 0 ? matching[0]!.fetchedAt + this.settings.maximumBatchingWindowInSeconds * 1000 : Infinity;
      if (matching.length > 0 && (matching.length >= this.settings.batchSize || this.iterator === null || now >= windowEnds)) {
        await this.deliver(matching.slice(0, this.settings.batchSize));
        continue;
      }
      if (this.iterator !== null && now >= this.nextPollAt) {
        await this.poll();
        continue;
      }
      if (this.iterator === null && this.buffer.length === 0) {
        await this.save(true);
        m.emit({ type: "shardFinished", subscriber: m.subscriber, table: m.table, shardId: this.shardId });
        return true;
      }
      await sleep(Math.min(this.iterator === null ? Infinity : this.nextPollAt, windowEnds) - now, m.signal);
    }
    return false;
  }

  private async position(): Promise<void> {
    try {
      const out = await this.mapping.options.clients.streams.send(
        new GetShardIteratorCommand({
          StreamArn: this.mapping.streamArn,
          ShardId: this.shardId,
          ...(this.resumeAfter() ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: this.resumeAfter() } : { ShardIteratorType: "TRIM_HORIZON" }),
        }),
        { abortSignal: this.mapping.signal },
      );
      this.iterator = out.ShardIterator ?? null;
    } catch (err) {
      if (errorName(err) === "TrimmedDataAccessException") {
        // The checkpoint is older than the stream's retention: what lay between is gone. Say so, then go on.
        await this.sink([], "RecordsTrimmed", 0, `records after ${this.resumeAfter()} were trimmed from the stream before they were read`);
        this.buffer = [];
        this.checkpoint = undefined;
        return;
      }
      await this.readFailed(err);
    }
  }

  /** Where to continue reading: after the last record held (delivered or buffered). */
  private resumeAfter(): string | undefined {
    return this.buffer.at(-1)?.seq ?? this.checkpoint;
  }

  private async poll(): Promise<void> {
    const m = this.mapping;
    let out;
    try {
      out = await m.options.clients.streams.send(new GetRecordsCommand({ ShardIterator: this.iterator!, Limit: GET_RECORDS_LIMIT }), { abortSignal: m.signal });
    } catch (err) {
      if (errorName(err) === "ExpiredIteratorException") this.iterator = undefined;
      else if (errorName(err) === "TrimmedDataAccessException") this.iterator = undefined;
      else await this.readFailed(err);
      return;
    }
    this.readErrors = 0;
    const now = Date.now();
    const records = out.Records ?? [];
    for (const r of records) {
      const record = toLambdaRecord(r, m.streamArn);
      const created = (record.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000;
      this.buffer.push({ record, seq: record.dynamodb!.SequenceNumber!, matches: m.matches(record, created), fetchedAt: now });
    }
    this.iterator = out.NextShardIterator ?? null;
    // Lambda polls a shard 4 times a second; a full page means a backlog, so read on at once.
    this.nextPollAt = records.length >= GET_RECORDS_LIMIT ? now : now + m.pollIntervalMs;
  }

  private async readFailed(err: unknown): Promise<void> {
    if (this.mapping.signal.aborted) return;
    this.readErrors++;
    this.mapping.emit({ type: "error", subscriber: this.mapping.subscriber, table: this.mapping.table, shardId: this.shardId, error: describeError(err) });
    await sleep(Math.min(MAX_BACKOFF_MS, this.mapping.pollIntervalMs * 2 ** this.readErrors), this.mapping.signal);
  }

  /** Records at the head that the filter discards are done: the checkpoint moves past them. */
  private async skipHead(): Promise<void> {
    let last: string | undefined;
    while (this.buffer[0] && !this.buffer[0].matches) last = this.buffer.shift()!.seq;
    if (last) await this.commit(last);
  }

  private async deliver(batch: Pending[]): Promise<void> {
    const m = this.mapping;
    const s = this.settings;
    // Segments still to deliver, in order; bisecting replaces one by its two halves.
    const segments: { records: Pending[]; retries: number }[] = [{ records: batch, retries: 0 }];
    while (segments.length > 0 && !m.signal.aborted) {
      const segment = segments[0]!;
      const maxAgeMs = s.maximumRecordAgeInSeconds * 1000;
      const aged = maxAgeMs >= 0 ? segment.records.filter((p) => Date.now() - (p.record.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000 > maxAgeMs) : [];
      if (aged.length > 0) {
        // Records are in write order, so the aged ones lead the segment.
        await this.sink(aged, "RecordAgeExceeded", segment.retries, `older than maximumRecordAgeInSeconds (${s.maximumRecordAgeInSeconds})`);
        segment.records = segment.records.slice(aged.length);
        if (segment.records.length === 0) {
          segments.shift();
          continue;
        }
      }
      const result = await m.invoker.invoke(
        segment.records.map((p) => p.record),
        m.streamArn,
      );
      m.emit({ type: "invocation", subscriber: m.subscriber, table: m.table, shardId: this.shardId, records: segment.records.length, result: result.kind, ...(result.kind === "ok" ? {} : { error: result.error }) });
      if (result.kind === "ok") {
        segments.shift();
        await this.commit(segment.records.at(-1)!.seq);
        continue;
      }
      if (result.kind === "partial") {
        // Checkpoint before the lowest failed record; retry from it (later records come again).
        if (result.failedIndex > 0) await this.commit(segment.records[result.failedIndex - 1]!.seq);
        segment.records = segment.records.slice(result.failedIndex);
        segment.retries++;
      } else if (s.bisectBatchOnFunctionError && segment.records.length > 1) {
        const half = Math.ceil(segment.records.length / 2);
        segments.splice(0, 1, { records: segment.records.slice(0, half), retries: segment.retries }, { records: segment.records.slice(half), retries: segment.retries });
        continue;
      } else {
        segment.retries++;
      }
      if (s.maximumRetryAttempts >= 0 && segment.retries > s.maximumRetryAttempts) {
        await this.sink(segment.records, "RetryAttemptsExhausted", segment.retries, result.error);
        segments.shift();
        continue;
      }
      await sleep(Math.min(MAX_BACKOFF_MS, m.pollIntervalMs * 2 ** (segment.retries - 1)), m.signal);
    }
  }

  /** Sends records to the on-failure sink (the ledger), then moves the checkpoint past them; `attempts`: invocations made. */
  private async sink(records: Pending[], condition: StreamFailureCondition, attempts: number, error: string): Promise<void> {
    const m = this.mapping;
    const first = records[0]?.seq ?? this.checkpoint ?? "0";
    const last = records.at(-1)?.seq ?? first;
    const failure: StreamFailure = {
      subscriber: m.subscriber,
      table: m.table,
      streamArn: m.streamArn,
      shardId: this.shardId,
      condition,
      startSequenceNumber: first,
      endSequenceNumber: last,
      batchSize: records.length,
      attempts,
      error,
      records: records.slice(0, SUNK_RECORDS_LISTED).map((p) => ({ sequenceNumber: p.seq, eventId: p.record.eventID ?? "", eventName: p.record.eventName ?? "", keys: keysOf(p.record) })),
      at: new Date().toISOString(),
    };
    if (!(await m.persist(() => m.options.ledger.recordStreamFailure(failure)))) return;
    m.invoker.stats.recordsSunk += records.length;
    m.emit({ type: "sunk", failure });
    if (records.length > 0) await this.commit(last);
  }

  /** Everything up to `seq` is done: drop it from the buffer and record the checkpoint. */
  private async commit(seq: string): Promise<void> {
    while (this.buffer[0] && compareSequenceNumbers(this.buffer[0].seq, seq) <= 0) this.buffer.shift();
    this.checkpoint = seq;
    await this.save(false);
  }

  private async save(finished: boolean): Promise<void> {
    const m = this.mapping;
    const checkpoint: ShardCheckpoint = {
      subscriber: m.subscriber,
      table: m.table,
      streamArn: m.streamArn,
      shardId: this.shardId,
      ...(this.shard.ParentShardId ? { parentShardId: this.shard.ParentShardId } : {}),
      ...(this.checkpoint ? { sequenceNumber: this.checkpoint } : {}),
      finished,
      updatedAt: new Date().toISOString(),
    };
    await m.persist(() => m.options.ledger.saveShardCheckpoint(checkpoint));
  }
}

/** One subscription on one table's stream: discovers shards and runs a consumer per shard, parents first. */
class MappingRunner {
  streamArn = "";
  private mapping?: StreamMapping;
  private readonly finished = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  private wake?: () => void;

  constructor(
    readonly options: StreamRunnerOptions,
    readonly invoker: FunctionInvoker,
    readonly table: SiteLogixTable,
    readonly signal: AbortSignal,
  ) {}

  get subscriber(): SubscriberName {
    return this.invoker.subscription.name;
  }

  get pollIntervalMs(): number {
    return this.options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  }

  emit(event: RunnerEvent): void {
    this.options.onEvent?.(event);
  }

  /** The subscription's filter, and (for a mapping started at `latest`) nothing written before it started. */
  matches(record: DynamoDBRecord, createdMs: number): boolean {
    const filters = this.invoker.subscription.filters;
    if (filters && !filters.some((f) => matchesFilter(f, record))) return false;
    // Creation times are truncated (to the minute locally): keep everything that may be after the start.
    return this.mapping?.from !== "latest" || createdMs >= Date.parse(this.mapping.startedAt) - 60_000;
  }

  /** Runs a ledger write until it succeeds (a lost checkpoint would only mean redelivery, but a lost sink entry a lost batch). */
  async persist(write: () => Promise<void>): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await write();
        return true;
      } catch (err) {
        if (this.signal.aborted) return false;
        this.emit({ type: "error", subscriber: this.subscriber, table: this.table, error: `ledger write failed: ${describeError(err)}` });
        await sleep(Math.min(MAX_BACKOFF_MS, this.pollIntervalMs * 2 ** attempt), this.signal);
      }
    }
  }

  async run(): Promise<void> {
    const { clients, ledger, names } = this.options;
    const description = (await clients.dynamodb.send(new DescribeTableCommand({ TableName: names[this.table] }))).Table;
    if (!description?.LatestStreamArn || !description.StreamSpecification?.StreamEnabled) {
      throw new Error(`table ${names[this.table]} has no stream enabled`);
    }
    this.streamArn = description.LatestStreamArn;
    const requested: StreamMapping = {
      subscriber: this.subscriber,
      table: this.table,
      streamArn: this.streamArn,
      from: this.options.from ?? "trim-horizon",
      startedAt: new Date().toISOString(),
    };
    this.mapping = await ledger.ensureStreamMapping(requested);
    const checkpoints = new Map((await ledger.shardCheckpoints(this.subscriber, this.table)).filter((c) => c.streamArn === this.streamArn).map((c) => [c.shardId, c]));
    this.emit({ type: "mapping", subscriber: this.subscriber, table: this.table, mapping: this.mapping, resumed: this.mapping.startedAt !== requested.startedAt });
    // Every write from the mapping's start on reaches the normalizer (at least once): the gate may count on it.
    if (this.subscriber === "normalizer") await ledger.markNormalizerLive(this.table, this.mapping.startedAt);
    for (const c of checkpoints.values()) if (c.finished) this.finished.add(c.shardId);

    while (!this.signal.aborted) {
      const shards = await this.describeShards();
      if (shards) {
        const listed = new Set(shards.map((s) => s.ShardId));
        for (const shard of shards) {
          const id = shard.ShardId!;
          if (this.finished.has(id) || this.running.has(id)) continue;
          // A child waits until its parent is read to the end (unless the parent has aged out of the stream).
          const parent = shard.ParentShardId;
          if (parent && listed.has(parent) && !this.finished.has(parent)) continue;
          const consumer = new ShardConsumer(this, shard, checkpoints.get(id));
          this.running.set(
            id,
            consumer.run().then((done) => {
              this.running.delete(id);
              if (done) this.finished.add(id);
              this.wake?.();
            }),
          );
        }
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        void sleep(this.options.discoveryIntervalMs ?? 10_000, this.signal).then(resolve);
      });
    }
    await Promise.all(this.running.values());
  }

  /** Every shard of the stream (DescribeStream pages through them with ExclusiveStartShardId). */
  private async describeShards(): Promise<Shard[] | undefined> {
    const shards: Shard[] = [];
    try {
      let start: string | undefined;
      do {
        const out = await this.options.clients.streams.send(
          new DescribeStreamCommand({ StreamArn: this.streamArn, ...(start ? { ExclusiveStartShardId: start } : {}) }),
          { abortSignal: this.signal },
        );
        shards.push(...(out.StreamDescription?.Shards ?? []));
        start = out.StreamDescription?.LastEvaluatedShardId;
      } while (start);
      return shards;
    } catch (err) {
      if (!this.signal.aborted) this.emit({ type: "error", subscriber: this.subscriber, table: this.table, error: describeError(err) });
      return undefined;
    }
  }
}

/**
 * The local event-source mapping. `run()` reads until `stop()` (or the signal), lets the invocations in
 * flight finish and their checkpoints land, and resolves with per-subscriber counts.
 */
export class StreamRunner {
  private readonly controller = new AbortController();
  private readonly invokers: FunctionInvoker[] = [];
  private readonly mappings: MappingRunner[] = [];

  constructor(options: StreamRunnerOptions) {
    // Every mapping's poll and invocation listens to it.
    setMaxListeners(0, this.controller.signal);
    const wanted = options.subscribers;
    const tables = options.tables ?? SITELOGIX_TABLES;
    for (const subscription of (options.subscriptions ?? SUBSCRIPTIONS).filter((s) => !wanted || wanted.includes(s.name))) {
      for (const table of tables.filter((t) => subscription.tables.includes(t))) {
        const injected = options.handlers?.[subscription.name];
        const invoker = new FunctionInvoker(
          subscription,
          injected ? async () => injected : () => loadHandler(subscription.handler, table),
          options.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS,
        );
        this.invokers.push(invoker);
        this.mappings.push(new MappingRunner(options, invoker, table, this.controller.signal));
      }
    }
  }

  /** Counts per subscriber, over all its mappings. */
  get stats(): Partial<Record<SubscriberName, SubscriberStats>> {
    const stats: Partial<Record<SubscriberName, SubscriberStats>> = {};
    for (const { subscription, stats: s } of this.invokers) {
      const total = (stats[subscription.name] ??= { invocations: 0, recordsDelivered: 0, failedInvocations: 0, recordsSunk: 0 });
      for (const k of Object.keys(total) as (keyof SubscriberStats)[]) total[k] += s[k];
    }
    return stats;
  }

  stop(): void {
    this.controller.abort();
  }

  async run(): Promise<Partial<Record<SubscriberName, SubscriberStats>>> {
    await Promise.all(this.invokers.map((i) => i.load()));
    const mappings = this.mappings;
    const results = await Promise.allSettled(
      mappings.map((m) =>
        m.run().catch((err: unknown) => {
          // A mapping that cannot start (no stream, no table) stops the others: the operator must see it.
          this.stop();
          throw err;
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return this.stats;
  }
}

/**
 * Every record currently in a table's stream (all shards, parents first) in Lambda's format: the
 * rehearsal's completeness check and the tests read it. Two empty reads 100 ms apart mean caught up
 * (a write shows in GetRecords within milliseconds).
 */
export async function readStream(clients: Pick<Clients, "dynamodb" | "streams">, tableName: string): Promise<DynamoDBRecord[]> {
  const streamArn = (await clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }))).Table?.LatestStreamArn;
  if (!streamArn) throw new Error(`${tableName} has no stream`);
  const shards = (await clients.streams.send(new DescribeStreamCommand({ StreamArn: streamArn }))).StreamDescription?.Shards ?? [];
  const records: DynamoDBRecord[] = [];
  for (const shard of shards) {
    let iterator = (await clients.streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
    for (let empty = 0; iterator && empty < 2; ) {
      const out = await clients.streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: GET_RECORDS_LIMIT }));
      const page = out.Records ?? [];
      records.push(...page.map((r) => toLambdaRecord(r, streamArn)));
      iterator = out.NextShardIterator;
      if (page.length === 0) {
        empty++;
        await new Promise((r) => setTimeout(r, 100));
      } else empty = 0;
    }
  }
  return records;
}

