// The audit trail's tables: the audit log compliance queries (PITR, deletion protection in prod,
// TTL on `expiresAt` so entries expire only when the audit logger set a retention date on them). No
// idempotency table: an entry's conditional put, keyed by its stream record, is the idempotency record.
import type { StageContext } from "./config";
import { declareTable, type DeclaredTable } from "./tables";

export function audit(ctx: StageContext): { audit: DeclaredTable } {
  return { audit: declareTable("audit", ctx) };
}
