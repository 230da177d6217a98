// The check of one item's chain, fed its audit-table items one at a time in sort-key order (entries,
// each followed by its chunks, then the head), so that a scan of the whole table checks every chain
// in one pass holding one chain's state at a time: each entry's hash against its content, each
// link, the positions, the head against the newest entry, the sealed position against the digest
// that sealed it, and each expiry against the retention.
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { entryHash, GENESIS_HASH } from "./chain.js";
import { entityId, orderKeys, type AuditEntry } from "./entry.js";
import { expiryOf, type Retention } from "./retention.js";
import { decodeEntry, ENTRY_PREFIX, entrySk, HEAD_SK, isChunk, parseHead, type EntryItem } from "./store.js";
import type { AttributeMap } from "./values.js";

export interface ChainProblem {
  table: string;
  keys: Record<string, string>;
  /** Position in the chain of the entry concerned (absent when the problem is the chain as a whole). */
  position?: number;
  sequenceNumber?: string;
  /** The digest whose record the chain contradicts, or the digest that is itself altered. */
  digest?: string;
  problem: string;
}

/** What the latest digest covering a chain sealed of it. */
export interface SealedPoint {
  count: number;
  lastHash: string;
  digest: string;
}

export interface ChainTally {
  entries: number;
  expired: number;
  unsealed: number;
  /** recordedAt of the oldest unsealed entry. */
  oldestUnsealed?: string;
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export class ChainCheck {
  private prev: AuditEntry | undefined;
  private pending: EntryItem | undefined;
  private head: AttributeMap | undefined;
  private ref: { table: string; keys: Record<string, string> } = { table: "", keys: {} };
  /** Highest position whose absence is explained by retention. */
  private expiredThrough = 0;
  private sealedSeen = false;

  constructor(
    readonly entity: string,
    private readonly sealed: SealedPoint | undefined,
    private readonly nowSeconds: number,
    private readonly retention: Retention | undefined,
    private readonly tally: ChainTally,
    private readonly problem: (p: ChainProblem) => void,
  ) {}

  add(item: AttributeMap): void {
    const sk = item.SK?.S ?? "";
    if (sk === HEAD_SK) this.head = item;
    else if (isChunk(sk)) {
      if (this.pending && sk.startsWith(`${this.pending.item.SK?.S}#C#`) && item.data?.B)
        this.pending.chunks.push(item.data.B);
    } else if (sk.startsWith(ENTRY_PREFIX)) {
      this.flush();
      this.pending = { item, chunks: [] };
    }
  }

  /** Ends the chain: checks the last entry, the head and the sealed point. */
  finish(): void {
    this.flush();
    if (!this.head) {
      if (this.prev || this.ref.table)
        this.problem({ ...this.ref, problem: "entries exist but the chain head is missing (head deleted)" });
      return;
    }
    this.checkHead(this.head);
    const s = this.sealed;
    if (s && !this.sealedSeen && this.expiredThrough < s.count) {
      this.problem({
        ...this.ref,
        position: s.count,
        digest: s.digest,
        problem: `sealed entry missing: ${s.digest} sealed ${plural(s.count, "entry", "entries")} of this chain`,
      });
    }
  }

  private flush(): void {
    const stored = this.pending;
    this.pending = undefined;
    if (!stored) return;
    let entry: AuditEntry;
    try {
      entry = decodeEntry(stored);
    } catch (err) {
      const position = Number(stored.item.position?.N ?? Number.NaN);
      this.problem({
        ...this.ref,
        ...(Number.isFinite(position) ? { position } : {}),
        sequenceNumber: stored.item.sequenceNumber?.S,
        problem: `entry unreadable: ${(err as Error).message}`,
      });
      return;
    }
    this.checkEntry(entry, stored.item.SK?.S ?? "");
  }

  private checkEntry(entry: AuditEntry, sk: string): void {
    const { prev, problem } = this;
    this.tally.entries++;
    this.ref = { table: entry.table, keys: entry.keys };
    const at = { ...this.ref, position: entry.position, sequenceNumber: entry.sequenceNumber };
    if (entryHash(entry) !== entry.hash)
      problem({ ...at, problem: "entry altered: its content does not match its hash" });
    if (entityId(entry.table, entry.keys) !== this.entity || sk !== entrySk(entry.sequenceNumber))
      problem({ ...at, problem: "entry stored under another item's or sequence number's key" });
    this.checkExpiry(entry, at);
    const expected = (prev?.position ?? 0) + 1;
    const gap = entry.position - expected;
    if (gap === 0 && entry.prevHash === (prev?.hash ?? GENESIS_HASH)) {
      // Linked to its predecessor.
    } else if (gap > 0 && entry.prevExpiresAt !== undefined && entry.prevExpiresAt <= this.nowSeconds) {
      this.tally.expired += gap;
      this.expiredThrough = entry.position - 1;
    } else if (gap > 0) {
      problem({
        ...at,
        problem:
          `${plural(gap, "entry", "entries")} before this one deleted ` +
          `(positions ${expected}–${entry.position - 1})`,
      });
    } else if (gap < 0) {
      problem({
        ...at,
        problem: `position ${entry.position} repeats or goes back after position ${expected - 1}: inserted entry`,
      });
    } else {
      problem({ ...at, problem: "does not link to the entry before it: an entry was inserted or replaced" });
    }
    const s = this.sealed;
    if (s && entry.position === s.count) {
      this.sealedSeen = true;
      if (entry.hash !== s.lastHash) {
        problem({
          ...at,
          digest: s.digest,
          problem:
            `entry does not match ${s.digest}, which sealed this chain at this position: ` +
            "the chain was rewritten at or before this position",
        });
      }
    }
    if (!s || entry.position > s.count) {
      this.tally.unsealed++;
      if (this.tally.oldestUnsealed === undefined || entry.recordedAt < this.tally.oldestUnsealed)
        this.tally.oldestUnsealed = entry.recordedAt;
    }
    this.prev = entry;
  }

  /** An expiry earlier than the retention allows, or than its predecessor's, was moved into the past. */
  private checkExpiry(entry: AuditEntry, at: Omit<ChainProblem, "problem">): void {
    if (entry.expiresAt === undefined) return;
    const floor =
      this.retention === undefined || this.retention === "forever"
        ? undefined
        : expiryOf(this.retention, new Date(entry.recordedAt), undefined);
    if ((floor !== undefined && entry.expiresAt < floor) || entry.expiresAt < (entry.prevExpiresAt ?? 0)) {
      this.problem({
        ...at,
        problem: `expiresAt ${new Date(entry.expiresAt * 1000).toISOString()} moved before the end of its retention`,
      });
    }
  }

  private checkHead(item: AttributeMap): void {
    const h = parseHead(item)!;
    const { prev, problem } = this;
    if (prev === undefined) {
      const headRef = unmarshall(item) as { table?: string; keys?: Record<string, string> };
      this.ref = { table: headRef.table ?? "", keys: orderKeys(headRef.table ?? "", headRef.keys ?? {}) };
      if (h.lastExpiresAt !== undefined && h.lastExpiresAt <= this.nowSeconds) {
        this.tally.expired += h.count;
        this.expiredThrough = h.count;
      } else problem({ ...this.ref, position: h.count, problem: `all ${h.count} entries deleted` });
      return;
    }
    const missing = h.count - prev.position;
    if (missing > 0 && h.lastExpiresAt !== undefined && h.lastExpiresAt <= this.nowSeconds) {
      this.tally.expired += missing;
      this.expiredThrough = h.count;
    } else if (missing > 0) {
      problem({
        ...this.ref,
        position: prev.position + 1,
        problem: `newest ${plural(missing, "entry", "entries")} deleted (head records ${h.count})`,
      });
    } else if (missing !== 0 || h.lastHash !== prev.hash || h.lastSequenceNumber !== prev.sequenceNumber) {
      problem({
        ...this.ref,
        position: prev.position,
        sequenceNumber: prev.sequenceNumber,
        problem: `newest entry does not match the chain head (head records position ${h.count}): inserted or replaced`,
      });
    }
  }
}
