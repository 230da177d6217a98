// Where the migration stands, per table, from what DynamoDB and the ledger say, and the next step
// the operator should take. Everything is read, nothing is written; a table or endpoint that cannot
// be read is reported in the view, not thrown.
import { DescribeContinuousBackupsCommand, type DynamoDBClient, type TableDescription } from "@aws-sdk/client-dynamodb";
import type { BackupRecord, GateResult, Ledger, SweepRun, TableState } from "./ledger/index.js";
import { decideIndexGate } from "./phases/index-gate.js";
import { type SweepRunView, sweepRunView } from "./sweep/progress.js";
import type { TableNames } from "./names.js";
import { targetGsis, TABLES, type SiteLogixTable } from "./schema.js";
import { contractPhase } from "./phases/contract.js";
import { indexPhase } from "./phases/build-indexes.js";
import { gsiStates } from "./phases/phase.js";
import { describeTable } from "./tables.js";
import { describeError, isErrorNamed } from "./errors.js";

/** Migration phases of one table, in order. */
export const TABLE_PHASES = [
  "absent",
  "legacy",
  "expand",
  "swept",
  "gated",
  "indexing",
  "indexed",
  "contracted",
] as const;
export type TablePhase = (typeof TABLE_PHASES)[number];

export interface GsiStatus {
  name: string;
  state: string;
  backfilling?: boolean;
  /** OnlineIndexPercentageProgress while a new index is built (AWS only). */
  progress?: number;
  /** `target`: part of the end state; `retiring`: dropped in the contract phase; `extra`: in no phase. */
  role: "target" | "retiring" | "extra";
}

export interface TableStatus {
  table: SiteLogixTable;
  tableName: string;
  exists: boolean;
  error?: string;
  tableStatus?: string;
  stream?: string;
  pitr?: "ENABLED" | "DISABLED" | "not supported by this endpoint" | "unknown";
  deletionProtection?: boolean;
  itemCount?: number;
  gsis: GsiStatus[];
  missingGsis: string[];
  phase: TablePhase;
  normalizerLiveAt?: string;
  lastSweep?: SweepRun;
  /** The last sweep as its segments show it (done/total, live workers, rates, budget, ETA, failures). */
  sweepProgress?: SweepRunView;
  lastGate?: GateResult;
  latestBackup?: BackupRecord;
}

export interface NextStep {
  table?: SiteLogixTable;
  action: string;
  why: string;
}

export interface MigrationStatus {
  tables: TableStatus[];
  ledgerError?: string;
  next: NextStep;
}

interface Facts {
  description?: TableDescription;
  state?: TableState;
  sweep?: SweepRun;
  gate?: GateResult;
}

/** A gate counts only when the index gate (the rule the deploy applies) is open. */
export function gateIsCurrent(table: SiteLogixTable, facts: Facts): boolean {
  const { gate, sweep, state } = facts;
  return decideIndexGate(table, { gate, sweep, normalizerLiveAt: state?.normalizerLiveAt }).allowed;
}

export function tablePhase(table: SiteLogixTable, facts: Facts): TablePhase {
  const { description, state, sweep } = facts;
  if (!description) return "absent";
  // Where the table stands is what the phases' own checks say of it.
  if (indexPhase.check(table, description).length === 0)
    return contractPhase.check(table, description).length === 0 ? "contracted" : "indexed";
  const states = gsiStates(description);
  if (targetGsis(table).some((g) => states.get(g.name) === "CREATING")) return "indexing";
  if (!description.StreamSpecification?.StreamEnabled || !state?.normalizerLiveAt) return "legacy";
  if (gateIsCurrent(table, facts)) return "gated";
  if (sweep?.status === "finished" && sweep.finishedAt && sweep.finishedAt >= state.normalizerLiveAt) return "swept";
  return "expand";
}

function gsiStatuses(
  table: SiteLogixTable,
  description: TableDescription,
): { gsis: GsiStatus[]; missingGsis: string[] } {
  const target = new Set(targetGsis(table).map((g) => g.name));
  const known = new Set(TABLES[table].gsis.map((g) => g.name));
  const gsis = (description.GlobalSecondaryIndexes ?? []).map((g) => {
    const progress = (g as { OnlineIndexPercentageProgress?: number }).OnlineIndexPercentageProgress;
    return {
      name: g.IndexName ?? "?",
      state: g.IndexStatus ?? "?",
      ...(g.Backfilling !== undefined ? { backfilling: g.Backfilling } : {}),
      ...(progress !== undefined ? { progress } : {}),
      role: target.has(g.IndexName ?? "")
        ? ("target" as const)
        : known.has(g.IndexName ?? "")
          ? ("retiring" as const)
          : ("extra" as const),
    };
  });
  const present = new Set(gsis.map((g) => g.name));
  return { gsis, missingGsis: [...target].filter((name) => !present.has(name)) };
}

async function pitrOf(dynamodb: DynamoDBClient, tableName: string): Promise<TableStatus["pitr"]> {
  try {
    const out = await dynamodb.send(new DescribeContinuousBackupsCommand({ TableName: tableName }));
    return out.ContinuousBackupsDescription?.PointInTimeRecoveryDescription?.PointInTimeRecoveryStatus === "ENABLED"
      ? "ENABLED"
      : "DISABLED";
  } catch (err) {
    return isErrorNamed(err, "UnknownOperationException") ? "not supported by this endpoint" : "unknown";
  }
}

