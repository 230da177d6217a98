// Creating and checking tables on an endpoint from the schema: `tables create`, local mode and the
// tests use it to stand up the legacy or target layout and to say how a live table differs from it.
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  ResourceNotFoundException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type CreateTableCommandInput,
  type DynamoDBClient,
  type TableDescription,
} from "@aws-sdk/client-dynamodb";
import type { TableNames } from "./names.js";
import { attributeDefinitions, gsisIn, keySchema, tablesIn, TABLES, type LogicalTable, type Phase } from "./schema.js";

/** `legacy`: production as it is once expanded (new tables included); `target`: the end state (14 GSIs). */
export type SchemaName = "legacy" | "target";
export const SCHEMA_PHASE: Record<SchemaName, Phase> = { legacy: "expand", target: "contract" };

export interface TableShape {
  keys: string[];
  gsis: { name: string; keys: string[]; projection: string }[];
  streamView?: string;
  ttlAttribute?: string;
}

const keyList = (hash: string, range?: string) => (range ? [`${hash} HASH`, `${range} RANGE`] : [`${hash} HASH`]);

export function expectedShape(table: LogicalTable, phase: Phase): TableShape {
  const def = TABLES[table];
  return {
    keys: keyList(def.hashKey, def.rangeKey),
    gsis: gsisIn(table, phase)
      .map((g) => ({ name: g.name, keys: keyList(g.hashKey, g.rangeKey), projection: "ALL" }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    ...(def.streamView ? { streamView: def.streamView } : {}),
    ...(def.ttlAttribute ? { ttlAttribute: def.ttlAttribute } : {}),
  };
}

export function shapeOf(description: TableDescription, ttlAttribute?: string): TableShape {
  const keys = (description.KeySchema ?? []).map((k) => `${k.AttributeName} ${k.KeyType}`);
  return {
    keys,
    gsis: (description.GlobalSecondaryIndexes ?? [])
      .map((g) => ({
        name: g.IndexName ?? "",
        keys: (g.KeySchema ?? []).map((k) => `${k.AttributeName} ${k.KeyType}`),
        projection: g.Projection?.ProjectionType ?? "",
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    ...(description.StreamSpecification?.StreamEnabled
      ? { streamView: description.StreamSpecification.StreamViewType }
      : {}),
    ...(ttlAttribute ? { ttlAttribute } : {}),
  };
}

/** Human-readable differences between what a table should be and what it is; empty when equal. */
export function diffShape(expected: TableShape, actual: TableShape): string[] {
  const diffs: string[] = [];
  if (expected.keys.join(",") !== actual.keys.join(","))
    diffs.push(`key schema is (${actual.keys.join(", ")}), expected (${expected.keys.join(", ")})`);
  const actualGsis = new Map(actual.gsis.map((g) => [g.name, g]));
  for (const g of expected.gsis) {
    const a = actualGsis.get(g.name);
    if (!a) diffs.push(`missing GSI ${g.name}`);
    else if (a.keys.join(",") !== g.keys.join(",") || a.projection !== g.projection)
      diffs.push(
        `GSI ${g.name} is (${a.keys.join(", ")}; ${a.projection}), expected (${g.keys.join(", ")}; ${g.projection})`,
      );
    actualGsis.delete(g.name);
  }
  for (const extra of actualGsis.keys()) diffs.push(`unexpected GSI ${extra}`);
  if (expected.streamView !== actual.streamView)
    diffs.push(`stream is ${actual.streamView ?? "off"}, expected ${expected.streamView ?? "off"}`);
  if (expected.ttlAttribute !== actual.ttlAttribute)
    diffs.push(`TTL is ${actual.ttlAttribute ?? "off"}, expected ${expected.ttlAttribute ?? "off"}`);
  return diffs;
}

export async function describeTable(
  dynamodb: DynamoDBClient,
  tableName: string,
): Promise<TableDescription | undefined> {
  try {
    return (await dynamodb.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return undefined;
    throw err;
  }
}

async function ttlAttributeOf(dynamodb: DynamoDBClient, tableName: string): Promise<string | undefined> {
  const out = await dynamodb.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
  const ttl = out.TimeToLiveDescription;
  return ttl?.TimeToLiveStatus === "ENABLED" || ttl?.TimeToLiveStatus === "ENABLING" ? ttl.AttributeName : undefined;
}

export function createTableInput(
  table: LogicalTable,
  tableName: string,
  phase: Phase,
  streams = true,
): CreateTableCommandInput {
  const def = TABLES[table];
  const gsis = gsisIn(table, phase);
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST",
    KeySchema: keySchema(def),
    AttributeDefinitions: Object.entries(attributeDefinitions(table, phase)).map(([AttributeName, AttributeType]) => ({
      AttributeName,
      AttributeType,
    })),
    ...(gsis.length > 0
      ? {
          GlobalSecondaryIndexes: gsis.map((g) => ({
            IndexName: g.name,
            KeySchema: keySchema(g),
            Projection: { ProjectionType: "ALL" as const },
          })),
        }
      : {}),
    ...(def.streamView && streams
      ? { StreamSpecification: { StreamEnabled: true, StreamViewType: def.streamView } }
      : {}),
  };
}

export interface EnsureResult {
  table: LogicalTable;
  name: string;
  action: "created" | "exists";
}

export class SchemaMismatchError extends Error {
  constructor(readonly mismatches: { table: LogicalTable; name: string; diffs: string[] }[]) {
    super(
      "tables exist with a different schema:\n" +
        mismatches.map((m) => `  ${m.name} (${m.table}): ${m.diffs.join("; ")}`).join("\n"),
    );
    this.name = "SchemaMismatchError";
  }
}

/**
 * Creates every table of the schema that does not exist, waits until ACTIVE and enables TTL.
 * Idempotent: an existing table with the expected shape is fine; any difference is an error.
 * `streams: false` creates the SiteLogix tables as production has them before the expand phase
 * (a rehearsal then turns the streams on with `enableStreams`, so old items have no stream records).
 */
export async function ensureTables(
  dynamodb: DynamoDBClient,
  names: TableNames,
  schema: SchemaName,
  options: { streams?: boolean } = {},
): Promise<EnsureResult[]> {
  const streams = options.streams ?? true;
  const phase = SCHEMA_PHASE[schema];
  const results: EnsureResult[] = [];
  const mismatches: SchemaMismatchError["mismatches"] = [];
  await Promise.all(
    tablesIn(phase).map(async (def) => {
      const name = names[def.logical];
      const existing = await describeTable(dynamodb, name);
      if (existing) {
        const expected = expectedShape(def.logical, phase);
        if (!streams) delete expected.streamView;
        const diffs = diffShape(expected, shapeOf(existing, await ttlAttributeOf(dynamodb, name)));
        if (diffs.length > 0) mismatches.push({ table: def.logical, name, diffs });
        results.push({ table: def.logical, name, action: "exists" });
        return;
      }
      await dynamodb.send(new CreateTableCommand(createTableInput(def.logical, name, phase, streams)));
      await waitUntilTableExists({ client: dynamodb, maxWaitTime: 300, minDelay: 1, maxDelay: 5 }, { TableName: name });
      if (def.ttlAttribute) {
        await dynamodb.send(
          new UpdateTimeToLiveCommand({
            TableName: name,
            TimeToLiveSpecification: { Enabled: true, AttributeName: def.ttlAttribute },
          }),
        );
      }
      results.push({ table: def.logical, name, action: "created" });
    }),
  );
  if (mismatches.length > 0) throw new SchemaMismatchError(mismatches);
  return results.sort((a, b) => a.name.localeCompare(b.name));
}

/** Turns on NEW_AND_OLD_IMAGES streams where they are off (the expand phase of a rehearsal). */
export async function enableStreams(
  dynamodb: DynamoDBClient,
  names: TableNames,
  tables: readonly LogicalTable[],
): Promise<void> {
  for (const table of tables) {
    const view = TABLES[table].streamView;
    const current = await describeTable(dynamodb, names[table]);
    if (!view || current?.StreamSpecification?.StreamEnabled) continue;
    await dynamodb.send(
      new UpdateTableCommand({
        TableName: names[table],
        StreamSpecification: { StreamEnabled: true, StreamViewType: view },
      }),
    );
    await waitUntilTableExists(
      { client: dynamodb, maxWaitTime: 300, minDelay: 1, maxDelay: 5 },
      { TableName: names[table] },
    );
  }
}
