// The audit trail: one immutable, hash-chained entry per stream record of the SiteLogix tables,
// queryable by item, actor and table, verifiable end to end. The audit-logger Lambda and the
// `audit` CLI are thin adapters over this module.
//
// Audit table items (PK / SK):
//   <table>#<keys as JSON> / E#<sequence number, 40 digits>        an entry (one per stream record)
//   <table>#<keys as JSON> / E#<sequence number>#C#<nnn>           a chunk of a large entry's payload
//   <table>#<keys as JSON> / H                                      the chain head (count, last hash)
// One Query on PK returns an item's history in stream order, each entry's chunks right after it,
// and the head last. Entries also carry the keys of GSI1 (actorShard, atSeq) and GSI2 (tableShard,
// atSeq); the hash keys are spread over AUDIT_INDEX_SHARDS values so that a sweep (one actor, one
// table, thousands of writes a second) never concentrates on one index partition.
//
// Tamper evidence: each entry's hash is SHA-256 over a canonical encoding of its content plus the
// previous entry's hash. The head is written in the same transaction as the entry, conditioned on
// the count it was read with, so it always names the newest entry: editing, deleting (newest
// included) or inserting an entry breaks either a link or the head.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  GetItemCommand,
  paginateQuery,
  paginateScan,
  TransactWriteItemsCommand,
  type AttributeValue,
  type CancellationReason,
  type DynamoDBClient,
  type QueryCommandInput,
} from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type { DynamoDBRecord } from "aws-lambda";
import { MIGRATOR_ACTORS, MIGRATOR_MARKER } from "./applier.js";
import { exactNumber } from "./clients.js";
import { logicalFromPhysical, type TableNames } from "./names.js";
import { targetAttributes } from "./rules.js";
import { isSiteLogixTable, TABLES } from "./schema.js";
import { inItemOrder, MalformedRecordError, tableNameFromStreamArn, type StreamEventName } from "./streams.js";
import { sleep } from "./throttler.js";

export type AttributeMap = Record<string, AttributeValue>;

/** Version of the canonical encoding; part of every hash, so a future change cannot be confused with tampering. */
export const AUDIT_FORMAT = 1;
/** The `prevHash` of an item's first entry. */
export const GENESIS_HASH = "0".repeat(64);
export const AUDIT_INDEX_SHARDS = 8;
export const AUDIT_INDEXES = { actor: "GSI1-ActorIndex", table: "GSI2-TableIndex" } as const;
/** The principal DynamoDB names in the userIdentity of a TTL deletion. */
export const TTL_PRINCIPAL = "dynamodb.amazonaws.com";

// An entry stays inline below this estimate; larger ones are compressed and, if still too large,
// chunked. Well below DynamoDB's 400 KB so that the estimate's error never matters.
const INLINE_LIMIT = 300 * 1024;
const CHUNK_BYTES = 300 * 1024;
const HEAD_SK = "H";
const ENTRY_PREFIX = "E#";
const HEAD_CACHE_SIZE = 10_000;
const APPEND_ATTEMPTS = 8;
/** Items of one batch appended at the same time (each item's records still one after another). */
export const AUDIT_BATCH_CONCURRENCY = 16;

// --- canonical values -------------------------------------------------------------------------

/** An attribute value in Lambda's event form (binary as base64) or the SDK's (binary as bytes). */
type RawImage = Record<string, unknown>;

const NUMBER = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

class MalformedImage extends Error {}

function bytes(value: unknown, path: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string" && BASE64.test(value)) return new Uint8Array(Buffer.from(value, "base64"));
  throw new MalformedImage(`${path}: binary value is neither bytes nor base64`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** Validates one attribute value and brings it to the SDK's form (binary as bytes). */
function normalizeValue(raw: unknown, path: string): AttributeValue {
  if (!isObject(raw)) throw new MalformedImage(`${path}: not an attribute value`);
  const present = Object.entries(raw).filter(([, v]) => v !== undefined);
  if (present.length !== 1) throw new MalformedImage(`${path}: an attribute value has exactly one type`);
  const [type, v] = present[0]!;
  const strings = (x: unknown): x is string[] => Array.isArray(x) && x.length > 0 && x.every((s) => typeof s === "string");
  switch (type) {
    case "S":
      if (typeof v === "string") return { S: v };
      break;
    case "N":
      if (typeof v === "string" && isNumber(v)) return { N: v };
      break;
    case "B":
      return { B: bytes(v, path) };
    case "SS":
      if (strings(v)) return { SS: [...v] };
      break;
    case "NS":
      if (strings(v) && v.every(isNumber)) return { NS: [...v] };
      break;
    case "BS":
      if (Array.isArray(v) && v.length > 0) return { BS: v.map((b) => bytes(b, path)) };
      break;
    case "M":
      if (isObject(v)) return { M: normalizeImage(v, `${path}.`) };
      break;
    case "L":
      if (Array.isArray(v)) return { L: v.map((x, i) => normalizeValue(x, `${path}[${i}]`)) };
      break;
    case "NULL":
      if (v === true) return { NULL: true };
      break;
    case "BOOL":
      if (typeof v === "boolean") return { BOOL: v };
      break;
  }
  throw new MalformedImage(`${path}: invalid ${type} value`);
}

/** A stream image (Lambda or Streams API form) as an SDK attribute map; throws naming the bad attribute, never its value. */
export function normalizeImage(raw: RawImage, prefix = ""): AttributeMap {
  return Object.fromEntries(Object.entries(raw).map(([name, v]) => [name, normalizeValue(v, `${prefix}${name}`)]));
}

function isNumber(s: string): boolean {
  const m = NUMBER.exec(s);
  return m !== null && `${m[2] ?? ""}${m[3] ?? ""}`.length > 0;
}

/** A decimal as digits and exponent, so that equal numbers encode equally ("1.50", "15E-1" → "15e-1"). */
export function canonicalNumber(s: string): string {
  const m = NUMBER.exec(s);
  if (!m || !isNumber(s)) throw new MalformedImage(`not a number: ${s.length} characters`);
  const fraction = m[3] ?? "";
  let digits = `${m[2] ?? ""}${fraction}`.replace(/^0+/, "");
  if (digits === "") return "0";
  let exponent = BigInt(m[4] ?? "0") - BigInt(fraction.length);
  const trimmed = digits.replace(/0+$/, "");
  exponent += BigInt(digits.length - trimmed.length);
  digits = trimmed;
  return `${m[1] === "-" ? "-" : ""}${digits}e${exponent}`;
}

const base64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

/** Typed, order-independent form of a value: sets sorted, numbers canonical, binary as base64. */
function canonicalValue(av: AttributeValue): unknown {
  if (av.S !== undefined) return { S: av.S };
  if (av.N !== undefined) return { N: canonicalNumber(av.N) };
  if (av.B !== undefined) return { B: base64(av.B) };
  if (av.SS !== undefined) return { SS: [...av.SS].sort() };
  if (av.NS !== undefined) return { NS: av.NS.map(canonicalNumber).sort() };
  if (av.BS !== undefined) return { BS: av.BS.map(base64).sort() };
  if (av.M !== undefined) return { M: canonicalMap(av.M) };
  if (av.L !== undefined) return { L: av.L.map(canonicalValue) };
  if (av.NULL !== undefined) return { NULL: true };
  if (av.BOOL !== undefined) return { BOOL: av.BOOL };
  throw new MalformedImage("attribute value of unknown type");
}

function canonicalMap(map: AttributeMap): Record<string, unknown> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, canonicalValue(v)]));
}

