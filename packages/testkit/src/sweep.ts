// Fixtures shared by the sweep and verify suites.
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { paginateScan, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import {
  derivePatchFor,
  Ledger,
  planSweep,
  runSweep,
  type Item,
  type SiteLogixTable,
  type SweepOptions,
  type SweepReport,
} from "@sitelogix/core";
import type { TestTables } from "./tables.js";

export const keyString = (key: { PK?: unknown; SK?: unknown }) => `${String(key.PK)}|${String(key.SK)}`;

/** Every item of a table, read consistently. */
export async function scanAll(doc: DynamoDBDocumentClient, tableName: string): Promise<Item[]> {
  const items: Item[] = [];
  for await (const page of paginateScan({ client: doc }, { TableName: tableName, ConsistentRead: true }))
    items.push(...((page.Items ?? []) as Item[]));
  return items;
}

/** The assignments an item still needs (empty when normalized), with the sweep's rule context. */
export async function pendingWork(doc: DynamoDBDocumentClient, table: SiteLogixTable, tableName: string, item: Item) {
  return (await derivePatchFor(doc, table, tableName, item, { mode: "sweep" })).set;
}

export const ledgerOf = (t: TestTables) => new Ledger(t.clients.doc, t.names.ledger);

/** Plans (start or resume) and runs a sweep of one table on the suite's tables. */
export async function sweepTable(
  t: TestTables,
  table: SiteLogixTable,
  options: Partial<Omit<SweepOptions, "table" | "tableName" | "ledger" | "plan">> & {
    resume?: boolean;
    dryRun?: boolean;
  } = {},
): Promise<SweepReport> {
  const ledger = ledgerOf(t);
  const { resume, dryRun, ...rest } = options;
  const plan = await planSweep(ledger, table, { resume, dryRun });
  if (plan.action === "skip") throw new Error(`nothing to sweep on ${table}`);
  return runSweep({
    clients: t.clients,
    ledger,
    table,
    tableName: t.names[table],
    plan,
    segments: 4,
    concurrency: 16,
    ...rest,
  });
}

type Next = (args: { input: unknown }) => Promise<unknown>;

/**
 * Runs `before(pk)` right before an UpdateItem on that partition key leaves the client (once per
 * key): the application's write then lands between the sweep's read and its write.
 */
export function interceptUpdates(client: DynamoDBClient, before: Map<string, () => Promise<void>>): void {
  const middleware = (next: Next) => async (args: { input: unknown }) => {
    const input = args.input as { UpdateExpression?: string; Key?: { PK?: { S?: string } } };
    const pk = input.UpdateExpression !== undefined ? input.Key?.PK?.S : undefined;
    const action = pk !== undefined ? before.get(pk) : undefined;
    if (pk !== undefined && action) {
      before.delete(pk);
      await action();
    }
    return next(args);
  };
  client.middlewareStack.add(middleware as never, { step: "build", name: "interceptUpdates" });
}
