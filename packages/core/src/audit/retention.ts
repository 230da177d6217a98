// Retention: every entry carries the time (expiresAt) from which DynamoDB's TTL may delete it;
// verification counts entries gone that way instead of reporting them.

/** How long entries are kept: whole calendar years, or forever (no TTL). */
export type Retention = { years: number } | "forever";
export const DEFAULT_RETENTION: Retention = { years: 7 };

/** `SITELOGIX_AUDIT_RETENTION_YEARS`: a whole number of years (default 7) or `forever`. */
export function retentionFromEnv(env: NodeJS.ProcessEnv = process.env): Retention {
  const raw = env.SITELOGIX_AUDIT_RETENTION_YEARS?.trim();
  if (raw === undefined || raw === "") return DEFAULT_RETENTION;
  if (raw === "forever") return "forever";
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 100) {
    throw new Error(
      `SITELOGIX_AUDIT_RETENTION_YEARS must be a whole number of years from 1 to 100, or "forever"; got "${raw}"`,
    );
  }
  return { years: Number(raw) };
}

/**
 * Expiry of an entry recorded at `recordedAt`: never earlier than the retention allows, never before
 * its predecessor's.
 */
export function expiryOf(
  retention: Retention,
  recordedAt: Date,
  prevExpiresAt: number | undefined,
): number | undefined {
  if (retention === "forever") return undefined;
  const until = new Date(recordedAt);
  until.setUTCFullYear(until.getUTCFullYear() + retention.years);
  return Math.max(Math.ceil(until.getTime() / 1000), prevExpiresAt ?? 0);
}