/** JSON with object keys sorted at every level: one byte string per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

const sameValue = (a: AttributeValue | undefined, b: AttributeValue | undefined) =>
  (a === undefined) === (b === undefined) && (a === undefined || canonicalJson(canonicalValue(a)) === canonicalJson(canonicalValue(b!)));

/** Lambda's event form of a map (binary as base64): how large payloads are serialized. */
function eventForm(map: AttributeMap): unknown {
  const value = (av: AttributeValue): unknown =>
    av.B !== undefined ? { B: base64(av.B) } : av.BS !== undefined ? { BS: av.BS.map(base64) } : av.M !== undefined ? { M: eventForm(av.M) } : av.L !== undefined ? { L: av.L.map(value) } : av;
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, value(v)]));
}

/** Approximate stored size of attribute values, rounded up (DynamoDB's rules: names + values + 3 bytes per container element). */
function sizeOf(map: AttributeMap): number {
  const utf8 = (s: string) => Buffer.byteLength(s);
  const value = (av: AttributeValue): number => {
    if (av.S !== undefined) return utf8(av.S);
    if (av.N !== undefined) return av.N.length + 1;
    if (av.B !== undefined) return av.B.length;
    if (av.SS !== undefined) return av.SS.reduce((n, s) => n + utf8(s), 0);
    if (av.NS !== undefined) return av.NS.reduce((n, s) => n + s.length + 1, 0);
    if (av.BS !== undefined) return av.BS.reduce((n, b) => n + b.length, 0);
    if (av.M !== undefined) return 3 + sizeOf(av.M) + Object.keys(av.M).length;
    if (av.L !== undefined) return 3 + av.L.reduce((n, v) => n + value(v) + 1, 0);
    return 1;
  };
  return Object.entries(map).reduce((n, [k, v]) => n + utf8(k) + value(v), 0);
}

// --- entries ----------------------------------------------------------------------------------

/** How the actor of an entry was established. */
export type ActorBasis =
  | "new:lastModifiedBy"
  | "new:updatedBy"
  | "old:lastModifiedBy"
  | "old:updatedBy"
  | "migrator"
  | "service"
  | "none";

export const UNKNOWN_ACTOR = "unknown";

/** An entry before it is placed in its chain. */
export interface EntryContent {
  entity: string;
  /** Logical table name (physical when the table is not one of the SiteLogix tables). */
  table: string;
  tableName: string;
  keys: Record<string, string>;
  eventName: StreamEventName;
  eventId: string;
  sequenceNumber: string;
  /** ISO time of the change (the record's ApproximateCreationDateTime). */
  at: string;
  actor: string;
  actorBasis: ActorBasis;
  /** Names of the attributes the change added, removed or modified (all of them for INSERT and REMOVE). */
  changed: string[];
  /** Values before the change of the changed attributes (the whole image for REMOVE). */
  old?: AttributeMap;
  /** Values after the change of the changed attributes (the whole image for INSERT). */
  new?: AttributeMap;
}

export interface AuditEntry extends EntryContent {
  /** 1-based position in the item's chain. */
  position: number;
  prevHash: string;
  hash: string;
  /** ISO time the audit logger recorded the entry. */
  recordedAt: string;
  /** Epoch seconds after which DynamoDB's TTL may delete the entry; absent = kept forever. */
  expiresAt?: number;
  /** The previous entry's expiresAt: lets `verify` tell entries that expired from entries that were deleted. */
  prevExpiresAt?: number;
}

/** Where an entry's old/new values are stored; how they are read back never depends on it. */
export type EntryStorage = "inline" | "compressed" | "chunked";

const padSequence = (seq: string) => seq.padStart(40, "0");
const entrySk = (seq: string) => `${ENTRY_PREFIX}${padSequence(seq)}`;
const chunkSk = (seq: string, i: number) => `${entrySk(seq)}#C#${String(i).padStart(3, "0")}`;

/** The audit table's partition key for an item: its table and its keys (hashed only when too long for a key). */
export function entityId(table: string, keys: Record<string, string>): string {
  const id = `${table}#${canonicalJson(keys)}`;
  return Buffer.byteLength(id) <= 2000 ? id : `${table}#sha256:${createHash("sha256").update(id).digest("hex")}`;
}

const shardOf = (entity: string) => createHash("sha256").update(entity).digest()[0]! % AUDIT_INDEX_SHARDS;

/** Keys in the table's key-schema order (partition key first), so that they read the same everywhere. */
function orderKeys(table: string, keys: Record<string, string>): Record<string, string> {
  const schema = isSiteLogixTable(table) ? [TABLES[table].hashKey, TABLES[table].rangeKey] : [];
  const rank = (name: string) => {
    const i = schema.indexOf(name);
    return i < 0 ? schema.length : i;
  };
  return Object.fromEntries(Object.entries(keys).sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)));
}

function keyString(av: AttributeValue, name: string): string {
  if (av.S !== undefined) return av.S;
  if (av.N !== undefined) return av.N;
  if (av.B !== undefined) return base64(av.B);
  throw new MalformedImage(`key ${name} is not a scalar`);
}

function stringAttr(image: AttributeMap | undefined, name: string): string | undefined {
  const v = image?.[name]?.S;
  return v !== undefined && v !== "" ? v : undefined;
}

