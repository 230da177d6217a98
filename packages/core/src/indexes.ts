// The index and contract phases on an endpoint (local rehearsal; in AWS the stacks do it), and the
// checks that a built index holds exactly the items it should.
import { sleep } from "./sleep.js";
import {
  DescribeTableCommand,
  UpdateTableCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndexUpdate,
} from "@aws-sdk/client-dynamodb";
import { paginateQuery, paginateScan, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { TableNames } from "./names.js";
import {
  gsisIn,
  keyAttributes,
  keySchema,
  TABLES,
  type GsiDef,
  type LogicalTable,
  type Phase,
  type SiteLogixTable,
} from "./schema.js";

/** One GSI creation or deletion: DynamoDB accepts only one per table update. */
export interface IndexChange {
  table: LogicalTable;
  action: "create" | "delete";
  index: string;
}

/** The changes that take a table from the GSIs it has to those of `phase`, creations first. */
export function indexChanges(table: LogicalTable, present: readonly string[], phase: Phase): IndexChange[] {
  const wanted = gsisIn(table, phase).map((g) => g.name);
  return [
    ...wanted.filter((name) => !present.includes(name)).map((index) => ({ table, action: "create" as const, index })),
    ...present.filter((name) => !wanted.includes(name)).map((index) => ({ table, action: "delete" as const, index })),
  ];
}

function gsiUpdate(gsi: GsiDef): {
  update: GlobalSecondaryIndexUpdate;
  attributes: { AttributeName: string; AttributeType: "S" }[];
} {
  const keys = keyAttributes(gsi);
  return {
    update: {
      Create: {
        IndexName: gsi.name,
        KeySchema: keySchema(gsi),
        Projection: { ProjectionType: "ALL" },
      },
    },
    attributes: keys.map((AttributeName) => ({ AttributeName, AttributeType: "S" as const })),
  };
}

/** Waits until the table and every GSI are ACTIVE and no GSI is being deleted. */
export async function waitForIndexes(
  dynamodb: DynamoDBClient,
  tableName: string,
  options: { timeoutMs?: number; pollMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  for (;;) {
    const table = (await dynamodb.send(new DescribeTableCommand({ TableName: tableName }))).Table;
    const busy =
      table?.TableStatus !== "ACTIVE" || (table.GlobalSecondaryIndexes ?? []).some((g) => g.IndexStatus !== "ACTIVE");
    if (!busy) return;
    if (Date.now() > deadline)
      throw new Error(
        `${tableName}: indexes still not ACTIVE after ${Math.round((options.timeoutMs ?? 600_000) / 1000)} s`,
      );
    await sleep(options.pollMs ?? 500);
  }
}

/**
 * Takes a table to the GSIs of `phase`, one table update at a time, each awaited until ACTIVE (or
 * gone). The caller decides whether the gate allows it.
 */
export async function applyIndexPhase(
  dynamodb: DynamoDBClient,
  names: TableNames,
  table: SiteLogixTable,
  phase: Phase,
  onChange?: (change: IndexChange) => void,
): Promise<IndexChange[]> {
  const tableName = names[table];
  await waitForIndexes(dynamodb, tableName);
  const present = (
    (await dynamodb.send(new DescribeTableCommand({ TableName: tableName }))).Table?.GlobalSecondaryIndexes ?? []
  ).map((g) => g.IndexName!);
  const changes = indexChanges(table, present, phase);
  for (const change of changes) {
    onChange?.(change);
    if (change.action === "create") {
      const { update, attributes } = gsiUpdate(TABLES[table].gsis.find((g) => g.name === change.index)!);
      await dynamodb.send(
        new UpdateTableCommand({
          TableName: tableName,
          AttributeDefinitions: attributes,
          GlobalSecondaryIndexUpdates: [update],
        }),
      );
    } else {
      await dynamodb.send(
        new UpdateTableCommand({
          TableName: tableName,
          GlobalSecondaryIndexUpdates: [{ Delete: { IndexName: change.index } }],
        }),
      );
    }
    await waitForIndexes(dynamodb, tableName);
  }
  return changes;
}

const isKey = (v: unknown) => typeof v === "string" && v !== "";
const keyOf = (item: Record<string, unknown>) => `${String(item.PK)}\u0000${String(item.SK)}`;

export interface IndexContentCheck {
  table: SiteLogixTable;
  index: string;
  /** Items of the table whose key attributes are all non-empty strings. */
  expected: number;
  /** Items returned by querying the index for every hash key value. */
  indexed: number;
  /** Sample keys the index lacks / holds without reason. */
  missing: string[];
  unexpected: string[];
  ok: boolean;
}

/**
 * Compares an index with its table: scans the table for the items the index should hold, then
 * queries the index once per distinct hash key value and compares the two sets of keys.
 */
export async function checkIndex(
  doc: DynamoDBDocumentClient,
  names: TableNames,
  table: SiteLogixTable,
  gsi: GsiDef,
): Promise<IndexContentCheck> {
  const tableName = names[table];
  const keys = keyAttributes(gsi);
  const projection = {
    ProjectionExpression: ["PK", "SK", ...keys].map((_, i) => `#a${i}`).join(", "),
    ExpressionAttributeNames: Object.fromEntries(["PK", "SK", ...keys].map((a, i) => [`#a${i}`, a])),
  };
  const expected = new Set<string>();
  const hashValues = new Set<string>();
  for await (const page of paginateScan(
    { client: doc },
    { TableName: tableName, ConsistentRead: true, ...projection },
  )) {
    for (const item of page.Items ?? []) {
      if (keys.every((k) => isKey(item[k]))) {
        expected.add(keyOf(item));
        hashValues.add(item[gsi.hashKey] as string);
      }
    }
  }
  const indexed = new Set<string>();
  for (const value of hashValues) {
    const pages = paginateQuery(
      { client: doc },
      {
        TableName: tableName,
        IndexName: gsi.name,
        KeyConditionExpression: "#h = :h",
        ExpressionAttributeNames: { "#h": gsi.hashKey },
        ExpressionAttributeValues: { ":h": value },
        ProjectionExpression: "PK, SK",
      },
    );
    for await (const page of pages) for (const item of page.Items ?? []) indexed.add(keyOf(item));
  }
  const missing = [...expected].filter((k) => !indexed.has(k));
  const unexpected = [...indexed].filter((k) => !expected.has(k));
  const sample = (xs: string[]) => xs.slice(0, 10).map((k) => k.replace("\u0000", " / "));
  return {
    table,
    index: gsi.name,
    expected: expected.size,
    indexed: indexed.size,
    missing: sample(missing),
    unexpected: sample(unexpected),
    ok: missing.length === 0 && unexpected.length === 0,
  };
}

export interface AccessPattern {
  name: string;
  table: SiteLogixTable;
  index: string;
  /** Newest first where the plan's screens show the latest on top. */
  newestFirst?: boolean;
  /**
   * Narrows the range key to a date range: the calendar year of the sampled item's range key (a fixed
   * range would find nothing once the data moves past it, as live writes do).
   */
  yearRange?: boolean;
}

/** The seven core access patterns of the SiteLogix schema, each served by one target GSI. */
export const ACCESS_PATTERNS: readonly AccessPattern[] = [
  { name: "reports of a project in a date range", table: "reports", index: "GSI1-ProjectIndex", yearRange: true },
  { name: "reports of a manager, newest first", table: "reports", index: "GSI2-ManagerIndex", newestFirst: true },
  { name: "report workflow queue: reports in a status, oldest first", table: "reports", index: "GSI3-StatusIndex" },
  { name: "find a person by name", table: "personnel", index: "GSI1-NameIndex" },
  {
    name: "personnel in a status, most recently seen first",
    table: "personnel",
    index: "GSI2-StatusIndex",
    newestFirst: true,
  },
  { name: "vendors of a type, most recently seen first", table: "vendors", index: "GSI2-TypeIndex", newestFirst: true },
  { name: "a project's constraints in report-date order", table: "constraints", index: "GSI3-ProjectDateIndex" },
];

export interface AccessPatternResult {
  name: string;
  index: string;
  /** The hash key value queried (taken from an item that has it). */
  value?: string;
  items: number;
  ok: boolean;
  problem?: string;
}

/**
 * Runs an access pattern as the application would: one Query on its index for a hash key value taken
 * from the table, and checks that results match the key condition and come in the promised order.
 */
export async function runAccessPattern(
  doc: DynamoDBDocumentClient,
  names: TableNames,
  pattern: AccessPattern,
): Promise<AccessPatternResult> {
  const gsi = TABLES[pattern.table].gsis.find((g) => g.name === pattern.index)!;
  const result = (ok: boolean, items: number, extra: Partial<AccessPatternResult> = {}): AccessPatternResult => ({
    name: pattern.name,
    index: pattern.index,
    items,
    ok,
    ...extra,
  });
  let sample: Record<string, unknown> | undefined;
  for await (const page of paginateScan(
    { client: doc },
    { TableName: names[pattern.table], IndexName: pattern.index, Limit: 25 },
  )) {
    sample = page.Items?.find((i) => isKey(i[gsi.hashKey]));
    if (sample) break;
  }
  if (!sample) return result(false, 0, { problem: "the index holds no item" });
  const value = sample[gsi.hashKey] as string;
  const year = pattern.yearRange && gsi.rangeKey ? String(sample[gsi.rangeKey]).slice(0, 4) : undefined;
  const range = year ? { from: `${year}-01-01`, to: `${year}-12-31` } : undefined;
  const items: Record<string, unknown>[] = [];
  const pages = paginateQuery(
    { client: doc },
    {
      TableName: names[pattern.table],
      IndexName: pattern.index,
      KeyConditionExpression: `#h = :h${range ? " AND #r BETWEEN :from AND :to" : ""}`,
      ExpressionAttributeNames: { "#h": gsi.hashKey, ...(range ? { "#r": gsi.rangeKey! } : {}) },
      ExpressionAttributeValues: { ":h": value, ...(range ? { ":from": range.from, ":to": range.to } : {}) },
      ScanIndexForward: !pattern.newestFirst,
    },
  );
  for await (const page of pages) items.push(...(page.Items ?? []));
  if (items.length === 0) return result(false, 0, { value, problem: "no items returned" });
  const wrong = items.find(
    (i) =>
      i[gsi.hashKey] !== value ||
      (range && !(String(i[gsi.rangeKey!]) >= range.from && String(i[gsi.rangeKey!]) <= range.to)),
  );
  if (wrong)
    return result(false, items.length, {
      value,
      problem: `an item outside the key condition: ${keyOf(wrong).replace("\u0000", " / ")}`,
    });
  if (gsi.rangeKey) {
    const order = items.map((i) => String(i[gsi.rangeKey!]));
    const sorted = [...order].sort();
    if (pattern.newestFirst) sorted.reverse();
    if (order.join("\n") !== sorted.join("\n"))
      return result(false, items.length, {
        value,
        problem: `not in ${pattern.newestFirst ? "descending" : "ascending"} ${gsi.rangeKey} order`,
      });
  }
  return result(true, items.length, { value });
}
