// Rollback of the index phase (the seed's "Delete Failed GSI"): delete a target GSI that failed to
// build, is stuck, or misbehaves. Only an index the migration itself builds on a live table may go:
// a legacy index the application still queries, an index of a new table, or one the schema does not
// know is refused, as is a state in which DynamoDB cannot delete it.
import {
  UpdateTableCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndexDescription,
} from "@aws-sdk/client-dynamodb";
import type { Ledger } from "../ledger/index.js";
import { TABLES, type SiteLogixTable } from "../schema.js";
import { describeTable } from "../tables.js";
import { sleep } from "../sleep.js";
import { recordRollback, type RollbackRecord } from "./rollback-record.js";

export class RollbackRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RollbackRefusedError";
  }
}

export interface IndexRollbackPlan {
  table: SiteLogixTable;
  tableName: string;
  index: string;
  /** The index's state now (ACTIVE, or CREATING while it backfills). */
  state: string;
  /** DescribeTable's approximate item count of the index (updated about every six hours on AWS). */
  itemCount?: number;
}

/** Why the migration may not delete `gsi` of `table`, or undefined when it may. */
function refusal(table: SiteLogixTable, tableName: string, gsi: GlobalSecondaryIndexDescription): string | undefined {
  const name = gsi.IndexName ?? "";
  const def = TABLES[table].gsis.find((g) => g.name === name);
  if (!def)
    return `${tableName} has no GSI ${name} in the schema: the migration never deletes an index it does not know`;
  if (def.from === "legacy")
    return `${name} is a legacy index of ${tableName} that the application still queries: it is never rolled back`;
  if (def.from !== "index")
    return (
      `${name} was created with the new table ${tableName}, not by the index phase: ` +
      "roll back the table instead (runbook)"
    );
  if (gsi.IndexStatus === "DELETING") return `${name} on ${tableName} is already being deleted`;
  if (gsi.IndexStatus === "CREATING" && gsi.Backfilling !== true) {
    return (
      `${name} on ${tableName} is CREATING past its backfill, when DynamoDB cannot delete it: ` +
      "wait until it is ACTIVE, then run this again"
    );
  }
  if (gsi.IndexStatus !== "ACTIVE" && gsi.IndexStatus !== "CREATING")
    return `${name} on ${tableName} is ${gsi.IndexStatus}: wait until it is ACTIVE`;
  return undefined;
}

/** What `rollback index` would delete; throws RollbackRefusedError saying why not. */
export async function planIndexRollback(
  dynamodb: DynamoDBClient,
  table: SiteLogixTable,
  tableName: string,
  index?: string,
): Promise<IndexRollbackPlan> {
  const described = await describeTable(dynamodb, tableName);
  if (!described) throw new RollbackRefusedError(`table ${tableName} not found`);
  const live = described.GlobalSecondaryIndexes ?? [];
  let gsi: GlobalSecondaryIndexDescription | undefined;
  if (index !== undefined) {
    gsi = live.find((g) => g.IndexName === index);
    if (!gsi)
      throw new RollbackRefusedError(
        `${tableName} has no GSI ${index} (it has: ${live.map((g) => g.IndexName).join(", ") || "none"})`,
      );
  } else {
    const built = live.filter((g) => TABLES[table].gsis.some((d) => d.name === g.IndexName && d.from === "index"));
    if (built.length === 0)
      throw new RollbackRefusedError(`${tableName} has no GSI built by the index phase: nothing to roll back`);
    if (built.length > 1)
      throw new RollbackRefusedError(
        `${tableName} has several GSIs built by the index phase: ` +
          `name one with --index (${built.map((g) => g.IndexName).join(", ")})`,
      );
    gsi = built[0]!;
  }
  const problem = refusal(table, tableName, gsi);
  if (problem) throw new RollbackRefusedError(problem);
  const busy = live.filter((g) => g !== gsi && g.IndexStatus !== "ACTIVE");
  if (busy.length > 0) {
    const states = busy.map((g) => `${g.IndexName} is ${g.IndexStatus}`).join(", ");
    throw new RollbackRefusedError(`${tableName}: ${states}; DynamoDB makes one index change at a time: wait`);
  }
  return {
    table,
    tableName,
    index: gsi.IndexName!,
    state: gsi.IndexStatus!,
    ...(gsi.ItemCount !== undefined ? { itemCount: gsi.ItemCount } : {}),
  };
}

export interface RollbackResult {
  record: RollbackRecord;
  /** Set when the ledger could not record it (the rollback itself happened). */
  ledgerProblem?: string;
}

/** Deletes the planned index and waits until it is gone (DynamoDB keeps serving the table meanwhile). */
export async function rollbackIndex(
  dynamodb: DynamoDBClient,
  ledger: Ledger,
  plan: IndexRollbackPlan,
  options: { maxWaitMs?: number; pollMs?: number } = {},
): Promise<RollbackResult> {
  const record: RollbackRecord = {
    table: plan.table,
    tableName: plan.tableName,
    kind: "index",
    index: plan.index,
    startedAt: new Date().toISOString(),
    status: "started",
  };
  await recordRollback(ledger, record);
  await dynamodb.send(
    new UpdateTableCommand({
      TableName: plan.tableName,
      GlobalSecondaryIndexUpdates: [{ Delete: { IndexName: plan.index } }],
    }),
  );
  const deadline = Date.now() + (options.maxWaitMs ?? 1_800_000);
  for (;;) {
    const described = await describeTable(dynamodb, plan.tableName);
    if (!described?.GlobalSecondaryIndexes?.some((g) => g.IndexName === plan.index)) {
      record.status = "done";
      break;
    }
    if (Date.now() > deadline) {
      record.status = "timed-out";
      break;
    }
    await sleep(options.pollMs ?? 1000);
  }
  record.finishedAt = new Date().toISOString();
  const ledgerProblem = await recordRollback(ledger, record);
  return { record, ...(ledgerProblem ? { ledgerProblem } : {}) };
}

/** What the operator does next (the index would be built again by a deploy at the index phase). */
export function indexRollbackFollowUp(plan: IndexRollbackPlan): string[] {
  return [
    `SST's state still lists ${plan.index}: set this stage's phase back to "expand" in migration.config.ts ` +
      "and run `npx sst refresh --stage <stage>` " +
      '(a deploy at phase "index" builds it again once the gate is green)',
    `find what made it fail: \`sitelogix-migrate verify --table ${plan.table}\` names the items that block the gate; ` +
      "fix them, then deploy the index phase again",
  ];
}