const revision = (image: AttributeMap): bigint | undefined => {
  const av = image[MIGRATOR_MARKER.rev];
  if (av === undefined) return 0n;
  if (av.N === undefined || !/^\d+$/.test(av.N)) return undefined;
  return BigInt(av.N);
};

/**
 * The migrator's actor name when a MODIFY is one of its writes, else undefined. A migrator write is
 * one conditional UpdateItem that sets only target attributes and the marker and adds exactly 1 to
 * `_migrationRev`: so the record's revision goes up by exactly one, every changed attribute is a
 * target or the marker, and `_migratedBy` names a migrator writer. Application writes never raise
 * the revision (an update does not touch it, a full put drops it or carries a value read earlier).
 */
export function migratorActor(table: string, oldImage: AttributeMap, newImage: AttributeMap, changed: readonly string[]): string | undefined {
  const before = revision(oldImage);
  const after = revision(newImage);
  if (before === undefined || after === undefined || after !== before + 1n) return undefined;
  const by = stringAttr(newImage, MIGRATOR_MARKER.by);
  if (!by || !(Object.values(MIGRATOR_ACTORS) as string[]).includes(by)) return undefined;
  const allowed = new Set([...(isSiteLogixTable(table) ? targetAttributes(table) : []), ...Object.values(MIGRATOR_MARKER)]);
  return changed.every((name) => allowed.has(name)) ? by : undefined;
}

function applicationActor(image: AttributeMap | undefined, side: "new" | "old"): { actor: string; actorBasis: ActorBasis } {
  for (const attribute of ["lastModifiedBy", "updatedBy"] as const) {
    const actor = stringAttr(image, attribute);
    if (actor) return { actor, actorBasis: `${side}:${attribute}` };
  }
  return { actor: UNKNOWN_ACTOR, actorBasis: "none" };
}

/** Names whose values differ between two images (added, removed or changed), sorted. */
export function changedAttributes(oldImage: AttributeMap, newImage: AttributeMap): string[] {
  const names = new Set([...Object.keys(oldImage), ...Object.keys(newImage)]);
  return [...names].filter((n) => !sameValue(oldImage[n], newImage[n])).sort();
}

const pick = (image: AttributeMap, names: readonly string[]) =>
  Object.fromEntries(names.filter((n) => image[n] !== undefined).map((n) => [n, image[n]!]));

/** The item a record is about, as far as it can be read (also from a record that is otherwise malformed). */
function recordEntity(record: DynamoDBRecord, names: TableNames): string | undefined {
  const { tableName, keys } = recordRef(record);
  return tableName && Object.keys(keys).length > 0 ? entityId(logicalFromPhysical(names, tableName) ?? tableName, keys) : undefined;
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
 * The entry content of a stream record. Throws MalformedRecordError (naming attributes, never
 * values) for a record that cannot be audited faithfully: it must fail, be retried and end on the
 * on-failure destination rather than produce a wrong entry.
 */
export function entryContent(record: DynamoDBRecord, names: TableNames): EntryContent {
  const eventId = record.eventID;
  const sequenceNumber = record.dynamodb?.SequenceNumber;
  const fail = (why: string): never => {
    throw new MalformedRecordError(`malformed stream record${eventId ? ` ${eventId}` : ""}: ${why}`, eventId, sequenceNumber);
  };
  if (!eventId) return fail("no eventID");
  if (!sequenceNumber || !/^\d{1,40}$/.test(sequenceNumber)) return fail("no valid SequenceNumber");
  const eventName = record.eventName;
  if (eventName !== "INSERT" && eventName !== "MODIFY" && eventName !== "REMOVE") return fail(`unknown eventName ${String(eventName)}`);
  if (!record.eventSourceARN) return fail("no eventSourceARN");
  const tableName = tableNameFromStreamArn(record.eventSourceARN);
  const table = logicalFromPhysical(names, tableName) ?? tableName;
  const created = record.dynamodb?.ApproximateCreationDateTime;
  if (typeof created !== "number" || !Number.isFinite(created)) return fail("no ApproximateCreationDateTime");
  try {
    const rawKeys = record.dynamodb?.Keys as RawImage | undefined;
    if (!rawKeys || Object.keys(rawKeys).length === 0) return fail("no Keys");
    const keys = orderKeys(table, Object.fromEntries(Object.entries(normalizeImage(rawKeys)).map(([name, v]) => [name, keyString(v, name)])));
    const newImage = record.dynamodb?.NewImage ? normalizeImage(record.dynamodb.NewImage as RawImage) : undefined;
    const oldImage = record.dynamodb?.OldImage ? normalizeImage(record.dynamodb.OldImage as RawImage) : undefined;
    const base = { entity: entityId(table, keys), table, tableName, keys, eventName, eventId, sequenceNumber, at: new Date(created * 1000).toISOString() };

    if (eventName === "INSERT") {
      if (!newImage) return fail("INSERT without NewImage (the stream must be NEW_AND_OLD_IMAGES)");
      return { ...base, ...applicationActor(newImage, "new"), changed: Object.keys(newImage).sort(), new: newImage };
    }
    if (eventName === "REMOVE") {
      if (!oldImage) return fail("REMOVE without OldImage (the stream must be NEW_AND_OLD_IMAGES)");
      const identity = (record.userIdentity ?? {}) as Record<string, unknown>;
      const service = (identity.type ?? identity.Type) === "Service" ? (identity.principalId ?? identity.PrincipalId) : undefined;
      const who = typeof service === "string" && service ? { actor: service, actorBasis: "service" as const } : applicationActor(oldImage, "old");
      return { ...base, ...who, changed: Object.keys(oldImage).sort(), old: oldImage };
    }
    if (!oldImage || !newImage) return fail("MODIFY without both images (the stream must be NEW_AND_OLD_IMAGES)");
    const changed = changedAttributes(oldImage, newImage);
    const migrator = migratorActor(table, oldImage, newImage, changed);
    return {
      ...base,
      ...(migrator ? { actor: migrator, actorBasis: "migrator" as const } : applicationActor(newImage, "new")),
      changed,
      old: pick(oldImage, changed),
      new: pick(newImage, changed),
    };
  } catch (err) {
    if (err instanceof MalformedImage) return fail(err.message);
    throw err;
  }
}

/** SHA-256 over the canonical encoding of everything an entry says, its predecessor's hash included. */
export function entryHash(entry: Omit<AuditEntry, "hash" | "entity">): string {
  const content = {
    format: AUDIT_FORMAT,
    table: entry.table,
    tableName: entry.tableName,
    keys: entry.keys,
    eventName: entry.eventName,
    eventId: entry.eventId,
    sequenceNumber: entry.sequenceNumber,
    at: entry.at,
    recordedAt: entry.recordedAt,
    actor: entry.actor,
    actorBasis: entry.actorBasis,
    changed: entry.changed,
    old: entry.old ? canonicalMap(entry.old) : null,
    new: entry.new ? canonicalMap(entry.new) : null,
    position: entry.position,
    prevHash: entry.prevHash,
    expiresAt: entry.expiresAt ?? null,
    prevExpiresAt: entry.prevExpiresAt ?? null,
  };
  return createHash("sha256").update(canonicalJson(content)).digest("hex");
}

// --- retention --------------------------------------------------------------------------------

/** How long entries are kept: whole calendar years, or forever (no TTL). */
export type Retention = { years: number } | "forever";
export const DEFAULT_RETENTION: Retention = { years: 7 };

/** `SITELOGIX_AUDIT_RETENTION_YEARS`: a whole number of years (default 7) or `forever`. */
export function retentionFromEnv(env: NodeJS.ProcessEnv = process.env): Retention {
  const raw = env.SITELOGIX_AUDIT_RETENTION_YEARS?.trim();
  if (raw === undefined || raw === "") return DEFAULT_RETENTION;
  if (raw === "forever") return "forever";
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 100) {
    throw new Error(`SITELOGIX_AUDIT_RETENTION_YEARS must be a whole number of years from 1 to 100, or "forever"; got "${raw}"`);
  }
  return { years: Number(raw) };
}

