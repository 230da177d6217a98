// The tables, declared from the core schema (the one description of keys and GSIs).
import { gsisIn, tablesIn, TABLES, type LogicalTable, type Phase } from "@sitelogix/core/schema";

function dynamo(table: LogicalTable, phase: Phase) {
  const def = TABLES[table];
  const gsis = gsisIn(table, phase);
  const fields: Record<string, "string" | "number"> = {};
  for (const [name, type] of Object.entries(def.keyTypes)) fields[name] = type === "S" ? "string" : "number";
  for (const g of gsis) {
    fields[g.hashKey] = "string";
    if (g.rangeKey) fields[g.rangeKey] = "string";
  }
  return new sst.aws.Dynamo(def.linkName, {
    fields,
    primaryIndex: { hashKey: def.hashKey, ...(def.rangeKey ? { rangeKey: def.rangeKey } : {}) },
    globalIndexes: Object.fromEntries(gsis.map((g) => [g.name, { hashKey: g.hashKey, ...(g.rangeKey ? { rangeKey: g.rangeKey } : {}), projection: "all" as const }])),
    ...(def.streamView ? { stream: "new-and-old-images" as const } : {}),
    ...(def.ttlAttribute ? { ttl: def.ttlAttribute } : {}),
    deletionProtection: $app.stage === "prod",
  });
}

export function tables(phase: Phase = "expand") {
  return Object.fromEntries(tablesIn(phase).map((def) => [def.logical, dynamo(def.logical, phase)]));
}
