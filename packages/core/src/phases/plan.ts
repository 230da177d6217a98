// What deploying a phase does to the live tables, and whether it may. The deploy runs it before it
// declares any resource (so `sst diff` and `sst deploy` both refuse), and the rehearsal runs it
// before its own index and contract steps, so both refuse exactly the same things:
//   - every live table is compared in full with its declaration (liveTableProblems): a difference
//     the deploy would change in place, re-create or replace is refused, with what to do;
//   - each phase's precondition (a target GSI only behind a green index gate, nothing dropped before
//     every target GSI is ACTIVE);
//   - at most one GSI created or deleted per table per deploy (DynamoDB's limit per UpdateTable);
//   - an adopted table must exist (it is imported, never created).
// What it reads that the declaration follows: each live table's encryption.
import { type LiveEncryption, liveEncryption, liveTableProblems } from "../adoption.js";
import { type IndexChange, indexChanges } from "../indexes.js";
import type { TableNames } from "../names.js";
import { type LogicalTable, type Phase, tablesIn } from "../schema.js";
import { contractPhase } from "./contract.js";
import { expandPhase } from "./expand.js";
import { indexPhase } from "./build-indexes.js";
import { legacyPhase } from "./legacy.js";
import type { LiveTables } from "./live-tables.js";
import type { MigrationPhase } from "./phase.js";

export const MIGRATION_PHASES: Record<Phase, MigrationPhase> = {
  legacy: legacyPhase,
  expand: expandPhase,
  index: indexPhase,
  contract: contractPhase,
};

/** A GSI the deploy creates or deletes on a live table. */
export interface PlannedIndexChange extends IndexChange {
  tableName: string;
}

export interface DeployPlan {
  phase: Phase;
  /** Tables the deploy creates (they hold no items, so their GSIs are created with them). */
  newTables: string[];
  indexChanges: PlannedIndexChange[];
  /** What the declaration of each live table takes over from it. */
  live: Partial<Record<LogicalTable, { encryption: LiveEncryption }>>;
}

export class DeployRefusedError extends Error {
  constructor(
    readonly phase: Phase,
    readonly problems: string[],
  ) {
    super(`deploy of phase "${phase}" refused:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "DeployRefusedError";
  }
}

/**
 * What deploying `phase` does to the live tables (all of the phase's tables, or `only` these).
 * Throws DeployRefusedError naming every problem, not just the first, when it must not go ahead.
 */
export async function planDeploy(input: {
  phase: Phase;
  names: TableNames;
  adopt: boolean;
  live: LiveTables;
  only?: readonly LogicalTable[];
}): Promise<DeployPlan> {
  const { phase, names, adopt, live, only } = input;
  const step = MIGRATION_PHASES[phase];
  const plan: DeployPlan = { phase, newTables: [], indexChanges: [], live: {} };
  const problems: string[] = [];
  for (const def of tablesIn(phase).filter((d) => !only || only.includes(d.logical))) {
    const tableName = names[def.logical];
    const described = await live.describe(tableName);
    if (!described) {
      if (adopt && def.existing)
        problems.push(`${tableName} does not exist: this stage adopts the existing table and never creates it`);
      else plan.newTables.push(tableName);
      continue;
    }
    problems.push(...liveTableProblems(def.logical, phase, { ...described, TableName: tableName }));
    plan.live[def.logical] = { encryption: await liveEncryption(described, (arn) => live.keyManager(arn)) };

    const present = (described.GlobalSecondaryIndexes ?? []).map((g) => g.IndexName ?? "");
    const changes = indexChanges(def.logical, present, phase);
    if (changes.length > 1) {
      const listed = changes.map((c) => `${c.action} ${c.index}`).join(", ");
      problems.push(
        `${tableName} would need ${changes.length} index changes in one deploy (${listed}); ` +
          "DynamoDB makes one per update: deploy the phases in order",
      );
    }
    problems.push(...(await step.precondition({ table: def.logical, tableName, described, live }, changes)));
    plan.indexChanges.push(...changes.map((change) => ({ ...change, tableName })));
  }
  if (problems.length > 0) throw new DeployRefusedError(phase, problems);
  return plan;
}
