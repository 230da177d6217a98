// The single description of every table this project touches: the six SiteLogix tables (with the
// GSIs they have today and the ones the migration adds) and the migrator's own tables. Stacks,
// CLI and tests all read it; nothing else spells out a key schema.

/** Logical names of the SiteLogix application tables. */
export const SITELOGIX_TABLES = [
  "reports",
  "personnel",
  "vendors",
  "constraints",
  "work-logs",
  "ai-analysis-cache",
] as const;
export type SiteLogixTable = (typeof SITELOGIX_TABLES)[number];

/** Logical names of the migrator's own tables. */
export const MIGRATOR_TABLES = ["audit", "ledger"] as const;
export type MigratorTable = (typeof MIGRATOR_TABLES)[number];

export type LogicalTable = SiteLogixTable | MigratorTable;

/**
 * Deploy phases, in order. `legacy` is production today; `expand` adds streams, PITR, the new tables
 * and the stream functions; `index` creates the target GSIs; `contract` drops what the application
 * no longer uses.
 */
export const PHASES = ["legacy", "expand", "index", "contract"] as const;
export type Phase = (typeof PHASES)[number];

export interface GsiDef {
  name: string;
  hashKey: string;
  rangeKey?: string;
  /** First phase in which the index exists (`legacy`: it exists today). */
  from: Phase;
  /** First phase in which the index no longer exists. */
  until?: Phase;
}

export interface TableDef {
  logical: LogicalTable;
  /** Physical name outside SST (and the name of the adopted production table). */
  defaultName: string;
  /** Name of the SST link (`Resource.<linkName>`) that carries the physical name under `sst shell`. */
  linkName: string;
  hashKey: string;
  rangeKey?: string;
  /** Attribute types of the primary key; every GSI key attribute is S. */
  keyTypes: Record<string, "S" | "N">;
  /** True for the four tables that exist in production before the migration (adopted, never created). */
  existing: boolean;
  /** First phase in which the table exists. */
  from: Phase;
  streamView?: "NEW_AND_OLD_IMAGES";
  ttlAttribute?: string;
  gsis: GsiDef[];
}

const appTable = (
  logical: SiteLogixTable,
  linkName: string,
  existing: boolean,
  gsis: GsiDef[],
  extra: Partial<TableDef> = {},
): TableDef => ({
  logical,
  defaultName: `sitelogix-${logical}`,
  linkName,
  hashKey: "PK",
  rangeKey: "SK",
  keyTypes: { PK: "S", SK: "S" },
  existing,
  from: existing ? "legacy" : "expand",
  streamView: "NEW_AND_OLD_IMAGES",
  gsis,
  ...extra,
});

const gsi = (name: string, hashKey: string, rangeKey: string | undefined, from: Phase, until?: Phase): GsiDef => ({
  name,
  hashKey,
  ...(rangeKey ? { rangeKey } : {}),
  from,
  ...(until ? { until } : {}),
});