/** Expiry of an entry recorded at `recordedAt`: never earlier than the retention allows, never before its predecessor's. */
function expiryOf(retention: Retention, recordedAt: Date, prevExpiresAt: number | undefined): number | undefined {
  if (retention === "forever") return undefined;
  const until = new Date(recordedAt);
  until.setUTCFullYear(until.getUTCFullYear() + retention.years);
  return Math.max(Math.ceil(until.getTime() / 1000), prevExpiresAt ?? 0);
}

// --- storage ----------------------------------------------------------------------------------

interface ChainHead {
  count: number;
  lastHash: string;
  lastSequenceNumber: string;
  lastExpiresAt?: number;
}

function parseHead(item: AttributeMap | undefined): ChainHead | undefined {
  if (!item) return undefined;
  const h = unmarshall(item);
  return {
    count: Number(h.count),
    lastHash: String(h.lastHash),
    lastSequenceNumber: String(h.lastSequenceNumber),
    ...(h.lastExpiresAt !== undefined ? { lastExpiresAt: Number(h.lastExpiresAt) } : {}),
  };
}

interface StoredEntry {
  item: AttributeMap;
  chunks: AttributeMap[];
  storage: EntryStorage;
}

function storedEntry(entry: AuditEntry): StoredEntry {
  const shard = shardOf(entry.entity);
  const sk = entrySk(entry.sequenceNumber);
  const item: AttributeMap = marshall(
    {
      PK: entry.entity,
      SK: sk,
      format: AUDIT_FORMAT,
      table: entry.table,
      tableName: entry.tableName,
      keys: entry.keys,
      eventName: entry.eventName,
      eventId: entry.eventId,
      sequenceNumber: entry.sequenceNumber,
      at: entry.at,
      recordedAt: entry.recordedAt,
      actor: entry.actor,
      actorBasis: entry.actorBasis,
      changed: entry.changed,
      position: entry.position,
      prevHash: entry.prevHash,
      hash: entry.hash,
      expiresAt: entry.expiresAt,
      prevExpiresAt: entry.prevExpiresAt,
      actorShard: `${entry.actor}#${shard}`,
      tableShard: `${entry.table}#${shard}`,
      atSeq: `${entry.at}#${padSequence(entry.sequenceNumber)}`,
    },
    { removeUndefinedValues: true },
  );
  const values: AttributeMap = {};
  if (entry.old) values.old = { M: entry.old };
  if (entry.new) values.new = { M: entry.new };
  if (sizeOf(item) + sizeOf(values) <= INLINE_LIMIT) return { item: { ...item, ...values }, chunks: [], storage: "inline" };

  const payload = gzipSync(JSON.stringify({ old: entry.old && eventForm(entry.old), new: entry.new && eventForm(entry.new) }));
  if (sizeOf(item) + payload.length <= INLINE_LIMIT) return { item: { ...item, payload: { B: payload } }, chunks: [], storage: "compressed" };
  const chunks: AttributeMap[] = [];
  for (let offset = 0, i = 0; offset < payload.length; offset += CHUNK_BYTES, i++) {
    chunks.push({ PK: { S: entry.entity }, SK: { S: chunkSk(entry.sequenceNumber, i) }, data: { B: payload.subarray(offset, offset + CHUNK_BYTES) } });
  }
  return { item: { ...item, payloadChunks: { N: String(chunks.length) } }, chunks, storage: "chunked" };
}

/** An entry as stored, before its payload (if any) is read back. */
interface EntryItem {
  item: AttributeMap;
  chunks: Uint8Array[];
}

/** Thrown when a stored entry cannot be decoded: for `verify`, a sign of tampering. */
export class UnreadableEntryError extends Error {}

