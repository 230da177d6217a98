// A stand-in for the live account in the infra tests: the tables as they would be after deploying
// `phase` (or production before this app, `legacy`), and an index gate that is open or closed.
import type { TableDescription } from "@aws-sdk/client-dynamodb";
import type { TableNames } from "@sitelogix/core/names";
import { tablesIn, type LogicalTable, type Phase } from "@sitelogix/core/schema";
import { createTableInput } from "@sitelogix/core/tables";
import type { LiveTables } from "../../stacks/deploy-plan.js";

export interface LiveState {
  /** The phase the live tables are at; undefined: no table exists yet. */
  phase?: Phase;
  /** Reasons the index gate is closed (the same for every table); empty: open. */
  gateClosed?: string[];
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
  };
}

export function fakeLiveTables(state: LiveState): (names: TableNames) => LiveTables {
  return (names) => ({
    async describe(tableName) {
      if (!state.phase) return undefined;
      const def = tablesIn(state.phase).find((t) => names[t.logical] === tableName);
      return def ? describeAt(def.logical, tableName, state.phase) : undefined;
    },
    async indexGate(table) {
      const reasons = state.gateClosed ?? [];
      return { table, allowed: reasons.length === 0, reasons };
    },
    close() {},
  });
}
