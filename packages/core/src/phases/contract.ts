// The contract phase: the GSIs the target schema retires are dropped, once every target GSI is
// ACTIVE (the application reads the new ones by then).
import { gsisIn, targetGsis } from "../schema.js";
import { indexPhase } from "./build-indexes.js";
import { gsiStates, type MigrationPhase } from "./phase.js";

export const contractPhase: MigrationPhase = {
  name: "contract",
  async precondition({ table, tableName, described }, changes) {
    if (!changes.some((c) => c.action === "delete")) return [];
    const unbuilt = indexPhase.check(table, described);
    return unbuilt.length > 0
      ? [`${tableName}: the index phase has not finished (${unbuilt.join(", ")}); deploy the index phase first`]
      : [];
  },
  check: (table, described) => {
    const target = new Set(targetGsis(table).map((g) => g.name));
    const states = gsiStates(described);
    return gsisIn(table, "index")
      .filter((g) => !target.has(g.name) && states.has(g.name))
      .map((g) => `${g.name} is still there (retiring)`);
  },
  rollback: (_table, tableName) => [
    `a dropped GSI is re-created by deploying the index phase again: DynamoDB backfills it from ${tableName}'s items`,
    "until it is ACTIVE, no reader may depend on it",
  ],
};
