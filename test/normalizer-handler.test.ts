// The normalizer Lambda handler invoked directly with Lambda-format events (Powertools batch, logger
// and metrics for real) against DynamoDB Local: per-record failure reporting, containment of
// malformed records (invariant 7), transient versus data errors, logs and metrics without values.
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { Context, DynamoDBRecord } from "aws-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  createClients,
  destroyClients,
  Ledger,
  type Item,
  type NormalizerDeps,
  type SiteLogixTable,
} from "@sitelogix/core";
import { createTestTables, type TestTables } from "@sitelogix/testkit";

process.env.POWERTOOLS_LOG_LEVEL = "DEBUG";
const { createNormalizerHandler } = await import("@sitelogix/functions/normalizer");

let t: TestTables;
let deps: NormalizerDeps;
beforeAll(async () => {
  t = await createTestTables("legacy");
  deps = { doc: t.clients.doc, names: t.names, ledger: new Ledger(t.clients.doc, t.names.ledger) };
});
afterAll(async () => {
  await t?.dispose();
});

// What the handler prints (Powertools writes info/debug and EMF to stdout, warnings and errors to stderr).
let stdout = "";
let stderr = "";
beforeAll(() => {
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
});
afterEach(() => {
  stdout = "";
  stderr = "";
});

let seq = 1000;
const createdAt = Math.floor(Date.parse("2025-11-20T10:00:00Z") / 1000);

