// A migration phase as the deploy, `status` and the rehearsal all see it: what must hold before it
// touches a live table, what it changes there, how to tell it is done, and how to undo it.
import type { TableDescription } from "@aws-sdk/client-dynamodb";
import type { IndexChange } from "../indexes.js";
import type { LogicalTable, Phase } from "../schema.js";
import type { LiveTables } from "./live-tables.js";

/** One live table as a phase's precondition sees it. */
export interface LiveTable {
  table: LogicalTable;
  tableName: string;
  described: TableDescription;
  live: LiveTables;
}

export interface MigrationPhase {
  name: Phase;
  /** Why the phase may not change this live table now, one sentence each; empty when it may. */
  precondition(table: LiveTable, changes: readonly IndexChange[]): Promise<string[]>;
  /** What still differs from the phase's end state on this table; empty when the phase is done. */
  check(table: LogicalTable, described: TableDescription): string[];
  /** How an operator undoes the phase on one table, as steps. */
  rollback(table: LogicalTable, tableName: string): string[];
}

/** The GSIs a live table has and their states. */
export const gsiStates = (described: TableDescription) =>
  new Map((described.GlobalSecondaryIndexes ?? []).map((g) => [g.IndexName ?? "", g.IndexStatus ?? ""]));
