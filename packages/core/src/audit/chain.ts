// The hash chain of one item's entries. Each entry's hash is SHA-256 over a canonical encoding of
// every field ENTRY_FIELDS declares hashed, the previous entry's hash among them. The chain's head
// (count, last hash) is written in the same transaction as the entry, conditioned on the count it
// was read with, so it always names the newest entry: editing, deleting (newest included) or
// inserting an entry breaks either a link or the head.
import { createHash } from "node:crypto";
import { entryFields, type AuditEntry, type EntryContent } from "./entry.js";
import { expiryOf, type Retention } from "./retention.js";
import { canonicalJson } from "./values.js";

/** Version of the canonical encoding; part of every hash, so a future change cannot be confused with tampering. */
export const AUDIT_FORMAT = 1;
/** The `prevHash` of an item's first entry. */
export const GENESIS_HASH = "0".repeat(64);

/** What the head of an item's chain records about its newest entry. */
export interface ChainHead {
  count: number;
  lastHash: string;
  lastSequenceNumber: string;
  lastExpiresAt?: number;
}

/** SHA-256 over the canonical encoding of everything an entry says, its predecessor's hash included. */
export function entryHash(entry: Omit<AuditEntry, "hash" | "entity">): string {
  const content: Record<string, unknown> = { format: AUDIT_FORMAT };
  for (const [name, field] of entryFields()) {
    if (!field.hash) continue;
    const value = (entry as Partial<AuditEntry>)[name];
    content[name] = value === undefined || value === null ? null : field.hash(value);
  }
  return createHash("sha256").update(canonicalJson(content)).digest("hex");
}

/** The entry of `content` placed after `head` (the chain's newest entry; undefined for a new chain), hashed. */
export function placeEntry(
  content: EntryContent,
  head: ChainHead | undefined,
  recordedAt: Date,
  retention: Retention,
): AuditEntry {
  const expiresAt = expiryOf(retention, recordedAt, head?.lastExpiresAt);
  const placed = {
    ...content,
    position: (head?.count ?? 0) + 1,
    prevHash: head?.lastHash ?? GENESIS_HASH,
    recordedAt: recordedAt.toISOString(),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(head?.lastExpiresAt !== undefined ? { prevExpiresAt: head.lastExpiresAt } : {}),
  };
  return { ...placed, hash: entryHash(placed) };
}

/** The head once `entry` is the newest. */
export function headOf(entry: AuditEntry): ChainHead {
  return {
    count: entry.position,
    lastHash: entry.hash,
    lastSequenceNumber: entry.sequenceNumber,
    ...(entry.expiresAt !== undefined ? { lastExpiresAt: entry.expiresAt } : {}),
  };
}
