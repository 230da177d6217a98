// Normalizer Lambda: on the streams of the tables that have rules (subscriptions.ts), for every
// INSERT/MODIFY (and a person's removed HISTORY# visit) writes what the rules derive, conditionally
// (packages/core/src/normalizer.ts).
// Records of one item are processed in stream order, different items concurrently, and failures are
// reported per record.
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
// Narrow entry points, not the core barrel: the bundle carries only what the function uses.
import { createClients } from "@sitelogix/core/clients";
import { errorName } from "@sitelogix/core/errors";
import { Ledger } from "@sitelogix/core/ledger";
import { resolveTableNames } from "@sitelogix/core/names";
import {
  liveFrom,
  normalizeRecord,
  NORMALIZER_BATCH_CONCURRENCY,
  normalizerOrderKey,
  type NormalizeResult,
  type NormalizerDeps,
} from "@sitelogix/core/normalizer";
import type { SiteLogixTable } from "@sitelogix/core/schema";
import { decodeRecord, inItemOrder, MalformedRecordError, recordRef } from "@sitelogix/core/streams";
import { powertools } from "./powertools.js";

/** Stop starting records this close to the function's timeout: they fail fast and are redelivered. */
const DEADLINE_MARGIN_MS = 2_000;

export interface NormalizerHandlerOptions {
  /** Clients, table names and ledger; by default from the SDK's environment and the SST links. */
  deps?: NormalizerDeps;
  /** Called after each record is normalized (tests and the benchmark observe outcomes here). */
  onResult?: (result: NormalizeResult, record: DynamoDBRecord) => void;
}

const { logger, metrics } = powertools("sitelogix-normalizer");

function defaultDeps(): NormalizerDeps {
  const { doc } = createClients();
  const names = resolveTableNames();
  return { doc, names, ledger: new Ledger(doc, names.ledger) };
}

export function createNormalizerHandler(options: NormalizerHandlerOptions = {}) {
  let deps = options.deps;
  // Tables this execution environment has already marked live in the ledger (one write per table).
  const markedLive = new Set<SiteLogixTable>();

  async function processRecord(record: DynamoDBRecord, context: Context): Promise<void> {
    const remaining = context.getRemainingTimeInMillis();
    if (remaining < DEADLINE_MARGIN_MS) throw new Error("function timeout near: record left for redelivery");
    const decoded = decodeRecord(record);
    metrics.addMetric(
      "lag",
      MetricUnit.Milliseconds,
      Math.max(0, Date.now() - Date.parse(decoded.approximateCreationTime)),
    );
    const d = (deps ??= defaultDeps());
    const result = await normalizeRecord(d, decoded, {
      abortSignal: AbortSignal.timeout(remaining - DEADLINE_MARGIN_MS / 2),
    });
    if (!markedLive.has(result.table)) {
      await d.ledger.markNormalizerLive(result.table, liveFrom(decoded));
      markedLive.add(result.table);
    }
    metrics.addMetric(result.outcome, MetricUnit.Count, 1);
    const fields = { table: result.table, keys: result.key, eventID: decoded.eventId, outcome: result.outcome };
    if (result.reported) {
      metrics.addMetric("reported", MetricUnit.Count, 1);
      logger.warn("data problem recorded in the ledger", {
        ...fields,
        violations: result.violations,
        reason: result.reason,
      });
    } else {
      logger.debug("record normalized", { ...fields, written: result.written });
    }
    options.onResult?.(result, record);
  }

  return async function handler(event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> {
    let unidentifiable = false;
    const recordHandler = async (record: DynamoDBRecord) => {
      try {
        await processRecord(record, context);
      } catch (err) {
        // Reported with what the record carries, never its images. Failing it alone gets it retried,
        // then sent to the on-failure destination, without holding back its neighbours.
        const malformed = err instanceof MalformedRecordError;
        logger.error(malformed ? "malformed stream record" : "record failed; it will be retried", {
          eventID: record.eventID,
          sequenceNumber: record.dynamodb?.SequenceNumber,
          keys: recordRef(record).keys,
          error: errorName(err),
          message: (err as Error).message,
        });
        metrics.addMetric(malformed ? "malformed" : "failed", MetricUnit.Count, 1);
        if (!record.dynamodb?.SequenceNumber) unidentifiable = true;
        throw err;
      }
    };
    try {
      // A processor per invocation: nothing is shared between concurrent invocations (the local runner).
      // Items concurrently, each item's records in stream order (inItemOrder); Powertools collects
      // the outcomes record by record.
      const outcomeOf = inItemOrder(event.Records, normalizerOrderKey, recordHandler, NORMALIZER_BATCH_CONCURRENCY);
      const response = await processPartialResponse(event, outcomeOf, new BatchProcessor(EventType.DynamoDBStreams), {
        context,
        processInParallel: false,
      });
      // A failed record without a sequence number cannot be reported per item (Powertools would leave
      // it out, i.e. drop it): fail the invocation, so Lambda bisects, retries, then sends it on.
      if (unidentifiable)
        throw new Error("a failed record has no SequenceNumber; failing the whole batch so it is retried");
      logger.info("batch done", { records: event.Records.length, failed: response.batchItemFailures.length });
      return response;
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}

export const handler = createNormalizerHandler();
