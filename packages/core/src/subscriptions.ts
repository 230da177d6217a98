// Who consumes which table's stream, and with which event-source-mapping settings. The stacks
// declare the Lambda subscriptions from this, and the local runner (`sitelogix-migrate stream`)
// reproduces them, so production and rehearsal run the same wiring.
import { tablesWithRules } from "./rules.js";
import { SITELOGIX_TABLES, type SiteLogixTable } from "./schema.js";
import type { StreamEventName } from "./streams.js";

export interface Subscription {
  name: "normalizer" | "audit-logger";
  /** Handler module, as SST's `handler` string (relative to the repository root). */
  handler: string;
  tables: readonly SiteLogixTable[];
  /** Only these event names reach the handler; undefined = every record (never filter the audit). */
  eventNames?: readonly StreamEventName[];
  batchSize: number;
  maximumBatchingWindowInSeconds: number;
  bisectBatchOnFunctionError: boolean;
  /** Finite: after this many retries a failing batch goes to the on-failure destination and the shard moves on. */
  maximumRetryAttempts: number;
  maximumRecordAgeInSeconds: number;
}

export const SUBSCRIPTIONS: readonly Subscription[] = [
  {
    name: "normalizer",
    handler: "packages/functions/src/normalizer.handler",
    tables: tablesWithRules(),
    eventNames: ["INSERT", "MODIFY"],
    batchSize: 100,
    maximumBatchingWindowInSeconds: 1,
    bisectBatchOnFunctionError: true,
    maximumRetryAttempts: 10,
    // Older records are covered by the sweep; a day-old backlog is an incident, not a queue.
    maximumRecordAgeInSeconds: 6 * 3600,
  },
  {
    name: "audit-logger",
    handler: "packages/functions/src/audit-logger.handler",
    tables: SITELOGIX_TABLES,
    batchSize: 100,
    maximumBatchingWindowInSeconds: 1,
    bisectBatchOnFunctionError: true,
    maximumRetryAttempts: 10,
    // The stream keeps records 24 hours; the audit must try for as long as they exist.
    maximumRecordAgeInSeconds: 24 * 3600,
  },
];

export function subscriptionsOf(table: SiteLogixTable): Subscription[] {
  return SUBSCRIPTIONS.filter((s) => s.tables.includes(table));
}
