// The normalizer's work on one stream record, without Lambda concerns: decode → rule context →
// derivePatch(mode "normalizer") → applyPatch → outcome. The Lambda handler (packages/functions)
// adds batching, logging and metrics around it; the local runner invokes that same handler.
import { GetCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { applyPatch, MIGRATOR_MARKER, type Outcome } from "./applier.js";
import type { Ledger } from "./ledger/index.js";
import { logicalFromPhysical, type TableNames } from "./names.js";
import { derivePatchFor } from "./rule-context.js";
import { tablesWithRules, type Item, type Violation } from "./rules.js";
import { itemKey, type SiteLogixTable } from "./schema.js";
import type { DynamoDBRecord } from "aws-lambda";
import { MalformedRecordError, type DecodedRecord } from "./streams.js";

export interface NormalizerDeps {
  doc: DynamoDBDocumentClient;
  names: TableNames;
  ledger: Ledger;
}

/**
 * `skipped`: nothing to normalize — a REMOVE (other than a visit's), or a person's HISTORY# whose PROFILE does not
 * exist.
 */
export type NormalizerOutcome = Outcome | "skipped";

export interface NormalizeResult {
  table: SiteLogixTable;
  /** Keys of the item written (for a HISTORY# record, the person's PROFILE). */
  key: Record<string, string>;
  outcome: NormalizerOutcome;
  /** Attributes written (names only). */
  written: string[];
  violations: Violation[];
  /** `rejected`: DynamoDB's reason (names attributes and indexes, never values). */
  reason?: string;
  /** True when the problem was recorded in the ledger for `verify` and the operator. */
  reported: boolean;
}

/**
 * Records of different items a normalizer invocation works on at once. Sequential processing would
 * cap a shard at one round trip or two per record (about 50 records/s at a region's latency); one
 * item's records still run in stream order.
 */
export const NORMALIZER_BATCH_CONCURRENCY = 16;

/**
 * What orders a record in its batch (see `inItemOrder`): its table and partition key, so that a
 * person's HISTORY# visits and PROFILE are normalized one after another.
 */
export function normalizerOrderKey(record: DynamoDBRecord): string | undefined {
  const pk = record.dynamodb?.Keys?.PK?.S;
  return pk === undefined ? undefined : `${record.eventSourceARN ?? ""}|${pk}`;
}

/** Clock granularity of ApproximateCreationDateTime: a second on AWS, a minute on DynamoDB Local. */
const CREATION_TIME_GRANULARITY_MS = 60_000;

/**
 * The time from which a normalizer that has just processed `record` is known to see every write:
 * the record's write time rounded up past the stream's clock granularity (the mapping started
 * before that record, so every later write is after the mapping's starting position).
 */
export function liveFrom(record: DecodedRecord): string {
  return new Date(Date.parse(record.approximateCreationTime) + CREATION_TIME_GRANULARITY_MS).toISOString();
}

const revision = (item: Item | undefined) => Number(String(item?.[MIGRATOR_MARKER.rev] ?? 0));

/** A MODIFY whose new image carries a higher migrator revision than its old one is a migrator write (attribution). */
export function isMigratorWrite(record: DecodedRecord): boolean {
  return record.eventName === "MODIFY" && revision(record.newImage) > revision(record.oldImage);
}

const isHistory = (table: SiteLogixTable, key: Record<string, unknown>) =>
  table === "personnel" && typeof key.SK === "string" && key.SK.startsWith("HISTORY#");

/** The SiteLogix table a record comes from; a table the normalizer does not serve is a wiring error. */
export function normalizerTableOf(names: TableNames, record: DecodedRecord): SiteLogixTable {
  const logical = logicalFromPhysical(names, record.tableName);
  if (!logical || !(tablesWithRules() as string[]).includes(logical)) {
    throw new Error(`stream record from table ${record.tableName}, which the normalizer does not serve`);
  }
  return logical as SiteLogixTable;
}

/**
 * Normalizes the item one stream record shows. Item-level outcomes (including data problems, which
 * are recorded in the ledger) are returned; errors a retry can fix (throttling after the SDK's
 * retries, 5xx, timeouts) are thrown, and so is a malformed record.
 */
export async function normalizeRecord(
  deps: NormalizerDeps,
  record: DecodedRecord,
  options: { abortSignal?: AbortSignal } = {},
): Promise<NormalizeResult> {
  const table = normalizerTableOf(deps.names, record);
  const skipped = (key: Record<string, string>): NormalizeResult => ({
    table,
    key,
    outcome: "skipped",
    written: [],
    violations: [],
    reported: false,
  });
  const visit = isHistory(table, record.keys);
  if (record.eventName === "REMOVE" && !visit) return skipped(record.keys);
  if (!record.newImage && !visit) {
    throw new MalformedRecordError(
      `${record.eventName} record ${record.eventId} has no NewImage (the stream must be NEW_AND_OLD_IMAGES)`,
      record.eventId,
      record.sequenceNumber,
    );
  }
  // A migrator write's own record is processed like any other: it normally derives nothing
  // (invariant 4), but a write derived from an older image may have landed on a state that an
  // old-code full put had stripped further, and then this record is the one that completes it.

  const physical = deps.names[table];
  let item: Item;
  if (visit) {
    // A visit written, changed or deleted moves the person's latest HISTORY# date (back, for a
    // deleted latest visit): re-derive the PROFILE as it is now.
    const pk = record.keys.PK!;
    const profile = (
      await deps.doc.send(
        new GetCommand({ TableName: physical, Key: { PK: pk, SK: "PROFILE" }, ConsistentRead: true }),
        options,
      )
    ).Item;
    if (!profile) return skipped({ PK: pk, SK: "PROFILE" });
    item = profile;
  } else {
    item = record.newImage!;
  }
  const patch = await derivePatchFor(
    deps.doc,
    table,
    physical,
    item,
    { mode: "normalizer", writeTime: record.approximateCreationTime },
    { consistentRead: true, ...(options.abortSignal ? { signal: options.abortSignal } : {}) },
  );
  const result = await applyPatch(deps.doc, physical, patch, "normalizer", options);
  const reported = result.outcome === "rejected" || patch.violations.length > 0;
  if (reported) {
    await deps.ledger.recordNormalizerViolation({
      table,
      key: itemKey(table, patch.key),
      outcome: result.outcome,
      violations: patch.violations,
      ...(result.reason ? { reason: result.reason } : {}),
      eventId: record.eventId,
      sequenceNumber: record.sequenceNumber,
      at: new Date().toISOString(),
    });
  }
  return {
    table,
    key: patch.key,
    outcome: result.outcome,
    written: result.outcome === "applied" ? patch.set.map((a) => a.attribute) : [],
    violations: patch.violations,
    ...(result.reason ? { reason: result.reason } : {}),
    reported,
  };
}
