// The audit entry: what one stream record says about one item, placed in that item's chain. Its
// fields are declared once, in ENTRY_FIELDS; the hash (chain.ts), the stored item and its decoding
// (store.ts) and the JSON output (export.ts) all read that table, so a field cannot be added to one
// of them and missed by another (the hash least of all).
import { createHash } from "node:crypto";
import { isSiteLogixTable, TABLES } from "../schema.js";
import type { StreamEventName } from "../streams.js";
import type { ActorBasis } from "./attribution.js";
import { canonicalJson, canonicalMap, plainMap, type AttributeMap } from "./values.js";

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

/**
 * How one field of an entry is hashed, stored, read back and shown. An absent value is hashed as
 * null, stored and shown not at all.
 */
export interface EntryField<V> {
  /**
   * The field's canonical form in the hash. Only two fields are outside it: `hash` (the result) and
   * `entity` (a function of table and keys, which verification checks against the stored key).
   */
  hash: ((value: NonNullable<V>) => unknown) | false;
  /**
   * An attribute of the entry's item under the field's name, the item's partition key, or the values
   * payload (inline, compressed or chunked).
   */
  stored: "attribute" | "partitionKey" | "payload";
  /** The value read back from what was stored there (unmarshalled, numbers wrapped) and the whole item so read. */
  decode: (stored: unknown, item: Readonly<Record<string, unknown>>) => V;
  /** Its form in the JSON document of the entry, or false when the document leaves it out. */
  json: ((value: NonNullable<V>) => unknown) | false;
}

const same = <T>(value: T): T => value;
const text: EntryField<string> = { hash: same, stored: "attribute", decode: (v) => String(v), json: same };
const values: EntryField<AttributeMap | undefined> = {
  hash: canonicalMap,
  stored: "payload",
  decode: (v) => v as AttributeMap | undefined,
  json: plainMap,
};
const epochSeconds = (v: unknown) => (v === undefined ? undefined : Number(String(v)));

/** Every field of an entry, in the order of its JSON document. */
export const ENTRY_FIELDS: { readonly [K in keyof AuditEntry]-?: EntryField<AuditEntry[K]> } = {
  entity: { hash: false, stored: "partitionKey", decode: (v) => String(v), json: false },
  table: text,
  tableName: { ...text, json: false },
  keys: {
    hash: same,
    stored: "attribute",
    decode: (v, item) => orderKeys(String(item.table), (v ?? {}) as Record<string, string>),
    json: same,
  },
  eventName: { ...text, decode: (v) => v as StreamEventName },
  eventId: text,
  sequenceNumber: text,
  at: text,
  actor: text,
  actorBasis: { ...text, decode: (v) => v as ActorBasis },
  changed: { hash: same, stored: "attribute", decode: (v) => (v ?? []) as string[], json: same },
  old: values,
  new: values,
  recordedAt: text,
  position: { hash: same, stored: "attribute", decode: (v) => Number(String(v)), json: same },
  prevHash: text,
  hash: { ...text, hash: false },
  expiresAt: { hash: same, stored: "attribute", decode: epochSeconds, json: (s) => new Date(s * 1000).toISOString() },
  prevExpiresAt: { hash: same, stored: "attribute", decode: epochSeconds, json: false },
};

export type EntryFieldName = keyof typeof ENTRY_FIELDS;

/** The fields, typed for iteration. */
export const entryFields = () => Object.entries(ENTRY_FIELDS) as [EntryFieldName, EntryField<unknown>][];

/** The audit table's partition key for an item: its table and its keys (hashed only when too long for a key). */
export function entityId(table: string, keys: Record<string, string>): string {
  const id = `${table}#${canonicalJson(keys)}`;
  return Buffer.byteLength(id) <= 2000 ? id : `${table}#sha256:${createHash("sha256").update(id).digest("hex")}`;
}

/** Keys in the table's key-schema order (partition key first), so that they read the same everywhere. */
export function orderKeys(table: string, keys: Record<string, string>): Record<string, string> {
  const schema = isSiteLogixTable(table) ? [TABLES[table].hashKey, TABLES[table].rangeKey] : [];
  const rank = (name: string) => {
    const i = schema.indexOf(name);
    return i < 0 ? schema.length : i;
  };
  return Object.fromEntries(Object.entries(keys).sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)));
}
