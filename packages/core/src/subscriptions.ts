// Who consumes which table's stream, and with which event-source-mapping settings. The stacks
// declare the Lambda subscriptions from this, and the local runner (`sitelogix-migrate stream`)
// reproduces them, so production and rehearsal run the same wiring.
import { tablesWithRules } from "./rules.js";
import { SITELOGIX_TABLES, type SiteLogixTable } from "./schema.js";

/**
 * A Lambda event filter pattern, in the subset the subscriptions use: nested fields, each ending in
 * a list of accepted values (an exact string or `{ prefix }`). Fields are ANDed, values ORed.
 */
export interface FilterPattern {
  readonly [field: string]: FilterPattern | readonly FilterValue[];
}
export type FilterValue = string | { readonly prefix: string };

/** Whether a stream record (in Lambda's event shape) matches a filter pattern, as Lambda evaluates it. */
export function matchesFilter(pattern: FilterPattern, record: unknown): boolean {
  return Object.entries(pattern).every(([field, rule]) => {
    const value = (record as Record<string, unknown> | undefined)?.[field];
    if (!Array.isArray(rule))
      return typeof value === "object" && value !== null && matchesFilter(rule as FilterPattern, value);
    return (
      typeof value === "string" &&
      (rule as readonly FilterValue[]).some((v) => (typeof v === "string" ? value === v : value.startsWith(v.prefix)))
    );
  });
}

export interface Subscription {
  name: "normalizer" | "audit-logger";
  /** Handler module, as SST's `handler` string (relative to the repository root). */
  handler: string;
  tables: readonly SiteLogixTable[];
  /**
   * Lambda event filter patterns (a record reaching the handler matches at least one); undefined =
   * every record (never filter the audit). The local runner evaluates them with `matchesFilter`.
   */
  filters?: readonly FilterPattern[];
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
    filters: [
      { eventName: ["INSERT", "MODIFY"] },
      // A deleted visit can move a person's latest HISTORY# date back, and dateLastSeen follows it.
      { eventName: ["REMOVE"], dynamodb: { Keys: { SK: { S: [{ prefix: "HISTORY#" }] } } } },
    ],
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
