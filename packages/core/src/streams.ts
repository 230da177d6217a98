// Stream records as the handlers see them: Lambda's DynamoDB event format, checked and decoded once
// here for the normalizer and the audit logger alike, and the per-item ordering of a batch. This is
// what the Lambda functions bundle; the local event-source mapping that feeds them outside Lambda
// lives in local-esm/.
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { DynamoDBRecord } from "aws-lambda";
import { keyString, normalizeImage, type RawImage } from "./audit/values.js";
import type { Item } from "./rules.js";
import { ConcurrencyLimit } from "./throttler.js";

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
  throw new MalformedRecordError(
    `malformed stream record${eventId ? ` ${eventId}` : ""}: ${why}`,
    eventId,
    record.dynamodb?.SequenceNumber,
  );
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
  if (eventName !== "INSERT" && eventName !== "MODIFY" && eventName !== "REMOVE")
    return fail(`unknown eventName ${String(eventName)}`);
  if (!record.eventSourceARN) return fail("no eventSourceARN");
  const tableName = tableNameFromStreamArn(record.eventSourceARN);
  const created = record.dynamodb?.ApproximateCreationDateTime;
  if (typeof created !== "number" || !Number.isFinite(created)) return fail("no ApproximateCreationDateTime");
  return {
    tableName,
    eventName,
    eventId,
    sequenceNumber,
    approximateCreationTime: new Date(created * 1000).toISOString(),
  };
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
export function recordRef(record: DynamoDBRecord): {
  tableName?: string;
  keys: Record<string, string>;
  eventName?: string;
  eventId?: string;
  sequenceNumber?: string;
} {
  const keys: Record<string, string> = {};
  try {
    for (const [name, v] of Object.entries(normalizeImage((record.dynamodb?.Keys ?? {}) as RawImage)))
      keys[name] = keyString(v, name);
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
