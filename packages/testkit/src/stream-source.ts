// Test-only: a table's real DynamoDB Local stream as Lambda records, and their delivery to a handler
// the way Lambda's event source mapping does (batches in stream order, partial batch responses,
// retry from the earliest failure, on-failure after the retries). For tests that deliver records
// they altered (malformed input, shifted times, a service identity); tests of the runner's own
// semantics (restart, SIGKILL) use StreamRunner and `sitelogix-migrate stream`.
import { readStream } from "@sitelogix/core/local-esm";
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";

export type StreamHandler = (
  event: DynamoDBStreamEvent,
  context: Context,
) => Promise<DynamoDBBatchResponse | undefined>;

export { readStream };

const context = {
  functionName: "audit-logger-test",
  getRemainingTimeInMillis: () => 60_000,
  awsRequestId: "test",
} as unknown as Context;

export interface Delivery {
  invocations: number;
  /** Records given up on after the retries (what Lambda sends to the on-failure destination). */
  onFailure: DynamoDBRecord[];
}

/**
 * Lambda semantics over a list of records: batches of `batchSize`; on a partial failure the batch
 * is retried from its earliest failed record (records after it are delivered again); after
 * `maxRetries` retries the earliest failed record goes to on-failure and delivery moves on.
 */
export async function deliver(
  records: DynamoDBRecord[],
  handler: StreamHandler,
  options: { batchSize?: number; maxRetries?: number } = {},
): Promise<Delivery> {
  const batchSize = options.batchSize ?? 100;
  const maxRetries = options.maxRetries ?? 2;
  const result: Delivery = { invocations: 0, onFailure: [] };
  let next = 0;
  let retries = 0;
  while (next < records.length) {
    const batch = records.slice(next, next + batchSize);
    result.invocations++;
    const response = await handler({ Records: batch }, context);
    const failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    const firstFailed = batch.findIndex((r) => failed.has(r.dynamodb?.SequenceNumber ?? ""));
    if (firstFailed < 0) {
      next += batch.length;
      retries = 0;
    } else if (retries < maxRetries) {
      next += firstFailed;
      retries++;
    } else {
      result.onFailure.push(batch[firstFailed]!);
      next += firstFailed + 1;
      retries = 0;
    }
  }
  return result;
}
