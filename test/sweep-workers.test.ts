// The segment worker and the distributed sweep on one machine (DynamoDB Local): leases (a second
// claimant is refused, an expired lease is taken over, two workers never share a segment), slices
// with item-precise checkpoints, `sweep --workers K` surviving a SIGKILLed worker, K processes
// holding one --max-wcu, and --set-max-wcu changing a running sweep within 5 s.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATOR_MARKER, type Item } from "@sitelogix/core";
import {
  LeaseLostError,
  runSegmentSlice,
  runSweepWorker,
  SegmentBusyError,
  SegmentLeases,
  startSweepRun,
  sumCounts,
} from "@sitelogix/core/sweep";
import {
  createTestTables,
  generateDataset,
  ledgerOf,
  loadDataset,
  pendingWork,
  runCli,
  type SampleRow,
  scanAll,
  startCli,
  sweepTable,
  type TestTables,
  waitFor,
} from "@sitelogix/testkit";

let t: TestTables;
let rows: SampleRow[];
let env: Record<string, string>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const reload = () => loadDataset(t.clients.doc, t.names, rows, { inFlight: 8 });
const reportsNow = () => scanAll(t.clients.doc, t.names.reports);
const latestRun = async () => (await ledgerOf(t).latestSweep("reports"))!;
/** The run a command started after `previous` (the latest run then). */
const newRun = (previous: string | undefined) =>
  waitFor(
    async () => {
      const run = await ledgerOf(t).latestSweep("reports");
      return run && run.sweepId !== previous ? run : undefined;
    },
    "the new sweep run",
    90_000,
  );
/** Consumed WCU and scanned items of the latest run, from its segments' checkpoints. */
const ledgerTotals = async () => {
  const run = await latestRun();
  return sumCounts(run ? await ledgerOf(t).checkpoints("reports", run.sweepId) : []);
};

async function expectAllNormalizedOnce(items: Item[]): Promise<void> {
  expect(items.length).toBe(rows.length);
  for (const item of items) {
    expect(await pendingWork(t.clients.doc, "reports", t.names.reports, item)).toEqual([]);
    // One write per item, also across a kill and a takeover: nothing was rewritten.
    expect(Number(item[MIGRATOR_MARKER.rev])).toBe(1);
  }
}

/** Consumed WCU/s of the latest run between two samples of its ledger totals `ms` apart. */
async function measuredRate(ms: number): Promise<number> {
  const a = { at: performance.now(), wcu: (await ledgerTotals()).consumedWcu };
  await sleep(ms);
  const b = { at: performance.now(), wcu: (await ledgerTotals()).consumedWcu };
  return ((b.wcu - a.wcu) / (b.at - a.at)) * 1000;
}

beforeAll(async () => {
  t = await createTestTables("legacy");
  env = { SITELOGIX_TABLE_PREFIX: t.prefix };
  rows = [...generateDataset({ items: 3000, seed: 14, transcriptBytes: 4000, largeTranscripts: false })].filter(
    (r) => r.table === "reports",
  );
  await reload();
}, 180_000);
afterAll(async () => {
  await t?.dispose();
});

