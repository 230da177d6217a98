// Audit entries for the digest suites: one change of a report, as the audit logger would append it.
import { entityId, type EntryContent } from "@sitelogix/core";

let sequence = 10_000_000n;

/** A MODIFY of the report `keys` in `tableName` that sets `weather`, with the next sequence number. */
export function reportChange(tableName: string, keys: Record<string, string>, weather: string): EntryContent {
  const n = String(sequence++);
  return {
    entity: entityId("reports", keys),
    table: "reports",
    tableName,
    keys,
    eventName: "MODIFY",
    eventId: `event-${n}`,
    sequenceNumber: n,
    at: new Date().toISOString(),
    actor: "user_1",
    actorBasis: "new:lastModifiedBy",
    changed: ["weather"],
    old: { weather: { S: "before" } },
    new: { weather: { S: weather } },
  };
}
