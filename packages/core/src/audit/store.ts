// How entries are laid out in the audit table.
//
// Items (PK / SK):
//   <table>#<keys as JSON> / E#<sequence number, 40 digits>        an entry (one per stream record)
//   <table>#<keys as JSON> / E#<sequence number>#C#<nnn>           a chunk of a large entry's payload
//   <table>#<keys as JSON> / H                                      the chain head (count, last hash)
// One Query on PK returns an item's history in stream order, each entry's chunks right after it,
// and the head last. Entries also carry the keys of GSI1 (actorShard, atSeq) and GSI2 (tableShard,
// atSeq); the hash keys are spread over AUDIT_INDEX_SHARDS values so that a sweep (one actor, one
// table, thousands of writes a second) never concentrates on one index partition.
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { AUDIT_FORMAT, type ChainHead } from "./chain.js";
import { entryFields, type AuditEntry, type EntryFieldName } from "./entry.js";
import { eventForm, normalizeImage, sizeOf, type AttributeMap, type RawImage } from "./values.js";

export const AUDIT_INDEX_SHARDS = 8;
export const AUDIT_INDEXES = { actor: "GSI1-ActorIndex", table: "GSI2-TableIndex" } as const;

// An entry stays inline below this estimate; larger ones are compressed and, if still too large,
// chunked. Well below DynamoDB's 400 KB so that the estimate's error never matters.
const INLINE_LIMIT = 300 * 1024;
const CHUNK_BYTES = 300 * 1024;
export const HEAD_SK = "H";
export const ENTRY_PREFIX = "E#";

/** The audit table and the client that reads it. */
export interface AuditTable {
  readonly dynamodb: DynamoDBClient;
  readonly tableName: string;
}

/** Where an entry's old/new values are stored; how they are read back never depends on it. */
export type EntryStorage = "inline" | "compressed" | "chunked";

export const padSequence = (seq: string) => seq.padStart(40, "0");
export const entrySk = (seq: string) => `${ENTRY_PREFIX}${padSequence(seq)}`;
const chunkSk = (seq: string, i: number) => `${entrySk(seq)}#C#${String(i).padStart(3, "0")}`;
export const isChunk = (sk: string) => sk.includes("#C#");
const shardOf = (entity: string) => createHash("sha256").update(entity).digest()[0]! % AUDIT_INDEX_SHARDS;

/** The fields stored in the values payload (the attribute maps), in the table's order. */
const payloadFields = (): EntryFieldName[] =>
  entryFields()
    .filter(([, field]) => field.stored === "payload")
    .map(([name]) => name);

export function parseHead(item: AttributeMap | undefined): ChainHead | undefined {
  if (!item) return undefined;
  const h = unmarshall(item);
  return {
    count: Number(h.count),
    lastHash: String(h.lastHash),
    lastSequenceNumber: String(h.lastSequenceNumber),
    ...(h.lastExpiresAt !== undefined ? { lastExpiresAt: Number(h.lastExpiresAt) } : {}),
  };
}

/** The head item of `entry`'s chain once `head` records it. */
export function headItem(entry: AuditEntry, head: ChainHead): AttributeMap {
  return marshall(
    { PK: entry.entity, SK: HEAD_SK, table: entry.table, keys: entry.keys, updatedAt: entry.recordedAt, ...head },
    { removeUndefinedValues: true },
  );
}

export interface StoredEntry {
  item: AttributeMap;
  chunks: AttributeMap[];
  storage: EntryStorage;
}

/**
 * The items that store an entry: every stored field of ENTRY_FIELDS, the index keys, and the values
 * inline, compressed or chunked.
 */