describe("segment worker", () => {
  it("leases: a second claimant is refused, an expired lease is taken over and the first holder loses it", async () => {
    const ledger = ledgerOf(t);
    const run = await startSweepRun(ledger, { table: "reports", totalSegments: 2 });
    const a = new SegmentLeases(ledger, "reports", run.sweepId, "host-a#1#aa", 1500);
    const b = new SegmentLeases(ledger, "reports", run.sweepId, "host-b#2#bb", 1500);
    expect(await a.claim(0)).toMatchObject({ segment: 0, done: false, leaseHolder: "host-a#1#aa" });
    await expect(b.claim(0)).rejects.toBeInstanceOf(SegmentBusyError);
    // The other segment is free.
    expect(await b.claim(1)).toMatchObject({ segment: 1, leaseHolder: "host-b#2#bb" });
    await sleep(1700);
    expect(await b.claim(0)).toMatchObject({ segment: 0, leaseHolder: "host-b#2#bb" });
    await expect(a.save(0, { pages: 1 })).rejects.toBeInstanceOf(LeaseLostError);
    // A failure the state machine records is cleared by the next claim.
    await ledger.put(
      { PK: "TABLE#reports", SK: `SWEEPSEG#${run.sweepId}#0001` },
      {
        ...(await ledger.checkpoints("reports", run.sweepId))[1],
        failedAt: new Date().toISOString(),
        error: "Lambda.Unknown",
      },
    );
    const reclaimed = await b.claim(1);
    expect(reclaimed?.failedAt).toBeUndefined();
    expect(reclaimed?.error).toBeUndefined();
  });

  it("slices checkpoint the last applied item: a stop after N items resumes right after them", async () => {
    await reload();
    const ledger = ledgerOf(t);
    // One segment: a page holds far more items than are in flight.
    const run = await startSweepRun(ledger, { table: "reports", totalSegments: 1, concurrency: 4, maxWcu: 300 });
    const task = { sweepId: run.sweepId, table: "reports" as const, segment: 0, totalSegments: 1 };
    const deps = { clients: t.clients, ledger, tableName: t.names.reports };
    const stop = new AbortController();
    let seen = 0;
    const first = await runSegmentSlice(
      {
        ...deps,
        signal: stop.signal,
        onItem: () => {
          if (++seen === 40) stop.abort();
        },
      },
      task,
    );
    expect(first.done).toBe(false);
    const [checkpoint] = await ledger.checkpoints("reports", run.sweepId);
    // The cursor is an item's key, not a page's end; the lease is released.
    expect(Object.keys(checkpoint!.cursor!).sort()).toEqual(["PK", "SK"]);
    expect(checkpoint!.pages).toBe(0);
    expect(checkpoint!.leaseHolder).toBeUndefined();
    expect(checkpoint!.counts.scanned).toBe(first.counts.scanned);
    expect(first.counts.scanned).toBeGreaterThanOrEqual(40);
    expect(first.counts.scanned).toBeLessThanOrEqual(44);

    // A time-boxed slice returns before the end; slices then finish the segment.
    const short = await runSegmentSlice(deps, { ...task, sliceMs: 500 });
    expect(short.done).toBe(false);
    let done = false;
    const slices = [first.counts, short.counts];
    while (!done) {
      const slice = await runSegmentSlice(deps, task);
      slices.push(slice.counts);
      done = slice.done;
    }
    // Every item was scanned exactly once over the slices: nothing before a checkpoint is rescanned.
    expect(sumCounts(slices.map((counts) => ({ counts }))).scanned).toBe(rows.length);
    expect((await latestRun()).status).toBe("finished");
    await expectAllNormalizedOnce(await reportsNow());
  }, 120_000);

  it("two workers never share a segment: each item is scanned and written once", async () => {
    await reload();
    const ledger = ledgerOf(t);
    const run = await startSweepRun(ledger, { table: "reports", totalSegments: 6, concurrency: 16 });
    const worker = () =>
      runSweepWorker({
        clients: t.clients,
        ledger,
        table: "reports",
        tableName: t.names.reports,
        sweepId: run.sweepId,
        pollMs: 100,
      });
    const [x, y] = await Promise.all([worker(), worker()]);
    expect(x.done && y.done).toBe(true);
    expect(await latestRun()).toMatchObject({ sweepId: run.sweepId, status: "finished" });
    // Both worked, and together scanned every item once.
    expect(x.counts.scanned).toBeGreaterThan(0);
    expect(y.counts.scanned).toBeGreaterThan(0);
    expect(x.counts.scanned + y.counts.scanned).toBe(rows.length);
    expect(x.counts.applied + y.counts.applied).toBe(rows.length);
    await expectAllNormalizedOnce(await reportsNow());
  }, 120_000);
});

