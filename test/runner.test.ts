// The local event-source mapping's Lambda semantics, with handlers that record what they are given:
// partial batch responses, bisect, retries and the on-failure sink, record age, filters, shard
// lineage and starting positions. Streams are DynamoDB Local's, except where it cannot produce the
// case (closed parent shards, hour-old records): there the Streams client is mocked.
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record,
} from "@aws-sdk/client-dynamodb-streams";
import { DeleteCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger, SUBSCRIPTIONS, type FilterPattern, type Subscription } from "@sitelogix/core";
import { StreamRunner, type StreamRunnerOptions } from "@sitelogix/core/local-esm";
import { createTestTables, type TestTables, readStreamRecords, waitFor } from "@sitelogix/testkit";

const audit = SUBSCRIPTIONS.find((s) => s.name === "audit-logger")!;
/** The audit-logger subscription on the cache table only, no batching window, few retries. */
const subscription = (overrides: Partial<Subscription> = {}): Subscription[] => [
  { ...audit, tables: ["ai-analysis-cache"], maximumBatchingWindowInSeconds: 0, maximumRetryAttempts: 2, ...overrides },
];

/** A handler that records every batch it is given and answers with `respond`. */
function recorder(respond: (seqs: string[], keys: string[]) => DynamoDBBatchResponse | undefined = () => undefined) {
  const batches: { seqs: string[]; keys: string[] }[] = [];
  const handler = async (event: DynamoDBStreamEvent) => {
    const seqs = event.Records.map((r) => r.dynamodb!.SequenceNumber!);
    const keys = event.Records.map((r) => r.dynamodb!.Keys!.PK!.S!);
    batches.push({ seqs, keys });
    return respond(seqs, keys);
  };
  return { batches, handler };
}

function start(t: TestTables, options: Partial<StreamRunnerOptions>) {
  const ledger = new Ledger(t.clients.doc, t.names.ledger);
  const runner = new StreamRunner({
    clients: t.clients,
    names: t.names,
    ledger,
    tables: ["ai-analysis-cache"],
    subscribers: ["audit-logger"],
    pollIntervalMs: 50,
    ...options,
  });
  const done = runner.run();
  return {
    runner,
    ledger,
    async stop() {
      runner.stop();
      return done;
    },
  };
}

