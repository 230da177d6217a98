// The throttler: the WCU budget and the adaptive slow-down as units (fake clock), throttling errors
// injected into real requests to DynamoDB Local (which never throttles by itself), and --max-wcu
// measured against the capacity DynamoDB reports.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createClients, destroyClients, MIGRATOR_MARKER, Throttler, type SweepProgress } from "@sitelogix/core";
import {
  generateDataset,
  loadDataset,
  type SampleRow,
  createTestTables,
  type TestTables,
  pendingWork,
  scanAll,
  sweepTable,
} from "@sitelogix/testkit";

describe("Throttler (fake clock)", () => {
  beforeAll(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  });
  afterAll(() => {
    vi.useRealTimers();
  });

  /** Writes of `cost` WCU as fast as the throttler lets them through for `seconds`; returns how many. */
  async function writeFor(throttler: Throttler, seconds: number, cost = 1): Promise<number> {
    let writes = 0;
    const end = performance.now() + seconds * 1000;
    const loop = (async () => {
      while (performance.now() < end) {
        const estimate = throttler.estimate();
        await throttler.acquire(estimate);
        if (performance.now() >= end) break;
        throttler.settle(estimate, cost);
        writes++;
      }
    })();
    await vi.advanceTimersByTimeAsync(seconds * 1000 + 10);
    await loop;
    return writes;
  }

  it("holds consumed WCU to the cap, also when a write costs more than estimated", async () => {
    expect(await writeFor(new Throttler({ maxWcu: 100 }), 10)).toBeGreaterThanOrEqual(990);
    expect(await writeFor(new Throttler({ maxWcu: 100 }), 10)).toBeLessThanOrEqual(1000 + 50);
    // 10-WCU writes: a tenth as many.
    const big = await writeFor(new Throttler({ maxWcu: 100 }), 10, 10);
    expect(big).toBeGreaterThanOrEqual(95);
    expect(big).toBeLessThanOrEqual(106);
  });

  it("halves the rate on throttling (once per burst of errors) and recovers to the cap", async () => {
    const throttler = new Throttler({ maxWcu: 200 });
    await writeFor(throttler, 3);
    expect(throttler.achievedRate()).toBeGreaterThan(180);
    for (let i = 0; i < 10; i++) throttler.onThrottle();
    expect(throttler.stats).toMatchObject({ throttles: 10, slowdowns: 1 });
    expect(throttler.stats.limit).toBeGreaterThan(80);
    expect(throttler.stats.limit).toBeLessThanOrEqual(100);
    const slowed = await writeFor(throttler, 1);
    expect(slowed).toBeLessThan(130);
    await writeFor(throttler, 8);
    expect(throttler.stats.limit).toBe(200);
  });

  it("without a cap, limits nothing until throttled, then slows down and lifts the limit again", async () => {
    const throttler = new Throttler();
    expect(throttler.stats.limit).toBeNull();
    // Nothing consumed yet: no rate to cut (the SDK's backoff alone handles it).
    throttler.onThrottle();
    expect(throttler.stats.limit).toBeNull();
    const end = performance.now() + 32_000;
    const loop = (async () => {
      while (performance.now() < end) {
        await throttler.acquire(1);
        throttler.settle(1, 1);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await vi.advanceTimersByTimeAsync(2100);
    throttler.onThrottle();
    const limit = throttler.stats.limit!;
    expect(limit).toBeGreaterThan(50);
    expect(limit).toBeLessThan(150);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(throttler.stats.limit).toBeNull();
    await vi.advanceTimersByTimeAsync(1000);
    await loop;
    expect(throttler.stats.limit).toBeNull();
  });
});

describe("sweep with throttling and --max-wcu (DynamoDB Local)", () => {
  let t: TestTables;
  let rows: SampleRow[];
  const clientsToClose: ReturnType<typeof createClients>[] = [];

  beforeAll(async () => {
    t = await createTestTables("legacy");
    rows = [...generateDataset({ items: 700, seed: 8, transcriptBytes: 4000, largeTranscripts: false })].filter(
      (r) => r.table === "reports",
    );
  });
  afterEach(async () => {
    for (const c of clientsToClose.splice(0)) destroyClients(c);
  });
  afterAll(async () => {
    await t?.dispose();
  });

  /**
   * Fails every `every`-th attempt of the operation with a throttling error (before it is sent) for
   * `forMs` after the first one (the first `after` attempts pass): a burst of throttling, as a table
   * gets when it runs out of capacity.
   */
  function injectThrottling(
    client: DynamoDBClient,
    operation: "UpdateExpression" | "Segment",
    every: number,
    forMs: number,
    name = "ThrottlingException",
    after = 0,
  ) {
    const state = { injected: 0, seen: 0, since: 0 };
    const middleware = (next: (args: { input: unknown }) => Promise<unknown>) => async (args: { input: unknown }) => {
      const inBurst = state.injected === 0 || performance.now() - state.since < forMs;
      if (
        (args.input as Record<string, unknown>)[operation] !== undefined &&
        inBurst &&
        ++state.seen > after &&
        state.seen % every === 0
      ) {
        if (state.injected++ === 0) state.since = performance.now();
        throw Object.assign(new Error("Rate of requests exceeds the allowed throughput."), {
          name,
          $fault: "client",
          $metadata: { httpStatusCode: 400 },
        });
      }
      return next(args);
    };
    client.middlewareStack.add(middleware as never, { step: "deserialize", name: `injectThrottling${operation}` });
    return state;
  }

  async function expectAllNormalized(expected: number): Promise<void> {
    const items = await scanAll(t.clients.doc, t.names.reports);
    expect(items).toHaveLength(expected);
    for (const item of items) {
      expect(await pendingWork(t.clients.doc, "reports", t.names.reports, item)).toEqual([]);
      expect(Number(item[MIGRATOR_MARKER.rev])).toBe(1);
    }
  }

  it("slows down on throttling the SDK retries, and never gives up an item on throttling it does not", async () => {
    const some = rows.slice(0, 100);
    await loadDataset(t.clients.doc, t.names, some);
    // The SDK's own retries absorb most throttles; the sweep sees them all and cuts its rate.
    const retried = createClients();
    clientsToClose.push(retried);
    // The burst starts after 30 writes: there is then a rate to cut, however slow this machine is today.
    const writes = injectThrottling(
      retried.dynamodb,
      "UpdateExpression",
      3,
      600,
      "ProvisionedThroughputExceededException",
      30,
    );
    const limits: (number | null)[] = [];
    const first = await sweepTable(t, "reports", {
      clients: retried,
      progressIntervalMs: 50,
      onProgress: (p: SweepProgress) => limits.push(p.wcuLimit),
    });
    expect(writes.injected).toBeGreaterThan(0);
    expect(first.throttles).toBe(writes.injected);
    expect(limits.some((l) => l !== null)).toBe(true);
    expect(first.counts).toMatchObject({ applied: some.length, rejected: 0 });
    await expectAllNormalized(some.length);

    // No SDK retries at all: throttled writes and scan pages surface, and the sweep retries them itself.
    await loadDataset(t.clients.doc, t.names, some);
    const bare = createClients({ maxAttempts: 1 });
    clientsToClose.push(bare);
    const updates = injectThrottling(bare.dynamodb, "UpdateExpression", 4, 600);
    const scans = injectThrottling(bare.dynamodb, "Segment", 2, 600);
    const second = await sweepTable(t, "reports", { clients: bare });
    expect(updates.injected).toBeGreaterThan(0);
    expect(scans.injected).toBeGreaterThan(0);
    expect(second.counts).toMatchObject({ scanned: some.length, applied: some.length, rejected: 0 });
    await expectAllNormalized(some.length);
  });

  it("holds --max-wcu within ±10% of the consumed capacity DynamoDB reports", async () => {
    // The budget must be one this machine can exceed right now (it may be shared): a part of what an
    // unthrottled sweep of the same items reaches in the same run (a third: room for the load of a
    // shared machine to change between the two sweeps), at most 300 WCU/s.
    await loadDataset(t.clients.doc, t.names, rows);
    const ceiling = await sweepTable(t, "reports");
    const ceilingRate = (ceiling.counts.consumedWcu / ceiling.durationMs) * 1000;
    const maxWcu = Math.min(300, Math.round(ceilingRate / 3));
    expect(maxWcu).toBeGreaterThan(40);
    await loadDataset(t.clients.doc, t.names, rows);
    const samples: { at: number; wcu: number }[] = [];
    const report = await sweepTable(t, "reports", {
      maxWcu,
      progressIntervalMs: 100,
      onProgress: (p) => samples.push({ at: p.elapsedMs, wcu: p.counts.consumedWcu }),
    });
    const total = report.counts.consumedWcu;
    expect(report.counts.applied).toBe(rows.length);
    // Steady state: between 10% and 90% of the work (start-up and the tail excluded).
    const from = samples.find((s) => s.wcu >= total * 0.1)!;
    const to = [...samples].reverse().find((s) => s.wcu <= total * 0.9)!;
    expect(to.at - from.at).toBeGreaterThan(5000);
    const rate = ((to.wcu - from.wcu) / (to.at - from.at)) * 1000;
    expect(rate).toBeGreaterThan(maxWcu * 0.9);
    expect(rate).toBeLessThan(maxWcu * 1.1);
  }, 180_000);
});
