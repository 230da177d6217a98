// Verification of the whole trail: every entry's hash against its content, every link, the
// positions, and every head against its chain's newest entry; entries without a head. Entries gone
// because their retention passed are counted, not reported.
import { paginateQuery, paginateScan } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { entryHash, GENESIS_HASH } from "./chain.js";
import { entityId, orderKeys, type AuditEntry } from "./entry.js";
import {
  decodeEntry,
  ENTRY_PREFIX,
  entryItems,
  entrySk,
  HEAD_SK,
  isChunk,
  pages,
  parseHead,
  type AuditTable,
} from "./store.js";
import type { AttributeMap } from "./values.js";

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

export interface VerifyOptions {
  /** Only the chains of this table (logical name). */
  table?: string;
  /** Parallel scan segments. */
  segments?: number;
  onProblem?: (p: ChainProblem) => void;
}

/**
 * Checks every chain (of one table, or all): each entry's hash against its content, each link,
 * the positions, and the head against the newest entry; and that no entries exist without a head.
 * Entries missing because their retention passed are counted, not reported.
 */
export async function verifyTrail(
  audit: AuditTable,
  now: () => Date,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
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
        { client: audit.dynamodb },
        {
          TableName: audit.tableName,
          Segment: segment,
          TotalSegments: segments,
          ProjectionExpression: "PK, SK, #table, #keys",
          ExpressionAttributeNames: { "#table": "table", "#keys": "keys" },
          ...(options.table
            ? { FilterExpression: "#table = :table", ExpressionAttributeValues: { ":table": { S: options.table } } }
            : {}),
        },
      );
      for await (const item of pages(pager)) {
        const pk = item.PK?.S ?? "";
        const sk = item.SK?.S ?? "";
        if (sk === HEAD_SK) {
          withHeads.add(pk);
          report.chains++;
          await verifyChain(audit, pk, Math.floor(now().getTime() / 1000), report, problem);
        } else if (sk.startsWith(ENTRY_PREFIX) && !isChunk(sk) && !withEntries.has(pk)) {
          const table = item.table?.S ?? "";
          withEntries.set(pk, {
            table,
            keys: orderKeys(table, (unmarshall({ k: item.keys ?? { M: {} } }).k ?? {}) as Record<string, string>),
          });
        }
      }
    }),
  );
  for (const [pk, ref] of withEntries) {
    if (!withHeads.has(pk)) problem({ ...ref, problem: "entries exist but the chain head is missing (head deleted)" });
  }
  return report;
}

async function verifyChain(
  audit: AuditTable,
  entity: string,
  nowSeconds: number,
  report: VerifyReport,
  problem: (p: ChainProblem) => void,
): Promise<void> {
  const pager = paginateQuery(
    { client: audit.dynamodb },
    {
      TableName: audit.tableName,
      KeyConditionExpression: "PK = :pk",
      ExpressionAttributeValues: { ":pk": { S: entity } },
      ConsistentRead: true,
    },
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
      problem({
        ...ref,
        ...(Number.isFinite(position) ? { position } : {}),
        sequenceNumber: stored.item.sequenceNumber?.S,
        problem: `entry unreadable: ${(err as Error).message}`,
      });
      continue;
    }
    report.entries++;
    ref = { table: entry.table, keys: entry.keys };
    const at = { ...ref, position: entry.position, sequenceNumber: entry.sequenceNumber };
    if (entryHash(entry) !== entry.hash)
      problem({ ...at, problem: "entry altered: its content does not match its hash" });
    if (entityId(entry.table, entry.keys) !== entity || sk !== entrySk(entry.sequenceNumber)) {
      problem({ ...at, problem: "entry stored under another item's or sequence number's key" });
    }
    const expectedPosition = (prev?.position ?? 0) + 1;
    if (entry.position === expectedPosition && entry.prevHash === (prev?.hash ?? GENESIS_HASH)) {
      // Linked to its predecessor.
    } else if (
      entry.position > expectedPosition &&
      entry.prevExpiresAt !== undefined &&
      entry.prevExpiresAt <= nowSeconds
    ) {
      report.expired += entry.position - expectedPosition;
    } else if (entry.position > expectedPosition) {
      problem({
        ...at,
        problem: `${entry.position - expectedPosition} entr${entry.position - expectedPosition === 1 ? "y" : "ies"} before this one deleted (positions ${expectedPosition}–${entry.position - 1})`,
      });
    } else if (entry.position < expectedPosition) {
      problem({
        ...at,
        problem: `position ${entry.position} repeats or goes back after position ${prev?.position ?? 0}: inserted entry`,
      });
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
    else
      problem({
        table: headRef.table ?? "",
        keys: orderKeys(headRef.table ?? "", headRef.keys ?? {}),
        position: h.count,
        problem: `all ${h.count} entries deleted`,
      });
    return;
  }
  if (h.count > prev.position && h.lastExpiresAt !== undefined && h.lastExpiresAt <= nowSeconds) {
    report.expired += h.count - prev.position;
  } else if (h.count > prev.position) {
    problem({
      ...ref,
      position: prev.position + 1,
      problem: `newest ${h.count - prev.position} entr${h.count - prev.position === 1 ? "y" : "ies"} deleted (head records ${h.count})`,
    });
  } else if (h.count !== prev.position || h.lastHash !== prev.hash || h.lastSequenceNumber !== prev.sequenceNumber) {
    problem({
      ...ref,
      position: prev.position,
      sequenceNumber: prev.sequenceNumber,
      problem: `newest entry does not match the chain head (head records position ${h.count}): inserted or replaced`,
    });
  }
}
