// The legacy phase: the tables as production has them today, with no migrator attached.
import { gsisIn } from "../schema.js";
import { gsiStates, type MigrationPhase } from "./phase.js";

export const legacyPhase: MigrationPhase = {
  name: "legacy",
  precondition: async () => [],
  check: (table, described) => {
    const states = gsiStates(described);
    return gsisIn(table, "legacy")
      .filter((g) => !states.has(g.name))
      .map((g) => `${g.name} is missing`);
  },
  rollback: () => ["nothing to undo: the legacy phase is the tables as the application has them"],
};
