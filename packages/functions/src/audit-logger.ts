// Audit logger: subscribed to every SiteLogix table's stream, all event types, no filter. One audit
// entry per record, exactly once (the entry's conditional put is keyed by the record), in the
// item's hash chain (packages/core/src/audit/). An item's records are appended in stream order,
// different items concurrently; a record that fails is reported on its own (partial batch
// response) with its keys, so Lambda retries it and, after the subscription's retries, sends it to
// the on-failure destination. Item images are never logged.
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Logger } from "@aws-lambda-powertools/logger";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
// Narrow entry points, not the core barrel: the bundle carries only what the function uses.
import { AuditTrail, retentionFromEnv } from "@sitelogix/core/audit";
import { createClients } from "@sitelogix/core/clients";
import { errorName } from "@sitelogix/core/errors";
import { resolveTableNames } from "@sitelogix/core/names";
import { recordRef } from "@sitelogix/core/streams";
import { powertools } from "./powertools.js";

export interface AuditLoggerDeps {
  /** Defaults to the trail on the linked (or default-named) audit table, retention from the environment. */
  trail?: AuditTrail;
  logger?: Logger;
  metrics?: Metrics;
}

export function createAuditLoggerHandler(deps: AuditLoggerDeps = {}) {
  const { logger, metrics } = powertools("sitelogix-audit-logger", deps);
  const processor = new BatchProcessor(EventType.DynamoDBStreams);
  // Created on first use, so that a configuration error fails invocations (records are retried),
  // not the module load.
  let trail = deps.trail;

  return async (event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> => {
    trail ??= new AuditTrail(createClients().dynamodb, resolveTableNames(), { retention: retentionFromEnv() });
    const append = trail.batch(event.Records);
    const counts = { appended: 0, duplicate: 0, failed: 0, compressed: 0, chunked: 0 };
    const recordHandler = async (record: DynamoDBRecord) => {
      try {
        const result = await append(record);
        counts[result.outcome]++;
        if (result.outcome === "appended" && result.storage !== "inline") counts[result.storage]++;
      } catch (err) {
        counts.failed++;
        logger.error("audit entry not written; the record will be retried", {
          record: recordRef(record),
          error: { name: errorName(err), message: (err as Error).message },
        });
        throw err;
      }
    };
    try {
      // The trail's batch processor already runs the records (items concurrently, each item's records
      // in stream order); Powertools collects their outcomes in order. A whole batch failing is
      // reported like any partial failure, so Lambda retries from the first failed record.
      return await processPartialResponse(event, recordHandler, processor, {
        context,
        processInParallel: false,
        throwOnFullBatchFailure: false,
      });
    } finally {
      metrics.addMetric("AuditEntriesWritten", MetricUnit.Count, counts.appended);
      metrics.addMetric("AuditDuplicatesSkipped", MetricUnit.Count, counts.duplicate);
      metrics.addMetric("AuditRecordsFailed", MetricUnit.Count, counts.failed);
      metrics.addMetric("AuditLargeEntries", MetricUnit.Count, counts.compressed + counts.chunked);
      metrics.publishStoredMetrics();
    }
  };
}

export const handler = createAuditLoggerHandler();