function decodeEntry({ item, chunks }: EntryItem): AuditEntry {
  const { old: oldValues, new: newValues, payload, payloadChunks, ...meta } = item;
  const m = unmarshall(meta, { wrapNumbers: true }) as Record<string, unknown>;
  let values: { old?: AttributeMap; new?: AttributeMap } = {
    ...(oldValues?.M ? { old: oldValues.M } : {}),
    ...(newValues?.M ? { new: newValues.M } : {}),
  };
  const compressed = payload?.B ?? (payloadChunks ? Buffer.concat(chunks) : undefined);
  if (payloadChunks && chunks.length !== Number(payloadChunks.N)) {
    throw new UnreadableEntryError(`payload has ${chunks.length} of ${payloadChunks.N} chunks`);
  }
  if (compressed) {
    try {
      const parsed = JSON.parse(gunzipSync(compressed).toString("utf8")) as { old?: RawImage; new?: RawImage };
      values = { ...(parsed.old ? { old: normalizeImage(parsed.old) } : {}), ...(parsed.new ? { new: normalizeImage(parsed.new) } : {}) };
    } catch {
      throw new UnreadableEntryError("payload cannot be decompressed");
    }
  }
  const num = (v: unknown) => (v === undefined ? undefined : Number(String(v)));
  const expiresAt = num(m.expiresAt);
  const prevExpiresAt = num(m.prevExpiresAt);
  return {
    entity: String(m.PK),
    table: String(m.table),
    tableName: String(m.tableName),
    keys: orderKeys(String(m.table), (m.keys ?? {}) as Record<string, string>),
    eventName: m.eventName as StreamEventName,
    eventId: String(m.eventId),
    sequenceNumber: String(m.sequenceNumber),
    at: String(m.at),
    recordedAt: String(m.recordedAt),
    actor: String(m.actor),
    actorBasis: m.actorBasis as ActorBasis,
    changed: (m.changed ?? []) as string[],
    ...values,
    position: Number(String(m.position)),
    prevHash: String(m.prevHash),
    hash: String(m.hash),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(prevExpiresAt !== undefined ? { prevExpiresAt } : {}),
  };
}

const isChunk = (sk: string) => sk.includes("#C#");

/** Groups a stream of items of one or more partitions (in SK order) into entries with their chunks. */
async function* entryItems(items: AsyncIterable<AttributeMap>): AsyncGenerator<EntryItem> {
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

async function* pages(pager: AsyncIterable<{ Items?: AttributeMap[] }>): AsyncGenerator<AttributeMap> {
  for await (const page of pager) yield* page.Items ?? [];
}

/** Merges ascending streams into one ascending stream, reading one item ahead per stream. */
async function* mergeAscending<T>(streams: AsyncIterator<T>[], key: (t: T) => string): AsyncGenerator<T> {
  const heads = await Promise.all(streams.map((s) => s.next()));
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (!h.done && (best < 0 || key(h.value) < key((heads[best] as IteratorYieldResult<T>).value))) best = i;
    }
    if (best < 0) return;
    yield (heads[best] as IteratorYieldResult<T>).value;
    heads[best] = await streams[best]!.next();
  }
}

// --- the trail --------------------------------------------------------------------------------

export type AppendOutcome = { outcome: "appended"; position: number; storage: EntryStorage } | { outcome: "duplicate" };

/** A record older than the newest entry of its item that is not in the chain: appending it would misorder the history. */
export class OutOfOrderRecordError extends Error {}

export interface TimeRange {
  /** ISO time, inclusive. */
  from?: string;
  /** ISO time, inclusive. */
  to?: string;
}

export interface ChainProblem {
  table: string;
  keys: Record<string, string>;
  /** Position in the chain of the entry concerned (absent when the problem is the chain as a whole). */
  position?: number;
  sequenceNumber?: string;
  problem: string;
}

export interface VerifyReport {
  intact: boolean;
  chains: number;
  entries: number;
  /** Entries that were missing because their retention had passed (not a problem). */
  expired: number;
  problems: ChainProblem[];
}

export interface AuditTrailOptions {
  retention?: Retention;
  /** Clock (tests): processing time of new entries, and "now" for retention checks in verify. */
  now?: () => Date;
}

const reasonCode = (r: CancellationReason | undefined) => r?.Code ?? "None";


export class AuditTrail {
  private readonly heads = new Map<string, ChainHead>();
  private readonly retention: Retention;
  private readonly now: () => Date;

  constructor(
    readonly dynamodb: DynamoDBClient,
    /** Physical names of all tables: the audit table's, and the source tables' (to name them logically). */
    readonly names: TableNames,
    options: AuditTrailOptions = {},
  ) {
    this.retention = options.retention ?? DEFAULT_RETENTION;
    this.now = options.now ?? (() => new Date());
  }

  get tableName(): string {
    return this.names.audit;
  }

  /**
   * Appends the entry of one stream record exactly once: a record already in the chain (redelivery)
   * is a duplicate; the entry and the head are written in one transaction conditioned on the head
   * still being what it was read as, so concurrent appenders cannot fork a chain.
   */
  async append(content: EntryContent): Promise<AppendOutcome> {
    for (let attempt = 0; ; attempt++) {
      const head = this.heads.get(content.entity) ?? (await this.readHead(content.entity));
      if (head && padSequence(content.sequenceNumber) <= padSequence(head.lastSequenceNumber)) return this.alreadyRecorded(content);
      const recordedAt = this.now();
      const expiresAt = expiryOf(this.retention, recordedAt, head?.lastExpiresAt);
      const placed = {
        ...content,
        position: (head?.count ?? 0) + 1,
        prevHash: head?.lastHash ?? GENESIS_HASH,
        recordedAt: recordedAt.toISOString(),
        ...(expiresAt !== undefined ? { expiresAt } : {}),
        ...(head?.lastExpiresAt !== undefined ? { prevExpiresAt: head.lastExpiresAt } : {}),
      };
      const entry: AuditEntry = { ...placed, hash: entryHash(placed) };
      const stored = storedEntry(entry);
      const newHead: ChainHead = {
        count: entry.position,
        lastHash: entry.hash,
        lastSequenceNumber: entry.sequenceNumber,
        ...(expiresAt !== undefined ? { lastExpiresAt: expiresAt } : {}),
      };
      try {
        await this.dynamodb.send(new TransactWriteItemsCommand({ TransactItems: this.appendItems(entry, stored, head, newHead) }));
        this.remember(entry.entity, newHead);
        return { outcome: "appended", position: entry.position, storage: stored.storage };
      } catch (err) {
        const reasons = (err as { name?: string; CancellationReasons?: CancellationReason[] }).CancellationReasons;
        if ((err as { name?: string }).name !== "TransactionCanceledException" || !reasons || attempt >= APPEND_ATTEMPTS) throw err;
        const [entryReason, ...rest] = reasons;
        const headReason = rest[rest.length - 1];
        if (reasonCode(entryReason) === "ConditionalCheckFailed") return this.duplicateOf(content, entryReason?.Item);
        if (reasonCode(headReason) === "ConditionalCheckFailed") {
          // Another appender moved the head: continue from the head DynamoDB returned with the failure.
          const current = parseHead(headReason?.Item);
          if (current) this.remember(content.entity, current);
          else this.heads.delete(content.entity);
        } else {
          // TransactionConflict or throttling: back off and re-read the head.
          this.heads.delete(content.entity);
          await sleep(Math.min(1000, 20 * 2 ** attempt) * Math.random());
        }
      }
    }
  }

