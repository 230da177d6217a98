// The index gate: may a deploy build a table's target GSIs now? Decided from the ledger's STATE,
// latest SWEEP# and latest GATE# records (Ledger.indexGate reads them).
import type { GateResult, SweepRun } from "../ledger/records.js";
import { tablesWithRules } from "../rules.js";
import type { LogicalTable } from "../schema.js";

export interface IndexGateDecision {
  table: LogicalTable;
  allowed: boolean;
  /** Why not, one sentence each, naming the command that fixes it; empty when allowed. */
  reasons: string[];
}

/**
 * A table's target GSIs may be built only when its latest verify is green and started after its
 * latest sweep finished and after the normalizer went live (on tables it subscribes to): then every
 * item written before the verify was checked, and every write since is normalized by the stream.
 */
export function decideIndexGate(
  table: LogicalTable,
  facts: { gate?: GateResult; sweep?: SweepRun; normalizerLiveAt?: string },
): IndexGateDecision {
  const { gate, sweep, normalizerLiveAt } = facts;
  const reasons: string[] = [];
  const time = (iso: string) => Date.parse(iso);
  const normalized = (tablesWithRules() as LogicalTable[]).includes(table);
  if (normalized && !normalizerLiveAt)
    reasons.push("the ledger has no record of the normalizer going live on this table (deploy the expand phase first)");
  if (!sweep) reasons.push(`no sweep has run (run \`sitelogix-migrate sweep --table ${table}\`)`);
  else if (sweep.status !== "finished" || !sweep.finishedAt)
    reasons.push(
      `the latest sweep ${sweep.sweepId} has not finished (${sweep.status}) ` +
        `(run \`sitelogix-migrate sweep --table ${table} --resume\`)`,
    );
  if (!gate) reasons.push(`no verify result is recorded (run \`sitelogix-migrate verify --table ${table}\`)`);
  else {
    if (!gate.green)
      reasons.push(`the latest verify (${gate.at}) is not green: ${gate.gaps} gaps, ${gate.violations} violations`);
    if (sweep?.finishedAt && time(gate.at) <= time(sweep.finishedAt))
      reasons.push(
        `the latest verify (${gate.at}) started before the latest sweep finished (${sweep.finishedAt}): ` +
          "run verify again",
      );
    if (normalized && normalizerLiveAt && time(gate.at) <= time(normalizerLiveAt))
      reasons.push(
        `the latest verify (${gate.at}) started before the normalizer went live (${normalizerLiveAt}): ` +
          "run verify again",
      );
  }
  return { table, allowed: reasons.length === 0, reasons };
}
