// A stand-in for the live account in the infra tests: the tables as they would be after deploying
// `phase` (or production before this app, `legacy`), changed where a test says so, and an index
// gate that is open or closed.
import type { TableDescription } from "@aws-sdk/client-dynamodb";
import type { KeyManager } from "@sitelogix/core/adoption";
import type { TableNames } from "@sitelogix/core/names";
import { tablesIn, type LogicalTable, type Phase } from "@sitelogix/core/schema";
import { createTableInput } from "@sitelogix/core/tables";
import type { LiveTables } from "../../stacks/deploy-plan.js";

export interface LiveState {
  /** The phase the live tables are at; undefined: no table exists yet. */
  phase?: Phase;
  /** Reasons the index gate is closed (the same for every table); empty: open. */
  gateClosed?: string[];
  /** Changes a table's DescribeTable answer (as DynamoDB would describe a table set up differently). */
  change?: Partial<Record<LogicalTable, (description: TableDescription) => TableDescription>>;
  /** KMS keys and who manages them; a key not listed is AWS-managed. */
  keys?: Record<string, KeyManager>;
}

export function describeAt(table: LogicalTable, tableName: string, phase: Phase): TableDescription {
  const input = createTableInput(table, tableName, phase);
  return {
    TableName: tableName,
    TableStatus: "ACTIVE",
    KeySchema: input.KeySchema,
    AttributeDefinitions: input.AttributeDefinitions,
    BillingModeSummary: { BillingMode: input.BillingMode },
    ...(input.GlobalSecondaryIndexes
      ? { GlobalSecondaryIndexes: input.GlobalSecondaryIndexes.map((g) => ({ ...g, IndexStatus: "ACTIVE" as const })) }
      : {}),
    // Production before the migration has no stream; every later phase has the one the stacks declare.
    ...(phase !== "legacy" && input.StreamSpecification ? { StreamSpecification: input.StreamSpecification } : {}),
  };
}

export function fakeLiveTables(state: LiveState): (names: TableNames) => LiveTables {
  return (names) => ({
    async describe(tableName) {
      if (!state.phase) return undefined;
      const def = tablesIn(state.phase).find((t) => names[t.logical] === tableName);
      if (!def) return undefined;
      const described = describeAt(def.logical, tableName, state.phase);
      return state.change?.[def.logical]?.(described) ?? described;
    },
    async keyManager(keyArn) {
      return state.keys?.[keyArn] ?? "AWS";
    },
    async indexGate(table) {
      const reasons = state.gateClosed ?? [];
      return { table, allowed: reasons.length === 0, reasons };
    },
    close() {},
  });
}