function record(table: SiteLogixTable, item: Item, eventName: "INSERT" | "MODIFY" = "INSERT"): DynamoDBRecord {
  return {
    eventID: `ev-${seq}`,
    eventName,
    eventVersion: "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: "us-east-1",
    eventSourceARN: `arn:aws:dynamodb:us-east-1:123456789012:table/${t.names[table]}/stream/2025-11-20T00:00:00.000`,
    dynamodb: {
      ApproximateCreationDateTime: createdAt,
      Keys: marshall({ PK: item.PK, SK: item.SK }) as never,
      NewImage: marshall(item) as never,
      SequenceNumber: String(seq++).padStart(21, "0"),
      SizeBytes: 200,
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  };
}

function context(remainingMs = 30_000): Context {
  const deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: "sitelogix-normalizer-test",
    functionVersion: "$LATEST",
    invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:sitelogix-normalizer-test",
    memoryLimitInMB: "1024",
    awsRequestId: "req-1",
    logGroupName: "/aws/lambda/sitelogix-normalizer-test",
    logStreamName: "2025/11/20/[$LATEST]0",
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

const person = (id: string, extra: Item = {}): Item => ({
  PK: `PERSON#${id}`,
  SK: "PROFILE",
  fullName: "Ada Lovelace",
  phone: "+1-555-0199",
  employmentStatus: "active",
  createdAt: "2025-01-01T00:00:00.000Z",
  ...extra,
});
const report = (id: string): Item => ({
  PK: `REPORT#${id}`,
  SK: "METADATA",
  projectId: "proj_001",
  managerId: "mgr_01",
  reportDate: "2025-11-20",
  createdAt: "2025-11-20T08:00:00.000Z",
});
const put = (table: SiteLogixTable, item: Item) =>
  t.clients.doc.send(new PutCommand({ TableName: t.names[table], Item: item }));
const get = async (table: SiteLogixTable, item: Item) =>
  (
    await t.clients.doc.send(
      new GetCommand({ TableName: t.names[table], Key: { PK: item.PK, SK: item.SK }, ConsistentRead: true }),
    )
  ).Item;

describe("normalizer handler", () => {
  it(
    "invariant 7: " + "bad input is contained — a malformed record fails alone, its neighbours are normalized",
    async () => {
      const a = person("h1");
      const b = person("h2");
      await put("personnel", a);
      await put("personnel", b);
      const malformed = record("personnel", person("h3"));
      delete malformed.dynamodb!.Keys;
      const handler = createNormalizerHandler({ deps });
      const response = await handler(
        { Records: [record("personnel", a), malformed, record("personnel", b)] },
        context(),
      );
      expect(response.batchItemFailures).toEqual([{ itemIdentifier: malformed.dynamodb!.SequenceNumber }]);
      expect(await get("personnel", a)).toMatchObject({ full_name: "Ada Lovelace", status: "active" });
      expect(await get("personnel", b)).toMatchObject({ full_name: "Ada Lovelace", status: "active" });
      // Reported with what it carries (its event ID and sequence number), never its images.
      expect(stderr).toMatch(/malformed stream record/);
      expect(stderr).toContain(malformed.eventID);
      expect(stdout + stderr).not.toMatch(/555-0199/);
    },
  );

  it(
    "items run concurrently, one item's records in stream order: " +
      "after a failed record, its item's later records wait for the retry",
    async () => {
      const a = person("o1");
      const b = person("o2");
      await put("personnel", a);
      await put("personnel", b);
      // a's first record cannot be decoded; its second must not run ahead of it.
      const aFirst = record("personnel", a);
      aFirst.dynamodb!.NewImage = { PK: { S: a.PK as string }, SK: { S: "PROFILE" }, fullName: { X: "?" } } as never;
      const aSecond = record("personnel", a, "MODIFY");
      const bRecords = [record("personnel", b), record("personnel", { ...b, fullName: "Grace Hopper" }, "MODIFY")];
      const started: string[] = [];
      const handler = createNormalizerHandler({ deps, onResult: (_result, r) => started.push(r.eventID!) });
      const response = await handler({ Records: [aFirst, bRecords[0]!, aSecond, bRecords[1]!] }, context());
      // Lambda retries from the lowest failed sequence number: both of a's records, in their order.
      expect(response.batchItemFailures).toEqual([
        { itemIdentifier: aFirst.dynamodb!.SequenceNumber },
        { itemIdentifier: aSecond.dynamodb!.SequenceNumber },
      ]);
      expect(await get("personnel", a)).not.toHaveProperty("full_name");
      expect(started).not.toContain(aSecond.eventID);
      // b is another item: its records ran, in stream order.
      expect(started.filter((id) => bRecords.some((r) => r.eventID === id))).toEqual(bRecords.map((r) => r.eventID));
    },
  );

  it("a failed record without a sequence number fails the whole invocation instead of being dropped", async () => {
    const a = person("h4");
    await put("personnel", a);
    const anonymous = record("personnel", person("h5"));
    delete anonymous.dynamodb!.SequenceNumber;
    const handler = createNormalizerHandler({ deps });
    await expect(handler({ Records: [record("personnel", a), anonymous] }, context())).rejects.toThrow(
      /no SequenceNumber/,
    );
  });

  it("transient errors are batch item failures; data problems are recorded in the ledger and not retried", async () => {
    const throttled = report("h6");
    const fine = report("h7");
    const bad = person("h8", { fullName: 4242 });
    for (const item of [throttled, fine]) await put("reports", item);
    await put("personnel", bad);
    // DynamoDB Local never throttles: inject the error the SDK surfaces once its retries are spent.
    const clients = createClients();
    clients.doc.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: { PK?: string }; UpdateExpression?: string };
        if (input.UpdateExpression && input.Key?.PK === throttled.PK) {
          throw Object.assign(new Error("Rate of requests exceeds the allowed throughput."), {
            name: "ThrottlingException",
            $retryable: { throttling: true },
          });
        }
        return next(args);
      },
      { step: "initialize", name: "injectThrottling" },
    );
    try {
      const handler = createNormalizerHandler({ deps: { ...deps, doc: clients.doc } });
      const records = [record("reports", throttled), record("reports", fine), record("personnel", bad)];
      const response = await handler({ Records: records }, context());
      expect(response.batchItemFailures).toEqual([{ itemIdentifier: records[0]!.dynamodb!.SequenceNumber }]);
    } finally {
      destroyClients(clients);
    }
    expect((await get("reports", throttled))?.project_id).toBeUndefined();
    expect((await get("reports", fine))?.project_id).toBe("proj_001");
    expect(await get("personnel", bad)).toMatchObject({ status: "active", dateLastSeen: "2025-01-01T00:00:00.000Z" });
    const [violation] = (await deps.ledger.normalizerViolations("personnel")).filter((v) => v.key.PK === bad.PK);
    expect(violation).toMatchObject({
      key: { PK: bad.PK, SK: "PROFILE" },
      outcome: "applied",
      violations: [{ attribute: "full_name", problem: "source-not-string", at: "fullName", type: "N" }],
    });
    expect(stderr).toMatch(/record failed; it will be retried.*ThrottlingException/);
    expect(stderr).toMatch(/data problem recorded in the ledger/);
    expect(stdout + stderr).not.toMatch(/4242/);
  });

  it("logs keys and outcomes, publishes EMF counts per outcome and the lag, and never prints a value", async () => {
    const a = person("h9");
    await put("personnel", a);
    const handler = createNormalizerHandler({ deps });
    // The same image twice: the second time its write finds the targets already there (a redelivery).
    await handler({ Records: [record("personnel", a), record("personnel", a, "MODIFY")] }, context());
    const lines = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const emf = lines.find((l) => l._aws) as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string }[] }[] };
    };
    expect(emf._aws.CloudWatchMetrics[0]!.Namespace).toBe("SiteLogixMigrator");
    expect(emf._aws.CloudWatchMetrics[0]!.Metrics.map((m) => m.Name)).toEqual(
      expect.arrayContaining(["applied", "conflict", "lag"]),
    );
    expect(emf.applied).toBe(1);
    expect((emf.lag as number[])[0]).toBeGreaterThan(0);
    const perRecord = lines.filter((l) => l.message === "record normalized");
    expect(perRecord.map((l) => l.outcome)).toEqual(["applied", "conflict"]);
    expect(perRecord[0]).toMatchObject({
      table: "personnel",
      keys: { PK: a.PK, SK: "PROFILE" },
      eventID: expect.any(String),
    });
    expect(stdout + stderr).not.toMatch(/Ada Lovelace|555-0199/);
  });

  it("marks the table live from the first record's time plus the stream clock's granularity", async () => {
    const a = report("h10");
    await put("reports", a);
    await createNormalizerHandler({ deps })({ Records: [record("reports", a)] }, context());
    const { normalizerLiveAt } = await deps.ledger.tableState("reports");
    expect(normalizerLiveAt).toBe(new Date(createdAt * 1000 + 60_000).toISOString());
  });

  it("leaves records for redelivery when the function is about to time out", async () => {
    const a = report("h11");
    await put("reports", a);
    await expect(
      createNormalizerHandler({ deps })({ Records: [record("reports", a)] }, context(1_000)),
    ).rejects.toThrow();
    expect((await get("reports", a))?.project_id).toBeUndefined();
  });
});