export async function tableStatus(
  dynamodb: DynamoDBClient,
  ledger: Ledger | undefined,
  names: TableNames,
  table: SiteLogixTable,
): Promise<TableStatus> {
  const tableName = names[table];
  const facts: Facts = {};
  let error: string | undefined;
  try {
    facts.description = await describeTable(dynamodb, tableName);
  } catch (err) {
    error = describeError(err);
  }
  let latestBackup: BackupRecord | undefined;
  if (ledger) {
    [facts.state, facts.sweep, facts.gate, latestBackup] = await Promise.all([
      ledger.tableState(table),
      ledger.latestSweep(table),
      ledger.latestGate(table),
      ledger.latestBackup(table),
    ]);
  }
  const d = facts.description;
  let sweepProgress: SweepRunView | undefined;
  if (ledger && facts.sweep) sweepProgress = await sweepRunView(ledger, facts.sweep, d?.ItemCount);
  return {
    table,
    tableName,
    exists: d !== undefined,
    ...(error ? { error } : {}),
    ...(d
      ? {
          tableStatus: d.TableStatus,
          stream: d.StreamSpecification?.StreamEnabled ? d.StreamSpecification.StreamViewType : "off",
          pitr: await pitrOf(dynamodb, tableName),
          deletionProtection: d.DeletionProtectionEnabled ?? false,
          itemCount: d.ItemCount,
        }
      : {}),
    ...(d ? gsiStatuses(table, d) : { gsis: [], missingGsis: [] }),
    phase: error ? "absent" : tablePhase(table, facts),
    ...(facts.state?.normalizerLiveAt ? { normalizerLiveAt: facts.state.normalizerLiveAt } : {}),
    ...(facts.sweep ? { lastSweep: facts.sweep } : {}),
    ...(sweepProgress ? { sweepProgress } : {}),
    ...(facts.gate ? { lastGate: facts.gate } : {}),
    ...(latestBackup ? { latestBackup } : {}),
  };
}

/** The first thing standing between the migration and its end state, and why. */
export function nextStep(tables: TableStatus[]): NextStep {
  const first = (phase: TablePhase) => tables.find((t) => t.phase === phase);
  const unreadable = tables.find((t) => t.error);
  if (unreadable)
    return { table: unreadable.table, action: `fix access to ${unreadable.tableName}`, why: unreadable.error! };
  const absent = first("absent");
  if (absent)
    return { table: absent.table, action: "deploy the expand phase", why: `${absent.tableName} does not exist` };
  const existing = tables.filter((t) => TABLES[t.table].existing);
  const unbacked = existing.find((t) => !t.latestBackup);
  if (unbacked && existing.every((t) => t.phase === "legacy"))
    return {
      table: unbacked.table,
      action: "sitelogix-migrate backup",
      why: `${unbacked.tableName} has no backup on record`,
    };
  const legacy = first("legacy");
  if (legacy)
    return {
      table: legacy.table,
      action: "deploy the expand phase (streams, normalizer, audit logger)",
      why:
        legacy.stream === "off"
          ? `${legacy.tableName} has no stream`
          : `the normalizer has not processed ${legacy.tableName}'s stream yet`,
    };
  const expand = first("expand");
  if (expand)
    return {
      table: expand.table,
      action: `sitelogix-migrate sweep --table ${expand.table}`,
      why:
        expand.lastSweep && expand.lastSweep.status !== "finished"
          ? `its last sweep is ${expand.lastSweep.status} (resume it with --resume)`
          : "no finished sweep since the normalizer went live",
    };
  const swept = first("swept");
  if (swept)
    return {
      table: swept.table,
      action: `sitelogix-migrate verify --table ${swept.table}`,
      why:
        swept.lastGate && !swept.lastGate.green
          ? `its last gate is red (${swept.lastGate.gaps} gaps, ${swept.lastGate.violations} violations)`
          : "no green gate since the sweep finished",
    };
  const gated = first("gated");
  if (gated)
    return {
      table: gated.table,
      action: "deploy the index phase",
      why: `${gated.tableName} is gated green but lacks ${gated.missingGsis.join(", ")}`,
    };
  const indexing = first("indexing");
  if (indexing)
    return {
      table: indexing.table,
      action: "wait for the new GSIs to become ACTIVE",
      why:
        `${indexing.tableName} is building ${indexing.gsis
          .filter((g) => g.state === "CREATING")
          .map((g) => g.name)
          .join(", ")}; ` + `to undo it: ${indexPhase.rollback(indexing.table, indexing.tableName).join(", ")}`,
    };
  const indexed = first("indexed");
  if (indexed)
    return {
      table: indexed.table,
      action: "deploy the contract phase once the application no longer uses the retiring GSIs",
      why: `${indexed.tableName} still has ${indexed.gsis
        .filter((g) => g.role === "retiring")
        .map((g) => g.name)
        .join(", ")}`,
    };
  return {
    action: "nothing: every table is in its end state",
    why: "all target GSIs are ACTIVE and retired ones are gone",
  };
}

export async function migrationStatus(
  dynamodb: DynamoDBClient,
  ledger: Ledger,
  names: TableNames,
  tables: SiteLogixTable[],
): Promise<MigrationStatus> {
  // The ledger may not exist yet (before the expand deploy): report that, and show DynamoDB's view.
  let ledgerError: string | undefined;
  try {
    await ledger.tableState(tables[0]!);
  } catch (err) {
    ledgerError = describeError(err);
  }
  const statuses = await Promise.all(
    tables.map((t) => tableStatus(dynamodb, ledgerError ? undefined : ledger, names, t)),
  );
  return { tables: statuses, ...(ledgerError ? { ledgerError } : {}), next: nextStep(statuses) };
}