  private appendItems(entry: AuditEntry, stored: StoredEntry, head: ChainHead | undefined, newHead: ChainHead) {
    const created = { ConditionExpression: "attribute_not_exists(PK)" };
    return [
      { Put: { TableName: this.tableName, Item: stored.item, ...created, ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const } },
      ...stored.chunks.map((Item) => ({ Put: { TableName: this.tableName, Item, ...created } })),
      {
        Put: {
          TableName: this.tableName,
          Item: {
            ...marshall({ PK: entry.entity, SK: HEAD_SK, table: entry.table, keys: entry.keys, updatedAt: entry.recordedAt, ...newHead }, { removeUndefinedValues: true }),
          },
          ...(head
            ? { ConditionExpression: "#count = :count AND lastHash = :hash", ExpressionAttributeNames: { "#count": "count" }, ExpressionAttributeValues: { ":count": { N: String(head.count) }, ":hash": { S: head.lastHash } } }
            : created),
          ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const,
        },
      },
    ];
  }

  private remember(entity: string, head: ChainHead): void {
    this.heads.delete(entity);
    this.heads.set(entity, head);
    if (this.heads.size > HEAD_CACHE_SIZE) this.heads.delete(this.heads.keys().next().value!);
  }

  private async readHead(entity: string): Promise<ChainHead | undefined> {
    const out = await this.dynamodb.send(new GetItemCommand({ TableName: this.tableName, Key: { PK: { S: entity }, SK: { S: HEAD_SK } }, ConsistentRead: true }));
    return parseHead(out.Item);
  }