export const TABLES: Record<LogicalTable, TableDef> = {
  reports: appTable("reports", "Reports", true, [
    gsi("GSI1-ProjectIndex", "project_id", "report_date", "legacy"),
    gsi("GSI2-ManagerIndex", "manager_id", "report_date", "legacy"),
    gsi("GSI3-StatusIndex", "status", "timestamp", "index"),
  ]),
  personnel: appTable("personnel", "Personnel", true, [
    gsi("GSI1-NameIndex", "full_name", undefined, "legacy"),
    gsi("GSI2-ProjectIndex", "project_id", undefined, "legacy", "contract"),
    gsi("GSI2-StatusIndex", "status", "dateLastSeen", "index"),
  ]),
  vendors: appTable("vendors", "Vendors", true, [
    gsi("GSI1-CompanyIndex", "company_name", undefined, "legacy"),
    gsi("GSI2-TypeIndex", "vendor_type", "dateLastSeen", "index"),
  ]),
  constraints: appTable("constraints", "Constraints", true, [
    gsi("GSI1-CategoryIndex", "category", "dateIdentified", "legacy"),
    gsi("GSI2-StatusIndex", "status", "severity", "legacy"),
    gsi("GSI3-ProjectDateIndex", "project_id", "report_date", "index"),
  ]),
  // New tables start empty, so their indexes are created with them: no backfill can race.
  "work-logs": appTable("work-logs", "WorkLogs", false, [
    gsi("GSI1-ProjectDateIndex", "project_id", "report_date", "expand"),
    gsi("GSI2-TeamIndex", "team_id", "report_date", "expand"),
  ]),
  "ai-analysis-cache": appTable(
    "ai-analysis-cache",
    "AiAnalysisCache",
    false,
    [
      gsi("GSI1-TypeIndex", "analysisType", "createdAt", "expand"),
      gsi("GSI2-ModelIndex", "modelUsed", "createdAt", "expand"),
    ],
    { ttlAttribute: "ttl" },
  ),
  // One entry per stream record. PK = the audited item (`<table>#<keys as JSON>`), SK = its stream
  // sequence number, so an item's history is one Query in stream order. Chain heads and chunks of
  // large entries live beside the entries; only entries carry the index keys, so only they are indexed.
  // The index hash keys are `<actor>#<shard>` / `<table>#<shard>` (packages/core/src/audit.ts) and the
  // sort key `<at>#<sequence number>`: a sweep's thousands of entries a second, all by one actor on one
  // table, spread over several index partitions instead of one.
  audit: {
    logical: "audit",
    defaultName: "sitelogix-audit-log",
    linkName: "AuditLog",
    hashKey: "PK",
    rangeKey: "SK",
    keyTypes: { PK: "S", SK: "S" },
    existing: false,
    from: "expand",
    ttlAttribute: "expiresAt",
    gsis: [
      gsi("GSI1-ActorIndex", "actorShard", "atSeq", "expand"),
      gsi("GSI2-TableIndex", "tableShard", "atSeq", "expand"),
    ],
  },
  // Migration state: when the normalizer went live, sweep checkpoints and results, gates, stream checkpoints.
  ledger: {
    logical: "ledger",
    defaultName: "sitelogix-migration-ledger",
    linkName: "MigrationLedger",
    hashKey: "PK",
    rangeKey: "SK",
    keyTypes: { PK: "S", SK: "S" },
    existing: false,
    from: "expand",
    gsis: [],
  },
};

const phaseIndex = (phase: Phase) => PHASES.indexOf(phase);

/** True when something that exists from `from` until (not including) `until` exists in `phase`. */
export function existsIn(phase: Phase, from: Phase, until?: Phase): boolean {
  return phaseIndex(phase) >= phaseIndex(from) && (until === undefined || phaseIndex(phase) < phaseIndex(until));
}

/** The GSIs a table has in a phase. */
export function gsisIn(table: LogicalTable, phase: Phase): GsiDef[] {
  return TABLES[table].gsis.filter((g) => existsIn(phase, g.from, g.until));
}

/** The tables that exist in a phase. */
export function tablesIn(phase: Phase): TableDef[] {
  return Object.values(TABLES).filter((t) => existsIn(phase, t.from));
}

/** The GSIs the migration ends with (14 over the six SiteLogix tables). */
export function targetGsis(table: LogicalTable): GsiDef[] {
  return gsisIn(table, "contract");
}

/** Every attribute that some key (primary or GSI, any phase) of the table uses, with its type. */
export function attributeDefinitions(table: LogicalTable, phase: Phase): Record<string, "S" | "N"> {
  const def = TABLES[table];
  const attrs: Record<string, "S" | "N"> = { ...def.keyTypes };
  for (const g of gsisIn(table, phase)) {
    attrs[g.hashKey] = "S";
    if (g.rangeKey) attrs[g.rangeKey] = "S";
  }
  return attrs;
}

/** The key attributes of a table or a GSI, hash key first. */
export function keyAttributes(def: { hashKey: string; rangeKey?: string | undefined }): string[] {
  return def.rangeKey ? [def.hashKey, def.rangeKey] : [def.hashKey];
}

/** A KeySchema for a table or a GSI. */
export function keySchema(def: { hashKey: string; rangeKey?: string | undefined }) {
  return keyAttributes(def).map((AttributeName, i) => ({
    AttributeName,
    KeyType: i === 0 ? ("HASH" as const) : ("RANGE" as const),
  }));
}

export function isSiteLogixTable(name: string): name is SiteLogixTable {
  return (SITELOGIX_TABLES as readonly string[]).includes(name);
}

/** The primary key of an item of `table`, e.g. `{ PK, SK }`. Throws when a key attribute is missing. */
export function itemKey(table: LogicalTable, item: Record<string, unknown>): Record<string, string> {
  const def = TABLES[table];
  const key: Record<string, string> = {};
  for (const name of keyAttributes(def)) {
    const value = item[name];
    if (typeof value !== "string" || value === "") throw new Error(`${table} item has no string key attribute ${name}`);
    key[name] = value;
  }
  return key;
}
