// A long sweep whose credentials stop working: it stops before they expire when it can see their
// expiry (fixed session credentials, as `sst shell` hands a command), and when DynamoDB refuses an
// expired token it stops too — gracefully, checkpoints kept — instead of failing; --resume with
// fresh credentials continues it. Expired tokens are injected at the client (DynamoDB Local accepts any).
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createClients,
  destroyClients,
  expiredCredentials,
  Ledger,
  MIGRATOR_MARKER,
  planSweep,
  runSweep,
  type Clients,
} from "@sitelogix/core";
import {
  generateDataset,
  loadDataset,
  type SampleRow,
  createTestTables,
  type TestTables,
  ledgerOf,
  pendingWork,
  scanAll,
  sweepTable,
} from "@sitelogix/testkit";

let t: TestTables;
let rows: SampleRow[];
const opened: Clients[] = [];

beforeAll(async () => {
  t = await createTestTables("legacy");
  rows = [...generateDataset({ items: 800, seed: 5, transcriptBytes: 4000, largeTranscripts: false })].filter(
    (r) => r.table === "reports",
  );
});
afterEach(() => {
  for (const c of opened.splice(0)) destroyClients(c);
});
afterAll(() => t?.dispose());

/** Clients whose credentials carry an expiry, as the SDK reports fixed session credentials. */
function clientsExpiringAt(expiration: Date): Clients {
  const clients = createClients({
    credentials: async () => ({
      accessKeyId: process.env.AWS_ACCESS_KEY_ID!,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY!,
      expiration,
    }),
  });
  opened.push(clients);
  return clients;
}

/** From the `after`-th request on, DynamoDB answers as it does to an expired session token. */
function expireTokenAfter(client: DynamoDBClient, after: number): void {
  let seen = 0;
  const middleware = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
    if (++seen > after) {
      throw Object.assign(new Error("The security token included in the request is expired"), {
        name: "ExpiredTokenException",
        $fault: "client",
        $metadata: { httpStatusCode: 400 },
      });
    }
    return next(args);
  };
  client.middlewareStack.add(middleware as never, { step: "deserialize", name: "expireToken" });
}

async function expectAllNormalizedOnce(): Promise<void> {
  const items = await scanAll(t.clients.doc, t.names.reports);
  expect(items).toHaveLength(rows.length);
  for (const item of items) {
    expect(await pendingWork(t.clients.doc, "reports", t.names.reports, item)).toEqual([]);
    expect(Number(item[MIGRATOR_MARKER.rev])).toBe(1);
  }
}

describe("a sweep whose credentials expire", () => {
  it("stops before they do, records why in the ledger, and --resume with fresh credentials finishes it", async () => {
    await loadDataset(t.clients.doc, t.names, rows);
    // 2.5 s of life left beyond the margin; capped at 100 WCU/s the sweep needs far longer.
    const expiration = new Date(Date.now() + 62_500);
    const report = await sweepTable(t, "reports", {
      clients: clientsExpiringAt(expiration),
      maxWcu: 100,
      controlIntervalMs: 200,
    });
    const reason = `the AWS credentials expire at ${expiration.toISOString()} and were not renewed`;
    expect(report).toMatchObject({ status: "stopped", stopReason: reason });
    expect(report.counts.applied).toBeGreaterThan(0);
    expect(report.counts.applied).toBeLessThan(rows.length);
    const run = (await ledgerOf(t).latestSweep("reports"))!;
    expect(run).toMatchObject({ status: "stopped", error: reason });

    const resumed = await sweepTable(t, "reports", { resume: true });
    expect(resumed).toMatchObject({ status: "finished", resumed: true, sweepId: run.sweepId });
    expect(resumed.stopReason).toBeUndefined();
    await expectAllNormalizedOnce();
  });

  it("refuses to start when they expire within the margin", async () => {
    const soon = new Date(Date.now() + 10_000);
    await expect(sweepTable(t, "vendors", { clients: clientsExpiringAt(soon) })).rejects.toThrow(
      `the AWS credentials expire at ${soon.toISOString()}: get fresh ones before sweeping`,
    );
    expect(await ledgerOf(t).latestSweep("vendors")).toBeUndefined();
  });

  it(
    "stops, not fails, when DynamoDB refuses an expired token mid-sweep; --resume with fresh " +
      "credentials finishes it",
    async () => {
      await loadDataset(t.clients.doc, t.names, rows);
      const clients = createClients();
      opened.push(clients);
      // Past the run's creation and a few pages of writes, then every request is refused — the
      // ledger's too, as in the CLI, where one set of credentials serves both.
      expireTokenAfter(clients.dynamodb, 60);
      const ledger = new Ledger(clients.doc, t.names.ledger);
      const plan = await planSweep(ledger, "reports", {});
      if (plan.action === "skip") throw new Error("nothing to sweep");
      const report = await runSweep({
        clients,
        ledger,
        table: "reports",
        tableName: t.names.reports,
        plan,
        segments: 4,
        concurrency: 16,
      });
      expect(report.status).toBe("stopped");
      expect(report.stopReason).toBe(
        "the AWS credentials expired (the ledger could not record it with them; --resume takes the run over)",
      );
      expect(report.counts.applied).toBeLessThan(rows.length);
      // Still "running" with this process as owner: the run's heartbeat goes stale and --resume takes it over.
      const run = (await ledgerOf(t).latestSweep("reports"))!;
      expect(run.status).toBe("running");

      const resumed = await sweepTable(t, "reports", { resume: true, leaseMs: 0 });
      expect(resumed).toMatchObject({ status: "finished", sweepId: run.sweepId });
      await expectAllNormalizedOnce();
    },
  );
});

describe("expiredCredentials", () => {
  it("names expired tokens and credentials that could not be renewed, and nothing else", () => {
    expect(expiredCredentials(Object.assign(new Error("x"), { name: "ExpiredTokenException" }))).toBe(
      "the AWS credentials expired",
    );
    expect(expiredCredentials(Object.assign(new Error("Token is expired\nmore"), { name: "TokenProviderError" }))).toBe(
      "the AWS credentials could not be renewed (Token is expired)",
    );
    expect(expiredCredentials(Object.assign(new Error("x"), { name: "AccessDeniedException" }))).toBeUndefined();
    expect(expiredCredentials(undefined)).toBeUndefined();
  });
});
