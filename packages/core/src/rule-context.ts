// The rule context of an item: what derivePatch needs beyond the item itself (a person's latest
// HISTORY# visit). One place for every caller (normalizer, sweep, verify, estimate, rehearsal), so
// they all derive the same patch from the same item.
import { paginateQuery, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { derivePatch, needsLatestHistory, type Item, type Patch, type RuleContext } from "./rules.js";
import { TABLES, type SiteLogixTable } from "./schema.js";
import { retryThrottled } from "./throttler.js";

/**
 * The latest reportDate among a person's HISTORY# items (undefined when there are none). All of them
 * are read: nothing guarantees that HISTORY# sort keys order by date.
 */
export async function latestHistoryReportDate(
  doc: DynamoDBDocumentClient,
  tableName: string,
  pk: string,
  options: { consistentRead?: boolean; abortSignal?: AbortSignal } = {},
): Promise<string | undefined> {
  let latest: string | undefined;
  const pages = paginateQuery(
    { client: doc },
    {
      TableName: tableName,
      KeyConditionExpression: "PK = :pk AND begins_with(SK, :history)",
      ExpressionAttributeValues: { ":pk": pk, ":history": "HISTORY#" },
      ProjectionExpression: "reportDate",
      ...(options.consistentRead ? { ConsistentRead: true } : {}),
    },
    ...(options.abortSignal ? [{ abortSignal: options.abortSignal }] : []),
  );
  for await (const page of pages) {
    for (const item of page.Items ?? []) {
      const date = item.reportDate;
      if (typeof date === "string" && date !== "" && (latest === undefined || date > latest)) latest = date;
    }
  }
  return latest;
}

export interface ContextOptions {
  /** The normalizer reads consistently, to see the HISTORY# write whose stream record it handles. */
  consistentRead?: boolean;
  signal?: AbortSignal;
  /**
   * Retry throttling that outlasts the SDK's retries (scans: sweep, verify, estimate), reporting each
   * through `onThrottle`. The normalizer does not: its failed record is retried by Lambda.
   */
  retryThrottling?: boolean;
  onThrottle?: () => void;
}

/**
 * The context `item` is derived in: the writer's mode (and write time), plus the latest visit where the rules need it.
 */
export async function ruleContext(
  doc: DynamoDBDocumentClient,
  table: SiteLogixTable,
  tableName: string,
  item: Item,
  base: RuleContext,
  options: ContextOptions = {},
): Promise<RuleContext> {
  if (!needsLatestHistory(table, item)) return base;
  const pk = String(item[TABLES[table].hashKey]);
  const read = {
    ...(options.consistentRead ? { consistentRead: true } : {}),
    ...(options.signal ? { abortSignal: options.signal } : {}),
  };
  const query = () => latestHistoryReportDate(doc, tableName, pk, read);
  const latest = options.retryThrottling
    ? await retryThrottled(query, {
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onThrottle ? { onThrottle: options.onThrottle } : {}),
      })
    : await query();
  return latest === undefined ? base : { ...base, latestHistoryReportDate: latest };
}

/**
 * The patch that normalizes `item` as it is in the table now: its rule context read, then the rules.
 * Takes `ruleContext`'s arguments.
 */
export async function derivePatchFor(...args: Parameters<typeof ruleContext>): Promise<Patch> {
  const [, table, , item] = args;
  return derivePatch(table, item, await ruleContext(...args));
}

/** The patch a scan (sweep, verify, estimate) derives: in the sweep's mode, its throttling retried. */
export function scanPatchFor(
  doc: DynamoDBDocumentClient,
  table: SiteLogixTable,
  tableName: string,
  item: Item,
  options: Pick<ContextOptions, "signal" | "onThrottle"> = {},
): Promise<Patch> {
  return derivePatchFor(doc, table, tableName, item, { mode: "sweep" }, { ...options, retryThrottling: true });
}
