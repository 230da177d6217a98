// The expand phase: streams on, the normalizer and the audit logger attached, the new tables
// created; no GSI of an existing table changes, so it can never race the application.
import { TABLES } from "../schema.js";
import type { MigrationPhase } from "./phase.js";

export const expandPhase: MigrationPhase = {
  name: "expand",
  precondition: async () => [],
  check: (table, described) =>
    TABLES[table].existing && described.StreamSpecification?.StreamViewType !== "NEW_AND_OLD_IMAGES"
      ? ["the stream is not on with NEW_AND_OLD_IMAGES"]
      : [],
  rollback: (table) => [
    "deploy the legacy phase: the stream functions and their mappings go, the tables and every item stay",
    ...(TABLES[table].existing
      ? ["the attributes the migrator added stay on the items; they are additive and no index reads them yet"]
      : []),
  ],
};
