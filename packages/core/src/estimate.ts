// What the migration will cost before it runs: items needing work (from a sample run through the
// rules in dry run), the sweep's and verify's capacity, the normalizer's and audit logger's extra
// writes per day, and what that costs on-demand and provisioned, against the plan's budget.
import { GetMetricStatisticsCommand, type CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { NumberValue, ScanCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { TableNames } from "./names.js";
import { scanPatchFor } from "./rule-context.js";
import { needsLatestHistory, type Item } from "./rules.js";
import { TABLES, type SiteLogixTable } from "./schema.js";
import { subscriptionsOf } from "./subscriptions.js";
import { errorName } from "./errors.js";

export interface Pricing {
  region: string;
  currency: string;
  asOf: string;
  onDemand: { perMillionWriteRequestUnits: number; perMillionReadRequestUnits: number };
  provisioned: { perWcuHour: number; perRcuHour: number; targetUtilization: number };
  storagePerGbMonth: number;
  pitrPerGbMonth: number;
  budgetPerMonth: number;
}

const utf8 = (s: string) => Buffer.byteLength(s, "utf8");

/** DynamoDB's size of a value (AWS's published rules: names and values, numbers ~1 byte per 2 digits). */
function valueSize(value: unknown): number {
  if (typeof value === "string") return utf8(value);
  if (typeof value === "number" || typeof value === "bigint" || value instanceof NumberValue)
    return Math.ceil(String(value).replace(/[-.]/g, "").length / 2) + 1;
  if (typeof value === "boolean" || value === null || value === undefined) return 1;
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) return [...value].reduce<number>((n, v) => n + valueSize(v), 0);
  if (Array.isArray(value)) return 3 + value.reduce<number>((n, v) => n + 1 + valueSize(v), 0);
  return 3 + Object.entries(value as Item).reduce((n, [k, v]) => n + 1 + utf8(k) + valueSize(v), 0);
}

/** Size of an item as DynamoDB bills it. */
export function itemSizeBytes(item: Item): number {
  return Object.entries(item).reduce((n, [k, v]) => n + utf8(k) + valueSize(v), 0);
}

/** Write units of one write of an item this size (1 per started KB). */
export const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));

/** A sample spread over the key space: the first page of each of `segments` parallel-scan segments. */
async function sampleItems(
  doc: DynamoDBDocumentClient,
  tableName: string,
  size: number,
  segments = 16,
): Promise<Item[]> {
  const perSegment = Math.max(1, Math.ceil(size / segments));
  const pages = await Promise.all(
    Array.from({ length: segments }, (_, segment) =>
      doc.send(new ScanCommand({ TableName: tableName, Segment: segment, TotalSegments: segments, Limit: perSegment })),
    ),
  );
  return pages.flatMap((p) => (p.Items ?? []) as Item[]);
}

export interface WriteRate {
  writesPerDay?: number;
  source: "option" | "cloudwatch" | "unknown";
  note?: string;
}

/**
 * Writes per day from CloudWatch's ConsumedWriteCapacityUnits over the last 24 hours, divided by the
 * average write units of an item (from the sample). Metrics exist only for tables on AWS.
 */
export async function writeRateFromCloudWatch(
  cloudwatch: CloudWatchClient,
  tableName: string,
  avgWriteUnits: number,
  now = new Date(),
): Promise<WriteRate> {
  try {
    const out = await cloudwatch.send(
      new GetMetricStatisticsCommand({
        Namespace: "AWS/DynamoDB",
        MetricName: "ConsumedWriteCapacityUnits",
        Dimensions: [{ Name: "TableName", Value: tableName }],
        StartTime: new Date(now.getTime() - 86_400_000),
        EndTime: now,
        Period: 86_400,
        Statistics: ["Sum"],
      }),
    );
    const units = (out.Datapoints ?? []).reduce((n, d) => n + (d.Sum ?? 0), 0);
    return { writesPerDay: Math.round(units / avgWriteUnits), source: "cloudwatch" };
  } catch (err) {
    return { source: "unknown", note: `CloudWatch unavailable (${errorName(err)}): pass --writes-per-day` };
  }
}

