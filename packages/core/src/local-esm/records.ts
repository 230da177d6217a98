// The Streams API side: records read with GetRecords, in the shape Lambda delivers them.
import { sleep } from "../sleep.js";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamsApiRecord,
} from "@aws-sdk/client-dynamodb-streams";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { DynamoDBRecord } from "aws-lambda";
import type { Clients } from "../clients.js";
import { userIdentityOf, type StreamEventName } from "../streams.js";

/** GetRecords refuses a higher Limit. */
export const GET_RECORDS_LIMIT = 1000;

/**
 * A DynamoDB Streams API record (GetRecords) in the shape Lambda delivers it: epoch-second
 * ApproximateCreationDateTime, eventSourceARN added, userIdentity in Lambda's casing.
 */
export function toLambdaRecord(record: StreamsApiRecord, streamArn: string): DynamoDBRecord {
  const identity = userIdentityOf(record.userIdentity);
  const d = record.dynamodb;
  return {
    eventID: record.eventID,
    eventName: record.eventName as StreamEventName,
    eventVersion: record.eventVersion ?? "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: record.awsRegion,
    eventSourceARN: streamArn,
    dynamodb: {
      ...(d?.ApproximateCreationDateTime
        ? { ApproximateCreationDateTime: Math.floor(d.ApproximateCreationDateTime.getTime() / 1000) }
        : {}),
      Keys: d?.Keys as never,
      ...(d?.NewImage ? { NewImage: d.NewImage as never } : {}),
      ...(d?.OldImage ? { OldImage: d.OldImage as never } : {}),
      SequenceNumber: d?.SequenceNumber,
      SizeBytes: d?.SizeBytes,
      StreamViewType: d?.StreamViewType as never,
    },
    ...(identity ? { userIdentity: identity } : {}),
  };
}

/** Keys of a Lambda-format record as strings (for reports; never images; numbers never rounded). */
export function keysOf(record: DynamoDBRecord): Record<string, string> {
  const keys = record.dynamodb?.Keys ? unmarshall(record.dynamodb.Keys as never, { wrapNumbers: true }) : {};
  return Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, String(v)]));
}

/**
 * Every record currently in a table's stream, in Lambda's format: the rehearsal's completeness check
 * and the tests read it. It reads the shards of DescribeStream's first page one after another, in the
 * order listed, without the runner's parents-first ordering: enough for DynamoDB Local's one shard.
 * Two empty reads 100 ms apart mean caught up (a write shows in GetRecords within milliseconds).
 */
export async function readStream(
  clients: Pick<Clients, "dynamodb" | "streams">,
  tableName: string,
): Promise<DynamoDBRecord[]> {
  const streamArn = (await clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }))).Table
    ?.LatestStreamArn;
  if (!streamArn) throw new Error(`${tableName} has no stream`);
  const shards =
    (await clients.streams.send(new DescribeStreamCommand({ StreamArn: streamArn }))).StreamDescription?.Shards ?? [];
  const records: DynamoDBRecord[] = [];
  for (const shard of shards) {
    let iterator = (
      await clients.streams.send(
        new GetShardIteratorCommand({
          StreamArn: streamArn,
          ShardId: shard.ShardId,
          ShardIteratorType: "TRIM_HORIZON",
        }),
      )
    ).ShardIterator;
    for (let empty = 0; iterator && empty < 2; ) {
      const out = await clients.streams.send(
        new GetRecordsCommand({ ShardIterator: iterator, Limit: GET_RECORDS_LIMIT }),
      );
      const page = out.Records ?? [];
      records.push(...page.map((r) => toLambdaRecord(r, streamArn)));
      iterator = out.NextShardIterator;
      if (page.length === 0) {
        empty++;
        await sleep(100);
      } else empty = 0;
    }
  }
  return records;
}