describe("sweep --workers", () => {
  it("finishes after a worker is SIGKILLed mid-slice, rescanning at most the items in flight", async () => {
    await reload();
    const sweep = await startCli(
      ["sweep", "--table", "reports", "--workers", "2", "--segments", "4", "--concurrency", "8", "--max-wcu", "400"],
      env,
      { timeoutMs: 240_000 },
    );
    // A worker holding a segment after some of its items were checkpointed.
    const victim = await waitFor(
      async () => {
        const run = await ledgerOf(t).latestSweep("reports");
        if (!run) return undefined;
        const held = (await ledgerOf(t).checkpoints("reports", run.sweepId)).find(
          (c) => c.leaseHolder && c.counts.scanned >= 20 && !c.done,
        );
        return held?.leaseHolder;
      },
      "a worker with checkpointed items",
      90_000,
    ).catch(async (err) => {
      sweep.child.kill("SIGKILL");
      throw new Error(`${(err as Error).message}; the sweep said: ${(await sweep.done).stderr}`);
    });
    process.kill(Number(victim.split("#")[1]), "SIGKILL");
    const done = await sweep.done;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/worker \d was killed \(SIGKILL\)/);
    const run = await latestRun();
    expect(run.status).toBe("finished");
    const totals = await ledgerTotals();
    // Rescanned: items the killed worker had in flight (its share of 8) or had applied within the
    // last checkpoint interval; never a page (hundreds of these items).
    const rescanned = totals.scanned - rows.length;
    expect(rescanned).toBeGreaterThanOrEqual(0);
    expect(rescanned).toBeLessThanOrEqual(12);
    // Items whose write the killed worker had sent but not counted (or not checkpointed) are scanned
    // again, found normalized and not rewritten: they are the only ones not counted as applied.
    expect(totals.applied + totals.alreadyNormalized, JSON.stringify(totals)).toBe(totals.scanned);
    expect(totals.alreadyNormalized + rescanned, JSON.stringify(totals)).toBeLessThanOrEqual(12);
    await expectAllNormalizedOnce(await reportsNow());
  }, 300_000);

  it("four processes hold one --max-wcu within ±10%; --set-max-wcu changes a running sweep in 5 s", async () => {
    // The machine's ceiling now (one process, no cap), then budgets well under it.
    await reload();
    const ceiling = await sweepTable(t, "reports", { segments: 4, concurrency: 32 });
    const ceilingRate = (ceiling.counts.consumedWcu / ceiling.durationMs) * 1000;
    const budget = Math.min(300, Math.round(ceilingRate / 3));
    expect(budget).toBeGreaterThan(40);
    const totalWcu = ceiling.counts.consumedWcu;

    await reload();
    const previous = (await latestRun()).sweepId;
    const four = await startCli(
      ["sweep", "--table", "reports", "--workers", "4", "--segments", "8", "--max-wcu", String(budget)],
      env,
      { timeoutMs: 240_000 },
    );
    await newRun(previous);
    // Steady state: from 15% to 85% of the work (start-up of the workers and the tail excluded).
    await waitFor(async () => (await ledgerTotals()).consumedWcu >= totalWcu * 0.15, "15% of the work", 120_000);
    const from = { at: performance.now(), wcu: (await ledgerTotals()).consumedWcu };
    await waitFor(async () => (await ledgerTotals()).consumedWcu >= totalWcu * 0.85, "85% of the work", 120_000);
    const to = { at: performance.now(), wcu: (await ledgerTotals()).consumedWcu };
    const rate = ((to.wcu - from.wcu) / (to.at - from.at)) * 1000;
    expect(to.at - from.at).toBeGreaterThan(5000);
    expect(rate).toBeGreaterThan(budget * 0.9);
    expect(rate).toBeLessThan(budget * 1.1);
    const fourDone = await four.done;
    expect(fourDone.code, fourDone.stderr).toBe(0);

    // A low budget first, so the sweep is still running when the operator raises it.
    await reload();
    const low = Math.max(20, Math.round(budget / 4));
    const fourId = (await latestRun()).sweepId;
    const sweep = await startCli(
      ["sweep", "--table", "reports", "--workers", "2", "--segments", "4", "--max-wcu", String(low)],
      env,
      { timeoutMs: 240_000 },
    );
    await newRun(fourId);
    await waitFor(async () => (await ledgerTotals()).consumedWcu > 0, "first writes", 90_000);
    await sleep(3000);
    const before = await measuredRate(4000);
    expect(before).toBeLessThan(low * 1.2);
    const set = await runCli(["sweep", "--table", "reports", "--set-max-wcu", String(budget), "--json"], env);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout).tables.reports).toMatchObject({ maxWcu: budget });
    // Within 5 s the workers run at the new budget.
    await sleep(5000);
    const status = await runCli(["status", "--json"], env);
    const reports = JSON.parse(status.stdout).tables.find((x: { table: string }) => x.table === "reports");
    expect(reports.sweepProgress).toMatchObject({ maxWcu: budget, status: "running", totalSegments: 4 });
    const after = await measuredRate(4000);
    expect(after).toBeGreaterThan(budget * 0.8);
    expect(after).toBeLessThan(budget * 1.1);
    const done = await sweep.done;
    expect(done.code, done.stderr).toBe(0);
    await expectAllNormalizedOnce(await reportsNow());
  }, 600_000);
});