describe("local event-source mapping on DynamoDB Local", () => {
  let t: TestTables;
  beforeAll(async () => {
    t = await createTestTables("legacy");
  });
  afterAll(async () => {
    await t?.dispose();
  });

  const put = (id: string) =>
    t.clients.doc.send(
      new PutCommand({
        TableName: t.names["ai-analysis-cache"],
        Item: { PK: `ANALYSIS#${id}`, SK: "RESULT", analysisType: "summary" },
      }),
    );
  const streamSeqs = async (ids: string[]) => {
    const records = await readStreamRecords(t.clients, t.names["ai-analysis-cache"]);
    return ids.map(
      (id) => records.find((r) => r.keys.PK === `ANALYSIS#${id}` && r.eventName === "INSERT")!.sequenceNumber,
    );
  };

  it(
    "partial batch response: " +
      "checkpoints before the lowest failed record and redelivers it with every later record",
    async () => {
      const ids = ["p1", "p2", "p3", "p4", "p5"];
      for (const id of ids) await put(id);
      const seqs = await streamSeqs(ids);
      let first = true;
      // The first delivery fails p5 and p3 (reported out of order); the retry succeeds.
      const { batches, handler } = recorder((s) => {
        if (!first) return;
        first = false;
        return { batchItemFailures: [{ itemIdentifier: s[4]! }, { itemIdentifier: s[2]! }] };
      });
      const run = start(t, { subscriptions: subscription(), handlers: { "audit-logger": handler } });
      try {
        await waitFor(() => batches.length >= 2, "the redelivery");
        const checkpoint = await waitFor(
          async () =>
            (await run.ledger.shardCheckpoints("audit-logger", "ai-analysis-cache")).find(
              (c) => c.sequenceNumber === seqs[4],
            ),
          "the checkpoint at p5",
        );
        expect(checkpoint.finished).toBe(false);
      } finally {
        await run.stop();
      }
      expect(batches.map((b) => b.seqs)).toEqual([seqs, seqs.slice(2)]);
      expect(await run.ledger.streamFailures("audit-logger", "ai-analysis-cache")).toEqual([]);
    },
  );

  it(
    "function error: " +
      "bisects, retries the failing half down to the poison record, sinks it after maximumRetryAttempts, moves on",
    async () => {
      const ids = ["b1", "b2", "poison", "b3"];
      for (const id of ids) await put(id);
      const [b1, b2, poison, b3] = await streamSeqs(ids);
      const { batches, handler } = recorder((_, keys) => {
        if (keys.includes("ANALYSIS#poison")) throw new Error("cannot process ANALYSIS#poison");
        return undefined;
      });
      // The previous test's mapping resumes from its checkpoint: only the new records come.
      const run = start(t, { subscriptions: subscription(), handlers: { "audit-logger": handler } });
      try {
        await waitFor(
          () => batches.some((b) => b.seqs.includes(b3!) && !b.seqs.includes(poison!)),
          "b3 after the poison",
        );
        await put("b4");
        await waitFor(() => batches.some((b) => b.keys.includes("ANALYSIS#b4")), "a later record");
      } finally {
        await run.stop();
      }
      expect(batches.slice(0, 7).map((b) => b.seqs)).toEqual([
        [b1, b2, poison, b3],
        [b1, b2],
        [poison, b3],
        [poison],
        [poison],
        [poison],
        [b3],
      ]);
      const failures = await run.ledger.streamFailures("audit-logger", "ai-analysis-cache");
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({
        condition: "RetryAttemptsExhausted",
        startSequenceNumber: poison,
        endSequenceNumber: poison,
        batchSize: 1,
        attempts: 3,
        error: "Error: cannot process ANALYSIS#poison",
        records: [{ sequenceNumber: poison, eventName: "INSERT", keys: { PK: "ANALYSIS#poison", SK: "RESULT" } }],
      });
    },
  );

  it(
    "filters: " + "records no subscription filter matches are never delivered, and the checkpoint moves past them",
    async () => {
      const t2 = await createTestTables("legacy");
      try {
        const table = t2.names["ai-analysis-cache"];
        const key = { PK: "ANALYSIS#f1", SK: "RESULT" };
        await t2.clients.doc.send(new PutCommand({ TableName: table, Item: { ...key, analysisType: "summary" } }));
        await t2.clients.doc.send(
          new UpdateCommand({
            TableName: table,
            Key: key,
            UpdateExpression: "SET analysisType = :t",
            ExpressionAttributeValues: { ":t": "risk" },
          }),
        );
        await t2.clients.doc.send(new DeleteCommand({ TableName: table, Key: key }));
        const records = await readStreamRecords(t2.clients, table);
        const { batches, handler } = recorder();
        // Lambda's filter syntax as the normalizer uses it: event names, or a key prefix with an event name.
        const filters: FilterPattern[] = [
          { eventName: ["INSERT"] },
          { eventName: ["REMOVE"], dynamodb: { Keys: { PK: { S: [{ prefix: "ANALYSIS#f" }] } } } },
          { eventName: ["MODIFY"], dynamodb: { Keys: { PK: { S: [{ prefix: "OTHER#" }] } } } },
        ];
        const run = start(t2, { subscriptions: subscription({ filters }), handlers: { "audit-logger": handler } });
        try {
          await waitFor(
            async () =>
              (await run.ledger.shardCheckpoints("audit-logger", "ai-analysis-cache")).some(
                (c) => c.sequenceNumber === records[2]!.sequenceNumber,
              ),
            "the checkpoint past the REMOVE",
          );
        } finally {
          await run.stop();
        }
        expect(batches.flatMap((b) => b.seqs)).toEqual([records[0]!.sequenceNumber, records[2]!.sequenceNumber]);
      } finally {
        await t2.dispose();
      }
    },
  );

  it("records older than maximumRecordAgeInSeconds go to the on-failure sink without being delivered", async () => {
    const t2 = await createTestTables("legacy");
    try {
      await t2.clients.doc.send(
        new PutCommand({ TableName: t2.names["ai-analysis-cache"], Item: { PK: "ANALYSIS#old", SK: "RESULT" } }),
      );
      const { batches, handler } = recorder();
      const run = start(t2, {
        subscriptions: subscription({ maximumRecordAgeInSeconds: 0 }),
        handlers: { "audit-logger": handler },
      });
      const [failure] = await waitFor(async () => {
        const f = await run.ledger.streamFailures("audit-logger", "ai-analysis-cache");
        return f.length > 0 ? f : undefined;
      }, "the aged record in the sink").finally(() => run.stop());
      expect(failure).toMatchObject({
        condition: "RecordAgeExceeded",
        batchSize: 1,
        attempts: 0,
        records: [{ keys: { PK: "ANALYSIS#old", SK: "RESULT" } }],
      });
      expect(batches).toEqual([]);
    } finally {
      await t2.dispose();
    }
  });

  it("handlers get a Lambda context whose remaining time counts down from the function timeout", async () => {
    const t2 = await createTestTables("legacy");
    try {
      await t2.clients.doc.send(
        new PutCommand({ TableName: t2.names["ai-analysis-cache"], Item: { PK: "ANALYSIS#ctx", SK: "RESULT" } }),
      );
      const seen: { remaining: number; requestId: string; arn: string }[] = [];
      const run = start(t2, {
        subscriptions: subscription(),
        functionTimeoutMs: 5_000,
        handlers: {
          "audit-logger": async (_event, context) => {
            seen.push({
              remaining: context.getRemainingTimeInMillis(),
              requestId: context.awsRequestId,
              arn: context.invokedFunctionArn,
            });
          },
        },
      });
      await waitFor(() => seen.length > 0, "an invocation").finally(() => run.stop());
      expect(seen[0]!.remaining).toBeGreaterThan(0);
      expect(seen[0]!.remaining).toBeLessThanOrEqual(5_000);
      expect(seen[0]!.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(seen[0]!.arn).toMatch(/^arn:aws:lambda:[^:]+:\d{12}:function:sitelogix-local-audit-logger$/);
    } finally {
      await t2.dispose();
    }
  });
});

describe("shard lineage and starting positions (Streams API mocked: DynamoDB Local has one open shard)", () => {
  let t: TestTables;
  beforeAll(async () => {
    t = await createTestTables("legacy");
  });
  afterAll(async () => {
    await t?.dispose();
  });

  const streamRecord = (seq: string, id: string, created: Date): _Record => ({
    eventID: `ev-${seq}`,
    eventName: "INSERT",
    awsRegion: "us-east-1",
    dynamodb: {
      ApproximateCreationDateTime: created,
      Keys: marshall({ PK: id, SK: "RESULT" }),
      NewImage: marshall({ PK: id, SK: "RESULT" }),
      SequenceNumber: seq,
      SizeBytes: 50,
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  });

  /** A stream with the given shards; each shard's records come one GetRecords page per entry. */
  function mockedStreams(shards: { id: string; parent?: string; pages: _Record[][]; closed: boolean }[]) {
    const streams = new DynamoDBStreamsClient({ region: "us-east-1" });
    const mock = mockClient(streams);
    // Two DescribeStream pages, the child listed before its parent.
    mock.on(DescribeStreamCommand).callsFake((input: { ExclusiveStartShardId?: string }) => {
      const list = shards.map((s) => ({
        ShardId: s.id,
        ...(s.parent ? { ParentShardId: s.parent } : {}),
        SequenceNumberRange: { StartingSequenceNumber: "1" },
      }));
      const index = input.ExclusiveStartShardId
        ? list.findIndex((s) => s.ShardId === input.ExclusiveStartShardId) + 1
        : 0;
      return {
        StreamDescription: {
          Shards: [list[index]!],
          ...(index < list.length - 1 ? { LastEvaluatedShardId: list[index]!.ShardId } : {}),
        },
      };
    });
    const reads: string[] = [];
    mock
      .on(GetShardIteratorCommand)
      .callsFake((input: { ShardId: string }) => ({ ShardIterator: `${input.ShardId}|0` }));
    mock.on(GetRecordsCommand).callsFake((input: { ShardIterator: string }) => {
      const [id, page] = input.ShardIterator.split("|") as [string, string];
      reads.push(id);
      const shard = shards.find((s) => s.id === id)!;
      const n = Number(page);
      const last = n >= shard.pages.length - 1;
      return {
        Records: shard.pages[n] ?? [],
        ...(last && shard.closed ? {} : { NextShardIterator: `${id}|${Math.min(n + 1, shard.pages.length)}` }),
      };
    });
    return { streams, reads };
  }

  it("reads a child shard only after its parent is closed and fully processed", async () => {
    const now = new Date();
    const { streams, reads } = mockedStreams([
      { id: "shard-child", parent: "shard-parent", pages: [[streamRecord("300", "ANALYSIS#c1", now)]], closed: false },
      {
        id: "shard-parent",
        pages: [[streamRecord("100", "ANALYSIS#p1", now)], [streamRecord("200", "ANALYSIS#p2", now)]],
        closed: true,
      },
    ]);
    const delivered: string[] = [];
    const ledger = new Ledger(t.clients.doc, t.names.ledger);
    const runner = new StreamRunner({
      clients: { dynamodb: t.clients.dynamodb, streams },
      names: t.names,
      ledger,
      tables: ["ai-analysis-cache"],
      subscribers: ["audit-logger"],
      subscriptions: subscription(),
      pollIntervalMs: 20,
      handlers: {
        "audit-logger": async (event) => {
          delivered.push(...event.Records.map((r) => r.dynamodb!.SequenceNumber!));
        },
      },
    });
    const done = runner.run();
    try {
      await waitFor(() => delivered.includes("300"), "the child's record");
    } finally {
      runner.stop();
      await done;
    }
    expect(delivered).toEqual(["100", "200", "300"]);
    expect(reads.indexOf("shard-child")).toBeGreaterThan(reads.lastIndexOf("shard-parent"));
    const checkpoints = await ledger.shardCheckpoints("audit-logger", "ai-analysis-cache");
    expect(checkpoints.find((c) => c.shardId === "shard-parent")).toMatchObject({
      finished: true,
      sequenceNumber: "200",
    });
    expect(checkpoints.find((c) => c.shardId === "shard-child")).toMatchObject({
      finished: false,
      sequenceNumber: "300",
      parentShardId: "shard-parent",
    });
    streams.destroy();
  });

  it(
    "--from latest: " + "a new mapping skips what was written before it started and records its starting position",
    async () => {
      const t2 = await createTestTables("legacy");
      try {
        const hourAgo = new Date(Date.now() - 3600_000);
        const { streams } = mockedStreams([
          {
            id: "shard-1",
            pages: [[streamRecord("100", "ANALYSIS#old", hourAgo), streamRecord("200", "ANALYSIS#new", new Date())]],
            closed: false,
          },
        ]);
        const ledger = new Ledger(t2.clients.doc, t2.names.ledger);
        const delivered: string[] = [];
        const options: StreamRunnerOptions = {
          clients: { dynamodb: t2.clients.dynamodb, streams },
          names: t2.names,
          ledger,
          tables: ["ai-analysis-cache"],
          subscribers: ["audit-logger"],
          subscriptions: subscription(),
          pollIntervalMs: 20,
          from: "latest",
          handlers: {
            "audit-logger": async (event) => {
              delivered.push(...event.Records.map((r) => r.dynamodb!.SequenceNumber!));
            },
          },
        };
        const runner = new StreamRunner(options);
        const done = runner.run();
        await waitFor(() => delivered.includes("200"), "the new record").finally(() => runner.stop());
        await done;
        expect(delivered).toEqual(["200"]);
        const [mapping] = await ledger.query<{ from: string; startedAt: string }>(
          "STREAM#audit-logger#ai-analysis-cache",
          "MAPPING",
        );
        expect(mapping?.from).toBe("latest");
        streams.destroy();
      } finally {
        await t2.dispose();
      }
    },
  );
});
