// The audit trail's tables: the audit log compliance queries (PITR, deletion protection in prod,
// TTL on `expiresAt` so entries expire only when the audit logger set a retention date on them) and
// the idempotency table of the schema (the audit logger does not need it: its entries' conditional
// puts are keyed by their stream records).
import type { StageContext } from "./config";
import { declareTable, type DeclaredTable } from "./tables";

export function audit(ctx: StageContext): { audit: DeclaredTable; idempotency: DeclaredTable } {
  return { audit: declareTable("audit", ctx), idempotency: declareTable("idempotency", ctx) };
}
