// Stream records as the handlers see them: Lambda's DynamoDB event format, decoded once here for
// the normalizer and the audit logger alike. (The local event-source-mapping runner, which turns
// DynamoDB Streams API records into this format, lives here too.)
import type { _Record as StreamsApiRecord } from "@aws-sdk/client-dynamodb-streams";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { DynamoDBRecord } from "aws-lambda";
import type { Item } from "./rules.js";

export type StreamEventName = "INSERT" | "MODIFY" | "REMOVE";

export interface DecodedRecord {
  /** Physical name of the table the record comes from (from its eventSourceARN). */
  tableName: string;
  eventName: StreamEventName;
  eventId: string;
  /** Stream order within a shard: 21-digit, zero-padded, comparable as strings. */
  sequenceNumber: string;
  /** ISO time of the write (to the second on AWS, to the minute on DynamoDB Local: never order by it). */
  approximateCreationTime: string;
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

/** `arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>` → `<name>`. */
export function tableNameFromStreamArn(arn: string): string {
  const match = /:table\/([^/]+)\/stream\//.exec(arn);
  if (!match?.[1]) throw new MalformedRecordError(`not a DynamoDB stream ARN: ${arn}`);
  return match[1];
}

// Images are unmarshalled with numbers wrapped so no value is ever rounded.
const image = (attrs: unknown) => (attrs ? (unmarshall(attrs as never, { wrapNumbers: true }) as Item) : undefined);

/** Normalizes `{ type, principalId }` (Lambda) and `{ Type, PrincipalId }` (Streams API) alike. */
function userIdentityOf(raw: unknown): DecodedRecord["userIdentity"] {
  if (!raw || typeof raw !== "object") return undefined;
  const r = raw as Record<string, unknown>;
  const type = r.type ?? r.Type;
  const principalId = r.principalId ?? r.PrincipalId;
  return typeof type === "string" && typeof principalId === "string" ? { type, principalId } : undefined;
}

export function decodeRecord(record: DynamoDBRecord): DecodedRecord {
  const eventId = record.eventID;
  const sequenceNumber = record.dynamodb?.SequenceNumber;
  const fail = (why: string): never => {
    throw new MalformedRecordError(`malformed stream record${eventId ? ` ${eventId}` : ""}: ${why}`, eventId, sequenceNumber);
  };
  if (!eventId) return fail("no eventID");
  if (!sequenceNumber) return fail("no SequenceNumber");
  if (record.eventName !== "INSERT" && record.eventName !== "MODIFY" && record.eventName !== "REMOVE") return fail(`unknown eventName ${String(record.eventName)}`);
  if (!record.eventSourceARN) return fail("no eventSourceARN");
  const keys = image(record.dynamodb?.Keys);
  if (!keys || Object.keys(keys).length === 0) return fail("no Keys");
  const created = record.dynamodb?.ApproximateCreationDateTime;
  if (typeof created !== "number") return fail("no ApproximateCreationDateTime");
  const userIdentity = userIdentityOf(record.userIdentity);
  const newImage = image(record.dynamodb?.NewImage);
  const oldImage = image(record.dynamodb?.OldImage);
  return {
    tableName: tableNameFromStreamArn(record.eventSourceARN),
    eventName: record.eventName,
    eventId,
    sequenceNumber,
    approximateCreationTime: new Date(created * 1000).toISOString(),
    keys: Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, String(v)])),
    ...(newImage ? { newImage } : {}),
    ...(oldImage ? { oldImage } : {}),
    ...(userIdentity ? { userIdentity } : {}),
    ...(record.dynamodb?.SizeBytes !== undefined ? { sizeBytes: record.dynamodb.SizeBytes } : {}),
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