export interface TableEstimate {
  table: SiteLogixTable;
  tableName: string;
  itemCount: number;
  tableSizeBytes: number;
  avgItemBytes: number;
  sample: { items: number; needsWork: number; violations: number };
  /** Items the sweep will write, extrapolated from the sample. */
  needsWork: number;
  sweep: { writeUnits: number; readUnits: number };
  verify: { readUnits: number };
  writeRate: WriteRate;
  perDay?: { normalizerWriteUnits: number; auditEntries: number; auditWriteUnits: number; auditBytes: number };
  auditEntryBytes: number;
}

export interface EstimateOptions {
  dynamodb: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  names: TableNames;
  tables: SiteLogixTable[];
  sampleSize?: number;
  /** Application writes per day per table, when known; otherwise `writeRate` is asked. */
  writesPerDay?: number;
  writeRate?: (tableName: string, avgWriteUnits: number) => Promise<WriteRate>;
}

/** Fixed part of an audit entry besides the images: keys, ids, times, actor, changed names, hashes. */
const AUDIT_ENTRY_OVERHEAD_BYTES = 400;
/**
 * Per audit entry besides the entry's own write: the chain head's put (under 1 KB, in the same transaction: 2 units).
 */
const AUDIT_SMALL_WRITES = 2;

export async function estimateTable(options: EstimateOptions, table: SiteLogixTable): Promise<TableEstimate> {
  const tableName = options.names[table];
  const description = (await options.dynamodb.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  const itemCount = description?.ItemCount ?? 0;
  const tableSizeBytes = description?.TableSizeBytes ?? 0;
  const sample = await sampleItems(options.doc, tableName, options.sampleSize ?? 1000);

  let needsWork = 0;
  let violations = 0;
  let sampleBytes = 0;
  let sweepWriteUnitsInSample = 0;
  let historyQueries = 0;
  for (const item of sample) {
    const size = itemSizeBytes(item);
    sampleBytes += size;
    if (needsLatestHistory(table, item)) historyQueries++;
    const patch = await scanPatchFor(options.doc, table, tableName, item);
    if (patch.violations.length > 0) violations++;
    if (patch.set.length > 0) {
      needsWork++;
      // An update is billed on the larger of the item before and after.
      const added = patch.set.reduce(
        (n, a) =>
          n + utf8(a.attribute) + utf8(a.value) - (a.current !== undefined ? utf8(a.attribute) + utf8(a.current) : 0),
        60,
      );
      sweepWriteUnitsInSample += writeUnits(size + Math.max(0, added));
    }
  }
  const n = sample.length;
  const scale = n > 0 ? itemCount / n : 0;
  const avgItemBytes = n > 0 ? sampleBytes / n : 0;
  // Eventually consistent scan: half a read unit per 4 KB read; history queries likewise per profile.
  const scanReadUnits = Math.ceil(tableSizeBytes / 4096) * 0.5;
  const avgWriteUnits = writeUnits(avgItemBytes);
  const writeRate: WriteRate =
    options.writesPerDay !== undefined
      ? { writesPerDay: options.writesPerDay, source: "option" }
      : ((await options.writeRate?.(tableName, avgWriteUnits)) ?? { source: "unknown", note: "pass --writes-per-day" });

  const auditEntryBytes = Math.round(AUDIT_ENTRY_OVERHEAD_BYTES + avgItemBytes);
  const auditIndexes = TABLES.audit.gsis.length;
  const normalized = subscriptionsOf(table).some((s) => s.name === "normalizer");
  const needsWorkFraction = n > 0 ? needsWork / n : 0;
  let perDay: TableEstimate["perDay"];
  if (writeRate.writesPerDay !== undefined) {
    // Old code keeps writing camelCase only: about as many writes need normalizing as items do today.
    const normalizerWrites = normalized ? writeRate.writesPerDay * needsWorkFraction : 0;
    const auditEntries = writeRate.writesPerDay + normalizerWrites;
    perDay = {
      normalizerWriteUnits: Math.round(normalizerWrites * avgWriteUnits),
      auditEntries: Math.round(auditEntries),
      // The entry is written to the table in a transaction (twice the units) and to each of its GSIs (projection ALL).
      auditWriteUnits: Math.round(
        auditEntries * (writeUnits(auditEntryBytes) * (2 + auditIndexes) + AUDIT_SMALL_WRITES),
      ),
      auditBytes: Math.round(auditEntries * auditEntryBytes * (1 + auditIndexes)),
    };
  }
  return {
    table,
    tableName,
    itemCount,
    tableSizeBytes,
    avgItemBytes: Math.round(avgItemBytes),
    sample: { items: n, needsWork, violations },
    needsWork: Math.round(needsWork * scale),
    sweep: {
      writeUnits: Math.round(sweepWriteUnitsInSample * scale),
      readUnits: Math.round(scanReadUnits + historyQueries * scale * 0.5),
    },
    verify: { readUnits: Math.round(scanReadUnits) },
    writeRate,
    ...(perDay ? { perDay } : {}),
    auditEntryBytes,
  };
}

export interface CostLine {
  item: string;
  onDemand: number;
  provisioned: number;
}

export interface Estimate {
  pricing: Pricing;
  tables: TableEstimate[];
  oneTime: CostLine[];
  /** Undefined where the write rate is unknown. */
  monthly?: CostLine[];
  monthlyTotal?: { onDemand: number; provisioned: number };
  budget: { perMonth: number; withinOnDemand?: boolean; dominant?: string };
}

const DAYS_PER_MONTH = 30.4;
const HOURS_PER_MONTH = 730;
const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Prices write and read units at on-demand rates and at provisioned rates (capacity held at the target utilization).
 */
function price(
  pricing: Pricing,
  item: string,
  units: { write: number; read: number },
  spreadOverHours: number,
): CostLine {
  const onDemand =
    (units.write * pricing.onDemand.perMillionWriteRequestUnits +
      units.read * pricing.onDemand.perMillionReadRequestUnits) /
    1e6;
  const perHour = (u: number) => u / (spreadOverHours * 3600) / pricing.provisioned.targetUtilization;
  const provisioned =
    (perHour(units.write) * pricing.provisioned.perWcuHour + perHour(units.read) * pricing.provisioned.perRcuHour) *
    spreadOverHours;
  return { item, onDemand: round2(onDemand), provisioned: round2(provisioned) };
}

export async function estimate(options: EstimateOptions, pricing: Pricing): Promise<Estimate> {
  const tables: TableEstimate[] = [];
  for (const table of options.tables) tables.push(await estimateTable(options, table));
  const sum = (f: (t: TableEstimate) => number) => tables.reduce((n, t) => n + f(t), 0);

  const oneTime = [
    price(pricing, "sweep", { write: sum((t) => t.sweep.writeUnits), read: sum((t) => t.sweep.readUnits) }, 1),
    price(pricing, "verify", { write: 0, read: sum((t) => t.verify.readUnits) }, 1),
  ];
  const known = tables.every((t) => t.perDay);
  if (!known) return { pricing, tables, oneTime, budget: { perMonth: pricing.budgetPerMonth } };

  const perMonth = (f: (p: NonNullable<TableEstimate["perDay"]>) => number) =>
    sum((t) => f(t.perDay!)) * DAYS_PER_MONTH;
  const auditGb = perMonth((p) => p.auditBytes) / 1e9;
  const storage = {
    item: "audit storage growth (+PITR)",
    onDemand: round2(auditGb * (pricing.storagePerGbMonth + pricing.pitrPerGbMonth)),
    provisioned: 0,
  };
  storage.provisioned = storage.onDemand;
  const monthly = [
    price(pricing, "normalizer writes", { write: perMonth((p) => p.normalizerWriteUnits), read: 0 }, HOURS_PER_MONTH),
    price(pricing, "audit writes", { write: perMonth((p) => p.auditWriteUnits), read: 0 }, HOURS_PER_MONTH),
    storage,
  ];
  const monthlyTotal = {
    onDemand: round2(monthly.reduce((n, l) => n + l.onDemand, 0)),
    provisioned: round2(monthly.reduce((n, l) => n + l.provisioned, 0)),
  };
  const dominant = [...monthly].sort((a, b) => b.onDemand - a.onDemand)[0]!;
  return {
    pricing,
    tables,
    oneTime,
    monthly,
    monthlyTotal,
    budget: {
      perMonth: pricing.budgetPerMonth,
      withinOnDemand: monthlyTotal.onDemand <= pricing.budgetPerMonth,
      dominant: dominant.item,
    },
  };
}