  /** A record at or before the chain's newest entry: a redelivery if its entry exists, else out of order. */
  private async alreadyRecorded(content: EntryContent): Promise<AppendOutcome> {
    const out = await this.dynamodb.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { PK: { S: content.entity }, SK: { S: entrySk(content.sequenceNumber) } },
        ProjectionExpression: "eventId",
        ConsistentRead: true,
      }),
    );
    if (!out.Item) {
      throw new OutOfOrderRecordError(
        `record ${content.sequenceNumber} of ${content.entity} arrived after a newer record of the same item was audited; not appended`,
      );
    }
    return this.duplicateOf(content, out.Item);
  }

  private duplicateOf(content: EntryContent, existing: AttributeMap | undefined): AppendOutcome {
    const eventId = existing?.eventId?.S;
    if (eventId !== undefined && eventId !== content.eventId) {
      throw new Error(`audit entry for sequence number ${content.sequenceNumber} of ${content.entity} belongs to event ${eventId}, not ${content.eventId}`);
    }
    return { outcome: "duplicate" };
  }

  /**
   * The processor of one batch. Records of different items are appended concurrently (at most
   * `concurrency` at a time); records of one item strictly one after another in the batch's (stream)
   * order, and once one fails its item's later records fail too: Lambda redelivers from the earliest
   * failure, so an item's history is never appended out of order. The order comes from the batch
   * itself, not from the order in which the returned function is called.
   */
  batch(records: readonly DynamoDBRecord[], options: { concurrency?: number } = {}): (record: DynamoDBRecord) => Promise<AppendOutcome> {
    return inItemOrder(
      records,
      (record) => recordEntity(record, this.names),
      async (record) => this.append(entryContent(record, this.names)),
      options.concurrency ?? AUDIT_BATCH_CONCURRENCY,
    );
  }

  // --- queries --------------------------------------------------------------------------------

  private async *withChunks(entries: AsyncIterable<AttributeMap>): AsyncGenerator<AuditEntry> {
    for await (const item of entries) {
      const chunks: Uint8Array[] = [];
      if (item.payloadChunks) {
        const sk = item.SK?.S ?? "";
        const pager = paginateQuery(
          { client: this.dynamodb },
          {
            TableName: this.tableName,
            KeyConditionExpression: "PK = :pk AND begins_with(SK, :chunk)",
            ExpressionAttributeValues: { ":pk": item.PK!, ":chunk": { S: `${sk}#C#` } },
          },
        );
        for await (const chunk of pages(pager)) if (chunk.data?.B) chunks.push(chunk.data.B);
      }
      yield decodeEntry({ item, chunks });
    }
  }

  /** Every entry of one item, in stream order. */
  async *history(table: string, keys: Record<string, string>, range: TimeRange = {}): AsyncGenerator<AuditEntry> {
    const pager = paginateQuery(
      { client: this.dynamodb },
      {
        TableName: this.tableName,
        KeyConditionExpression: "PK = :pk AND begins_with(SK, :entry)",
        ExpressionAttributeValues: { ":pk": { S: entityId(table, keys) }, ":entry": { S: ENTRY_PREFIX } },
      },
    );
    const inRange = timeFilter(range);
    for await (const stored of entryItems(pages(pager))) {
      const at = stored.item.at?.S ?? "";
      if (inRange(at)) yield decodeEntry(stored);
    }
  }

  /** Entries of one actor (e.g. `user_42`, `sitelogix-migrate:sweep`, `dynamodb.amazonaws.com`), oldest first. */
  byActor(actor: string, range: TimeRange = {}): AsyncGenerator<AuditEntry> {
    return this.indexed(AUDIT_INDEXES.actor, "actorShard", actor, range);
  }

  /** Entries of one table (logical name), oldest first. */
  byTable(table: string, range: TimeRange = {}): AsyncGenerator<AuditEntry> {
    return this.indexed(AUDIT_INDEXES.table, "tableShard", table, range);
  }

  private indexed(indexName: string, attribute: string, value: string, range: TimeRange): AsyncGenerator<AuditEntry> {
    // Key values cannot be empty strings: open bounds are years 0000 and 9999.
    const from = range.from ?? "0000";
    const to = `${range.to ?? "9999"}#~`;
    const shards = Array.from({ length: AUDIT_INDEX_SHARDS }, (_, shard) => {
      const input: QueryCommandInput = {
        TableName: this.tableName,
        IndexName: indexName,
        KeyConditionExpression: "#shard = :shard AND atSeq BETWEEN :from AND :to",
        ExpressionAttributeNames: { "#shard": attribute },
        ExpressionAttributeValues: { ":shard": { S: `${value}#${shard}` }, ":from": { S: from }, ":to": { S: to } },
        Limit: 200,
      };
      return pages(paginateQuery({ client: this.dynamodb }, input));
    });
    return this.withChunks(mergeAscending(shards, (item) => item.atSeq?.S ?? ""));
  }

  // --- verification ---------------------------------------------------------------------------

  /**
   * Checks every chain (of one table, or all): each entry's hash against its content, each link,
   * the positions, and the head against the newest entry; and that no entries exist without a head.
   * Entries missing because their retention passed are counted, not reported.
   */
  async verify(options: { table?: string; segments?: number; onProblem?: (p: ChainProblem) => void } = {}): Promise<VerifyReport> {
    const report: VerifyReport = { intact: true, chains: 0, entries: 0, expired: 0, problems: [] };
    const problem = (p: ChainProblem) => {
      report.intact = false;
      if (report.problems.length < 10_000) report.problems.push(p);
      options.onProblem?.(p);
    };
    const withEntries = new Map<string, { table: string; keys: Record<string, string> }>();
    const withHeads = new Set<string>();
    const segments = options.segments ?? 4;
    await Promise.all(
      Array.from({ length: segments }, async (_, segment) => {
        const pager = paginateScan(
          { client: this.dynamodb },
          {
            TableName: this.tableName,
            Segment: segment,
            TotalSegments: segments,
            ProjectionExpression: "PK, SK, #table, #keys",
            ExpressionAttributeNames: { "#table": "table", "#keys": "keys" },
            ...(options.table ? { FilterExpression: "#table = :table", ExpressionAttributeValues: { ":table": { S: options.table } } } : {}),
          },
        );
        for await (const item of pages(pager)) {
          const pk = item.PK?.S ?? "";
          const sk = item.SK?.S ?? "";
          if (sk === HEAD_SK) {
            withHeads.add(pk);
            report.chains++;
            await this.verifyChain(pk, report, problem);
          } else if (sk.startsWith(ENTRY_PREFIX) && !isChunk(sk) && !withEntries.has(pk)) {
            const table = item.table?.S ?? "";
            withEntries.set(pk, { table, keys: orderKeys(table, (unmarshall({ k: item.keys ?? { M: {} } }).k ?? {}) as Record<string, string>) });
          }
        }
      }),
    );
    for (const [pk, ref] of withEntries) {
      if (!withHeads.has(pk)) problem({ ...ref, problem: "entries exist but the chain head is missing (head deleted)" });
    }
    return report;
  }

  private async verifyChain(entity: string, report: VerifyReport, problem: (p: ChainProblem) => void): Promise<void> {
    const nowSeconds = Math.floor(this.now().getTime() / 1000);
    const pager = paginateQuery(
      { client: this.dynamodb },
      { TableName: this.tableName, KeyConditionExpression: "PK = :pk", ExpressionAttributeValues: { ":pk": { S: entity } }, ConsistentRead: true },
    );
    let head: { item: AttributeMap } | undefined;
    let prev: AuditEntry | undefined;
    let ref = { table: "", keys: {} as Record<string, string> };
    const items = async function* () {
      for await (const item of pages(pager)) {
        if (item.SK?.S === HEAD_SK) head = { item };
        else yield item;
      }
    };
    for await (const stored of entryItems(items())) {
      const sk = stored.item.SK?.S ?? "";
      let entry: AuditEntry;
      try {
        entry = decodeEntry(stored);
      } catch (err) {
        const position = Number(stored.item.position?.N ?? Number.NaN);
        problem({ ...ref, ...(Number.isFinite(position) ? { position } : {}), sequenceNumber: stored.item.sequenceNumber?.S, problem: `entry unreadable: ${(err as Error).message}` });
        continue;
      }
      report.entries++;
      ref = { table: entry.table, keys: entry.keys };
      const at = { ...ref, position: entry.position, sequenceNumber: entry.sequenceNumber };
      if (entryHash(entry) !== entry.hash) problem({ ...at, problem: "entry altered: its content does not match its hash" });
      if (entityId(entry.table, entry.keys) !== entity || sk !== entrySk(entry.sequenceNumber)) {
        problem({ ...at, problem: "entry stored under another item's or sequence number's key" });
      }
      const expectedPosition = (prev?.position ?? 0) + 1;
      if (entry.position === expectedPosition && entry.prevHash === (prev?.hash ?? GENESIS_HASH)) {
        // Linked to its predecessor.
      } else if (entry.position > expectedPosition && entry.prevExpiresAt !== undefined && entry.prevExpiresAt <= nowSeconds) {
        report.expired += entry.position - expectedPosition;
      } else if (entry.position > expectedPosition) {
        problem({ ...at, problem: `${entry.position - expectedPosition} entr${entry.position - expectedPosition === 1 ? "y" : "ies"} before this one deleted (positions ${expectedPosition}–${entry.position - 1})` });
      } else if (entry.position < expectedPosition) {
        problem({ ...at, problem: `position ${entry.position} repeats or goes back after position ${prev?.position ?? 0}: inserted entry` });
      } else {
        problem({ ...at, problem: "does not link to the entry before it: an entry was inserted or replaced" });
      }
      prev = entry;
    }
    const h = parseHead((head as { item: AttributeMap } | undefined)?.item);
    if (!h) return;
    if (prev === undefined) {
      const headRef = unmarshall(head!.item) as { table?: string; keys?: Record<string, string> };
      if (h.lastExpiresAt !== undefined && h.lastExpiresAt <= nowSeconds) report.expired += h.count;
      else problem({ table: headRef.table ?? "", keys: orderKeys(headRef.table ?? "", headRef.keys ?? {}), position: h.count, problem: `all ${h.count} entries deleted` });
      return;
    }
    if (h.count > prev.position && h.lastExpiresAt !== undefined && h.lastExpiresAt <= nowSeconds) {
      report.expired += h.count - prev.position;
    } else if (h.count > prev.position) {
      problem({ ...ref, position: prev.position + 1, problem: `newest ${h.count - prev.position} entr${h.count - prev.position === 1 ? "y" : "ies"} deleted (head records ${h.count})` });
    } else if (h.count !== prev.position || h.lastHash !== prev.hash || h.lastSequenceNumber !== prev.sequenceNumber) {
      problem({ ...ref, position: prev.position, sequenceNumber: prev.sequenceNumber, problem: `newest entry does not match the chain head (head records position ${h.count}): inserted or replaced` });
    }
  }
}

