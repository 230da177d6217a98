// The index phase: each table's target GSIs, built only behind its green index gate and never
// while another GSI of the table is changing.
import { targetGsis } from "../schema.js";
import { gsiStates, type MigrationPhase } from "./phase.js";

export const indexPhase: MigrationPhase = {
  name: "index",
  async precondition({ table, tableName, described, live }, changes) {
    const creates = changes.filter((c) => c.action === "create").map((c) => c.index);
    if (creates.length === 0) return [];
    const problems = (described.GlobalSecondaryIndexes ?? [])
      .filter((g) => g.IndexStatus !== "ACTIVE")
      .map((g) => `${tableName}: GSI ${g.IndexName} is ${g.IndexStatus}; wait until it is ACTIVE`);
    const gate = await live.indexGate(table);
    if (!gate.allowed)
      problems.push(
        `${tableName}: the index gate is closed, so ${creates.join(", ")} cannot be built: ${gate.reasons.join("; ")}`,
      );
    return problems;
  },
  check: (table, described) => {
    const states = gsiStates(described);
    return targetGsis(table)
      .filter((g) => states.get(g.name) !== "ACTIVE")
      .map((g) => `${g.name} is ${states.get(g.name) ?? "missing"}`);
  },
  rollback: (table, tableName) => [
    `sitelogix-migrate rollback index --table ${table} deletes the GSI this phase built on ${tableName}`,
    "then set the stage back to the expand phase in migration.config.ts before the next deploy",
  ],
};