export function storedEntry(entry: AuditEntry): StoredEntry {
  const shard = shardOf(entry.entity);
  const attributes: Record<string, unknown> = {};
  for (const [name, field] of entryFields()) if (field.stored === "attribute") attributes[name] = entry[name];
  const item: AttributeMap = marshall(
    {
      PK: entry.entity,
      SK: entrySk(entry.sequenceNumber),
      format: AUDIT_FORMAT,
      ...attributes,
      actorShard: `${entry.actor}#${shard}`,
      tableShard: `${entry.table}#${shard}`,
      atSeq: `${entry.at}#${padSequence(entry.sequenceNumber)}`,
    },
    { removeUndefinedValues: true },
  );
  const valueMaps = payloadFields().flatMap((name) => {
    const map = entry[name] as AttributeMap | undefined;
    return map ? [[name, map] as const] : [];
  });
  const values: AttributeMap = Object.fromEntries(valueMaps.map(([name, map]) => [name, { M: map }]));
  if (sizeOf(item) + sizeOf(values) <= INLINE_LIMIT)
    return { item: { ...item, ...values }, chunks: [], storage: "inline" };

  const payload = gzipSync(JSON.stringify(Object.fromEntries(valueMaps.map(([name, map]) => [name, eventForm(map)]))));
  if (sizeOf(item) + payload.length <= INLINE_LIMIT)
    return { item: { ...item, payload: { B: payload } }, chunks: [], storage: "compressed" };
  const chunks: AttributeMap[] = [];
  for (let offset = 0, i = 0; offset < payload.length; offset += CHUNK_BYTES, i++) {
    chunks.push({
      PK: { S: entry.entity },
      SK: { S: chunkSk(entry.sequenceNumber, i) },
      data: { B: payload.subarray(offset, offset + CHUNK_BYTES) },
    });
  }
  return { item: { ...item, payloadChunks: { N: String(chunks.length) } }, chunks, storage: "chunked" };
}

/** An entry as stored, before its payload (if any) is read back. */
export interface EntryItem {
  item: AttributeMap;
  chunks: Uint8Array[];
}

/** Thrown when a stored entry cannot be decoded: for `verify`, a sign of tampering. */
export class UnreadableEntryError extends Error {}

/** The entry a stored item (and its chunks) holds, each field read as ENTRY_FIELDS declares. */
export function decodeEntry({ item, chunks }: EntryItem): AuditEntry {
  const { payload, payloadChunks, ...rest } = item;
  const inValues = payloadFields();
  const meta = Object.fromEntries(Object.entries(rest).filter(([name]) => !(inValues as string[]).includes(name)));
  const m = unmarshall(meta, { wrapNumbers: true }) as Record<string, unknown>;
  let values: Partial<Record<EntryFieldName, AttributeMap>> = Object.fromEntries(
    inValues.flatMap((name) => (item[name]?.M ? [[name, item[name].M]] : [])),
  );
  const compressed = payload?.B ?? (payloadChunks ? Buffer.concat(chunks) : undefined);
  if (payloadChunks && chunks.length !== Number(payloadChunks.N)) {
    throw new UnreadableEntryError(`payload has ${chunks.length} of ${payloadChunks.N} chunks`);
  }
  if (compressed) {
    try {
      const parsed = JSON.parse(gunzipSync(compressed).toString("utf8")) as Record<string, RawImage | undefined>;
      values = Object.fromEntries(
        inValues.flatMap((name) => (parsed[name] ? [[name, normalizeImage(parsed[name])]] : [])),
      );
    } catch {
      throw new UnreadableEntryError("payload cannot be decompressed");
    }
  }
  const read: Record<string, unknown> = { ...m, ...values };
  const entry: Record<string, unknown> = {};
  for (const [name, field] of entryFields()) {
    const value = field.decode(field.stored === "partitionKey" ? read.PK : read[name], read);
    if (value !== undefined) entry[name] = value;
  }
  return entry as unknown as AuditEntry;
}

/** Groups a stream of items of one or more partitions (in SK order) into entries with their chunks. */
export async function* entryItems(items: AsyncIterable<AttributeMap>): AsyncGenerator<EntryItem> {
  let pending: EntryItem | undefined;
  for await (const item of items) {
    const sk = item.SK?.S ?? "";
    if (isChunk(sk)) {
      if (pending && sk.startsWith(`${pending.item.SK?.S}#C#`) && item.data?.B) pending.chunks.push(item.data.B);
      continue;
    }
    if (pending) yield pending;
    pending = sk.startsWith(ENTRY_PREFIX) ? { item, chunks: [] } : undefined;
  }
  if (pending) yield pending;
}

export async function* pages(pager: AsyncIterable<{ Items?: AttributeMap[] }>): AsyncGenerator<AttributeMap> {
  for await (const page of pager) yield* page.Items ?? [];
}
