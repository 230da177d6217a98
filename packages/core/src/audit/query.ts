// Compliance queries: one item's history (one Query on its partition), or everything of one actor
// or one table in a time range (the sharded indexes, merged back into time order).
import { paginateQuery, type QueryCommandInput } from "@aws-sdk/client-dynamodb";
import { entityId, type AuditEntry } from "./entry.js";
import {
  AUDIT_INDEX_SHARDS,
  AUDIT_INDEXES,
  decodeEntry,
  ENTRY_PREFIX,
  entryItems,
  pages,
  type AuditTable,
} from "./store.js";
import type { AttributeMap } from "./values.js";

export interface TimeRange {
  /** ISO time, inclusive. */
  from?: string;
  /** ISO time, inclusive. */
  to?: string;
}

/** ISO time bounds (inclusive) as a predicate on an entry's `at`. */
function timeFilter(range: TimeRange): (at: string) => boolean {
  return (at) => (range.from === undefined || at >= range.from) && (range.to === undefined || at <= range.to);
}

/** Every entry of one item, in stream order. */
export async function* history(
  audit: AuditTable,
  table: string,
  keys: Record<string, string>,
  range: TimeRange = {},
): AsyncGenerator<AuditEntry> {
  const pager = paginateQuery(
    { client: audit.dynamodb },
    {
      TableName: audit.tableName,
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
export function byActor(audit: AuditTable, actor: string, range: TimeRange = {}): AsyncGenerator<AuditEntry> {
  return indexed(audit, AUDIT_INDEXES.actor, "actorShard", actor, range);
}

/** Entries of one table (logical name), oldest first. */
export function byTable(audit: AuditTable, table: string, range: TimeRange = {}): AsyncGenerator<AuditEntry> {
  return indexed(audit, AUDIT_INDEXES.table, "tableShard", table, range);
}

function indexed(
  audit: AuditTable,
  indexName: string,
  attribute: string,
  value: string,
  range: TimeRange,
): AsyncGenerator<AuditEntry> {
  // Key values cannot be empty strings: open bounds are years 0000 and 9999.
  const from = range.from ?? "0000";
  const to = `${range.to ?? "9999"}#~`;
  const shards = Array.from({ length: AUDIT_INDEX_SHARDS }, (_, shard) => {
    const input: QueryCommandInput = {
      TableName: audit.tableName,
      IndexName: indexName,
      KeyConditionExpression: "#shard = :shard AND atSeq BETWEEN :from AND :to",
      ExpressionAttributeNames: { "#shard": attribute },
      ExpressionAttributeValues: { ":shard": { S: `${value}#${shard}` }, ":from": { S: from }, ":to": { S: to } },
      Limit: 200,
    };
    return pages(paginateQuery({ client: audit.dynamodb }, input));
  });
  return withChunks(
    audit,
    mergeAscending(shards, (item) => item.atSeq?.S ?? ""),
  );
}

/** Entries found through an index, with the chunks of large ones read from their partition. */
async function* withChunks(audit: AuditTable, entries: AsyncIterable<AttributeMap>): AsyncGenerator<AuditEntry> {
  for await (const item of entries) {
    const chunks: Uint8Array[] = [];
    if (item.payloadChunks) {
      const sk = item.SK?.S ?? "";
      const pager = paginateQuery(
        { client: audit.dynamodb },
        {
          TableName: audit.tableName,
          KeyConditionExpression: "PK = :pk AND begins_with(SK, :chunk)",
          ExpressionAttributeValues: { ":pk": item.PK!, ":chunk": { S: `${sk}#C#` } },
        },
      );
      for await (const chunk of pages(pager)) if (chunk.data?.B) chunks.push(chunk.data.B);
    }
    yield decodeEntry({ item, chunks });
  }
}

/** Merges ascending streams into one ascending stream, reading one item ahead per stream. */
async function* mergeAscending<T>(streams: AsyncIterator<T>[], key: (t: T) => string): AsyncGenerator<T> {
  const heads = await Promise.all(streams.map((s) => s.next()));
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (h.done) continue;
      const current = best < 0 ? undefined : (heads[best] as IteratorYieldResult<T>).value;
      if (current === undefined || key(h.value) < key(current)) best = i;
    }
    if (best < 0) return;
    yield (heads[best] as IteratorYieldResult<T>).value;
    heads[best] = await streams[best]!.next();
  }
}
