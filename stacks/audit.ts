// The audit trail's tables: the audit log compliance queries (PITR, deletion protection in prod,
// TTL on `expiresAt` so entries expire only when the audit logger set a retention date on them) and
// the Powertools idempotency table that makes the audit logger exactly-once.
import type { StageContext } from "./config";
import { declareTable, type DeclaredTable } from "./tables";

export function audit(ctx: StageContext): { audit: DeclaredTable; idempotency: DeclaredTable } {
  return { audit: declareTable("audit", ctx), idempotency: declareTable("idempotency", ctx) };
}
