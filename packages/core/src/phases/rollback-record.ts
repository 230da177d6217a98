// Rollbacks on record: every index deletion and table restore the operator ran through the CLI, in
// the ledger beside the table's gates and sweeps, so `status` and a later reader know what was undone.
import type { Ledger } from "../ledger/index.js";
import type { SiteLogixTable } from "../schema.js";
import { describeError } from "../errors.js";

export interface RollbackRecord {
  table: SiteLogixTable;
  tableName: string;
  kind: "index" | "restore";
  /** index: the GSI deleted. */
  index?: string;
  /** restore: the new table, and what it was restored from (a PITR time or a backup ARN). */
  targetTableName?: string;
  restoredTo?: string;
  backupArn?: string;
  startedAt: string;
  finishedAt?: string;
  /** `timed-out`: DynamoDB goes on; the operator follows it with `status` or `aws dynamodb describe-table`. */
  status: "started" | "done" | "timed-out" | "failed";
  error?: string;
}

const key = (table: SiteLogixTable, startedAt: string) => ({ PK: `TABLE#${table}`, SK: `ROLLBACK#${startedAt}` });

/**
 * Records (or updates) a rollback. The ledger may not exist yet (a restore can be needed before the
 * expand phase): then the problem is returned for the operator, and the rollback goes on.
 */
export async function recordRollback(ledger: Ledger, record: RollbackRecord): Promise<string | undefined> {
  try {
    await ledger.put(key(record.table, record.startedAt), record);
    return undefined;
  } catch (err) {
    return `not recorded in the ledger (${describeError(err)})`;
  }
}

/** The table's rollbacks, newest first. */
export async function rollbacksOf(ledger: Ledger, table: SiteLogixTable): Promise<RollbackRecord[]> {
  return ledger.query<RollbackRecord>(`TABLE#${table}`, "ROLLBACK#", { descending: true });
}