/** ISO time bounds (inclusive) as a predicate on an entry's `at`. */
function timeFilter(range: TimeRange): (at: string) => boolean {
  return (at) => (range.from === undefined || at >= range.from) && (range.to === undefined || at <= range.to);
}

/**
 * An operator's time bound as the ISO form entries use: a full time as given (`2025-11-01T08:00:00Z`),
 * a bare date as the start (`from`) or the end (`to`) of that UTC day. Throws when unreadable.
 */
export function parseAuditTime(value: string, bound: "from" | "to"): string {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const ms = Date.parse(dateOnly ? `${value}T00:00:00.000Z` : value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) {
    throw new Error(`--${bound} must be an ISO date or time in UTC (e.g. 2025-11-01 or 2025-11-01T08:00:00Z); got "${value}"`);
  }
  return new Date(dateOnly && bound === "to" ? ms + 86_400_000 - 1 : ms).toISOString();
}

// --- output -----------------------------------------------------------------------------------

export type EntryFormat = "table" | "json" | "ndjson" | "csv";

/** A value as plain JSON: numbers exact (as strings where a JS number would round), binary as base64, sets as arrays. */
function plainValue(av: AttributeValue): unknown {
  if (av.S !== undefined) return av.S;
  if (av.N !== undefined) return plainNumber(av.N);
  if (av.B !== undefined) return base64(av.B);
  if (av.SS !== undefined) return [...av.SS];
  if (av.NS !== undefined) return av.NS.map(plainNumber);
  if (av.BS !== undefined) return av.BS.map(base64);
  if (av.M !== undefined) return plainMap(av.M);
  if (av.L !== undefined) return av.L.map(plainValue);
  if (av.BOOL !== undefined) return av.BOOL;
  return null;
}

function plainNumber(n: string): number | string {
  const v = exactNumber(n);
  return typeof v === "number" ? v : v.toString();
}

const plainMap = (map: AttributeMap) => Object.fromEntries(Object.entries(map).map(([k, v]) => [k, plainValue(v)]));

/** The entry as a JSON document: the fields of the audit contract, then the chain fields. */
export function entryJson(entry: AuditEntry): Record<string, unknown> {
  return {
    table: entry.table,
    keys: entry.keys,
    eventName: entry.eventName,
    eventId: entry.eventId,
    sequenceNumber: entry.sequenceNumber,
    at: entry.at,
    actor: entry.actor,
    actorBasis: entry.actorBasis,
    changed: entry.changed,
    ...(entry.old ? { old: plainMap(entry.old) } : {}),
    ...(entry.new ? { new: plainMap(entry.new) } : {}),
    recordedAt: entry.recordedAt,
    position: entry.position,
    prevHash: entry.prevHash,
    hash: entry.hash,
    ...(entry.expiresAt !== undefined ? { expiresAt: new Date(entry.expiresAt * 1000).toISOString() } : {}),
  };
}

const CSV_COLUMNS = ["at", "table", "keys", "eventName", "actor", "actorBasis", "changed", "old", "new", "sequenceNumber", "eventId", "position", "hash", "prevHash"] as const;

const csvField = (value: string) => (/[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);

function csvRow(entry: AuditEntry): string {
  const json = entryJson(entry);
  const cell = (column: (typeof CSV_COLUMNS)[number]) => {
    const v = json[column];
    if (column === "changed") return entry.changed.join(" ");
    return v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v);
  };
  return `${CSV_COLUMNS.map((c) => csvField(cell(c))).join(",")}\r\n`;
}

const TABLE_WIDTHS = { at: 24, table: 18, key: 40, event: 6, actor: 28 } as const;

function tableRow(cells: string[]): string {
  const widths = Object.values(TABLE_WIDTHS);
  return `${cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i]!) : c)).join("  ")}\n`;
}

/**
 * The text of a stream of entries in one format, chunk by chunk (constant memory): `json` is one
 * array, `ndjson` one entry per line, `csv` RFC 4180 with a header, `table` aligned columns for
 * reading (attribute names only, no values).
 */
export async function* formatEntries(entries: AsyncIterable<AuditEntry>, format: EntryFormat): AsyncGenerator<string> {
  if (format === "csv") yield `${CSV_COLUMNS.join(",")}\r\n`;
  if (format === "table") yield tableRow(["AT", "TABLE", "KEY", "EVENT", "ACTOR", "CHANGED"]);
  if (format === "json") yield "[";
  let first = true;
  for await (const entry of entries) {
    switch (format) {
      case "json":
        yield `${first ? "\n" : ",\n"}${JSON.stringify(entryJson(entry))}`;
        break;
      case "ndjson":
        yield `${JSON.stringify(entryJson(entry))}\n`;
        break;
      case "csv":
        yield csvRow(entry);
        break;
      case "table":
        yield tableRow([entry.at, entry.table, Object.values(entry.keys).join(" / "), entry.eventName, entry.actor, entry.changed.join(", ")]);
        break;
    }
    first = false;
  }
  if (format === "json") yield first ? "]\n" : "\n]\n";
}

export interface ExportResult {
  file: string;
  digestFile: string;
  entries: number;
  bytes: number;
  sha256: string;
}

/**
 * Writes entries to `file` (streamed, through a temporary file renamed at the end so that a failed
 * export never leaves a complete-looking file) and its SHA-256 beside it as `<file>.sha256`, in
 * `sha256sum` format: `sha256sum -c <file>.sha256` checks it.
 */
export async function exportEntries(entries: AsyncIterable<AuditEntry>, format: "ndjson" | "csv", file: string): Promise<ExportResult> {
  const partial = `${file}.partial`;
  const out = createWriteStream(partial);
  const digest = createHash("sha256");
  let count = 0;
  let bytes = 0;
  const counted = async function* () {
    for await (const entry of entries) {
      count++;
      yield entry;
    }
  };
  try {
    for await (const text of formatEntries(counted(), format)) {
      digest.update(text);
      bytes += Buffer.byteLength(text);
      if (!out.write(text)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await rename(partial, file);
  } catch (err) {
    out.destroy();
    await rm(partial, { force: true });
    throw err;
  }
  const sha256 = digest.digest("hex");
  const digestFile = `${file}.sha256`;
  await writeFile(digestFile, `${sha256}  ${basename(file)}\n`);
  return { file, digestFile, entries: count, bytes, sha256 };
}
