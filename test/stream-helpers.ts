// Test helpers for stream-driven suites: waiting for an eventual condition, reading a table's stream.
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand } from "@aws-sdk/client-dynamodb-streams";
import { compareSequenceNumbers, decodeRecord, toLambdaRecord, type Clients, type DecodedRecord } from "@sitelogix/core";

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every record currently in a table's stream, decoded, in stream order (reads each shard to its end). */
export async function readStreamRecords(clients: Clients, tableName: string): Promise<DecodedRecord[]> {
  const streamArn = (await clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }))).Table?.LatestStreamArn;
  if (!streamArn) throw new Error(`${tableName} has no stream`);
  const records: DecodedRecord[] = [];
  const shards = (await clients.streams.send(new DescribeStreamCommand({ StreamArn: streamArn }))).StreamDescription?.Shards ?? [];
  for (const shard of shards) {
    let iterator = (await clients.streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
    while (iterator) {
      const out = await clients.streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      records.push(...(out.Records ?? []).map((r) => decodeRecord(toLambdaRecord(r, streamArn))));
      if (!out.Records?.length) break;
      iterator = out.NextShardIterator;
    }
  }
  return records.sort((a, b) => compareSequenceNumbers(a.sequenceNumber, b.sequenceNumber));
}
