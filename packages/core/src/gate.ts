// The index gate's one write path: verify a table, record the result in the ledger, and read back
// what the gate then decides (the rule the deploy applies). `verify` and the rehearsal both use it.
import { type VerifyOptions, type TableVerification, verifyTable } from "./inspector.js";
import type { IndexGateDecision, Ledger } from "./ledger/index.js";

export type GateVerification = TableVerification & { indexGate: IndexGateDecision };

export async function verifyAndRecordGate(ledger: Ledger, options: VerifyOptions): Promise<GateVerification> {
  const v = await verifyTable(options);
  await ledger.recordGate({
    table: v.table,
    at: v.at,
    green: v.green,
    gaps: v.gaps,
    violations: v.violations,
    disagreements: v.disagreements,
    scanned: v.scanned,
    indexes: v.indexes,
  });
  return { ...v, indexGate: await ledger.indexGate(v.table) };
}
