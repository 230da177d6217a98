// `sitelogix-migrate sweep` as an operator runs it: crash (SIGKILL) and resume with a bounded
// rescan, graceful stop on SIGINT, pause/unpause from another process, a lost endpoint mid-sweep,
// errors and usage errors with their exit codes, and the help text.
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATOR_MARKER, type Item } from "@sitelogix/core";
import { startLatencyProxy } from "../bench/latency-proxy.js";
import {
  generateDataset,
  loadDataset,
  type SampleRow,
  createTestTables,
  runCli,
  startCli,
  type TestTables,
  startSnsRecorder,
  waitFor,
  ledgerOf,
  pendingWork,
  scanAll,
} from "@sitelogix/testkit";

let t: TestTables;
let rows: SampleRow[];
let env: Record<string, string>;
const TRANSCRIPT = 20_000;
// Slow enough (about 30 items/s of these 20 KB reports) to act on a sweep in the middle.
const SLOW = ["sweep", "--table", "reports", "--segments", "2", "--max-wcu", "2000"];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const latestRun = () => ledgerOf(t).latestSweep("reports");
/** Pages checkpointed by the latest run. */
async function checkpointedPages(): Promise<number> {
  const run = await latestRun();
  return run ? (await ledgerOf(t).checkpoints("reports", run.sweepId)).reduce((n, c) => n + c.pages, 0) : 0;
}
const reportsNow = () => scanAll(t.clients.doc, t.names.reports);
const migrated = async () => (await reportsNow()).filter((i) => i[MIGRATOR_MARKER.by] !== undefined).length;

async function expectAllNormalizedOnce(items: Item[]): Promise<void> {
  expect(items.length).toBe(rows.length);
  for (const item of items) {
    expect(await pendingWork(t.clients.doc, "reports", t.names.reports, item)).toEqual([]);
    // Exactly one write per item, also across a crash and a resume.
    expect(Number(item[MIGRATOR_MARKER.rev])).toBe(1);
  }
}

/** Puts the original, un-normalized reports back (a fresh table for the next scenario). */
const reload = () => loadDataset(t.clients.doc, t.names, rows, { inFlight: 2 });

beforeAll(async () => {
  t = await createTestTables("legacy");
  env = { SITELOGIX_TABLE_PREFIX: t.prefix };
  rows = [...generateDataset({ items: 1000, seed: 21, transcriptBytes: TRANSCRIPT, largeTranscripts: false })].filter(
    (r) => r.table === "reports",
  );
  await reload();
});
afterAll(async () => {
  await t?.dispose();
});

describe("sweep command", () => {
  it("resumes after SIGKILL: the earlier pages are not rescanned, at most the pages in flight are", async () => {
    const first = await startCli(SLOW, env, { timeoutMs: 180_000 });
    await waitFor(async () => (await checkpointedPages()) >= 2, "two checkpointed pages", 60_000);
    first.child.kill("SIGKILL");
    expect((await first.done).signal).toBe("SIGKILL");

    const run = (await latestRun())!;
    expect(run.status).toBe("running");
    const checkpoints = await ledgerOf(t).checkpoints("reports", run.sweepId);
    const before = checkpoints.reduce((n, c) => n + c.counts.scanned, 0);
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(rows.length);

    const refused = await runCli(["sweep", "--table", "reports"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/reports: an unfinished sweep exists .*continue it with --resume/);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);

    const resumed = await runCli(["sweep", "--table", "reports", "--resume", "--json"], env, { timeoutMs: 180_000 });
    expect(resumed.code, resumed.stderr).toBe(0);
    const report = JSON.parse(resumed.stdout).tables.reports;
    expect(report).toMatchObject({ status: "finished", resumed: true, sweepId: run.sweepId, totalSegments: 2 });
    // One 1 MB page per segment was in flight when the process died.
    const pageItems = Math.ceil((1024 * 1024) / TRANSCRIPT);
    const rescanned = before + report.scanned - rows.length;
    expect(rescanned).toBeGreaterThanOrEqual(0);
    expect(rescanned).toBeLessThanOrEqual(2 * pageItems);

    const finished = (await latestRun())!;
    expect(finished).toMatchObject({ sweepId: run.sweepId, status: "finished" });
    expect(finished.counts!.scanned).toBe(before + report.scanned);
    await expectAllNormalizedOnce(await reportsNow());
  });

  it("stops gracefully on SIGINT (exit 130, checkpoints saved, run stopped) and --resume finishes it", async () => {
    await reload();
    const sweep = await startCli(SLOW, env, { timeoutMs: 180_000 });
    await waitFor(
      async () => (await latestRun())?.status === "running" && (await checkpointedPages()) >= 1,
      "a checkpoint of the new run",
      60_000,
    );
    sweep.child.kill("SIGINT");
    const stopped = await sweep.done;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/SIGINT: stopping/);
    expect(stopped.stderr).toMatch(/stopped; continue with sitelogix-migrate sweep --resume/);
    const run = (await latestRun())!;
    expect(run.status).toBe("stopped");
    expect(run.stoppedAt).toBeDefined();
    expect(await checkpointedPages()).toBeGreaterThanOrEqual(1);

    const resumed = await runCli(["sweep", "--table", "reports", "--resume"], env, { timeoutMs: 180_000 });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await latestRun())!).toMatchObject({ sweepId: run.sweepId, status: "finished" });
    await expectAllNormalizedOnce(await reportsNow());
  });

  it("honours --pause from another process within seconds, refuses a second process, and continues " +
    "after --unpause", async () => {
    await reload();
    // At most 30 of these reports a second, 4 at a time: the pause (a process of its own, slow to
    // start on a busy machine) lands before the sweep could finish, and what is in flight when it
    // does drains in well under a second.
    const sweep = await startCli(
      ["sweep", "--table", "reports", "--segments", "2", "--concurrency", "4", "--max-wcu", "600"],
      env,
      { timeoutMs: 180_000 },
    );
    await waitFor(async () => (await migrated()) > 0, "first writes", 60_000);
    const pause = await runCli(["sweep", "--pause"], env);
    expect(pause.code).toBe(0);
    expect(pause.stderr).toMatch(/paused/);
    // The flag is read every 2 s; then only the writes in flight finish.
    await sleep(4000);
    const atPause = await migrated();
    await sleep(3000);
    expect(await migrated()).toBe(atPause);
    expect(atPause).toBeLessThan(rows.length);
    expect((await latestRun())!.status).toBe("running");
    // A paused sweep is still alive: a second process may not take it over.
    const second = await runCli(["sweep", "--table", "reports", "--resume"], env);
    expect(second.code).toBe(1);
    expect(second.stderr.trim()).toMatch(/^sitelogix-migrate: reports: sweep \S+ is running in process \d+ on /);

    const unpause = await runCli(["sweep", "--unpause", "--json"], env);
    expect(unpause.code).toBe(0);
    expect(JSON.parse(unpause.stdout)).toMatchObject({ paused: false });
    const done = await sweep.done;
    expect(done.code, done.stderr).toBe(0);
    await expectAllNormalizedOnce(await reportsNow());
  }, 120_000);

  it(
    "aborts with one line and exit 1 when the endpoint is lost mid-sweep, keeping its checkpoints " + "for --resume",
    async () => {
      await reload();
      const proxy = await startLatencyProxy({ target: process.env.AWS_ENDPOINT_URL_DYNAMODB!, delayMs: 0 });
      const sweep = await startCli(
        SLOW,
        { ...env, AWS_ENDPOINT_URL_DYNAMODB: proxy.endpoint, AWS_MAX_ATTEMPTS: "2" },
        { timeoutMs: 180_000 },
      );
      await waitFor(
        async () => (await latestRun())?.status === "running" && (await checkpointedPages()) >= 1,
        "a checkpoint of the new run",
        60_000,
      );
      await proxy.close();
      const failed = await sweep.done;
      expect(failed.code).toBe(1);
      expect(failed.stderr.trim().split("\n").at(-1)).toMatch(
        /^sitelogix-migrate: cannot reach DynamoDB at http:\/\/127\.0\.0\.1:\d+ \(E[A-Z]+\)$/,
      );
      const pages = await checkpointedPages();
      expect(pages).toBeGreaterThanOrEqual(1);

      const resumed = await runCli(["sweep", "--table", "reports", "--resume", "--json"], env, { timeoutMs: 180_000 });
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(JSON.parse(resumed.stdout).tables.reports.scanned).toBeLessThan(rows.length);
      await expectAllNormalizedOnce(await reportsNow());
    },
  );

  it(
    "stops gracefully when its credentials are about to expire, records why, and --resume with " +
      "fresh ones finishes it; each end reaches the topic",
    async () => {
      await reload();
      const sns = await startSnsRecorder();
      const topic = {
        SITELOGIX_NOTIFY_TOPIC_ARN: "arn:aws:sns:us-east-1:123456789012:ops",
        AWS_ENDPOINT_URL_SNS: sns.endpoint,
      };
      try {
        // Fixed session credentials, as `sst shell` hands a command, that expire in 70 s: the sweep
        // stops once fewer than 60 s are left (a refreshable provider would have renewed them by then).
        const expiresAt = new Date(Date.now() + 70_000).toISOString();
        const slow = ["sweep", "--table", "reports", "--segments", "2", "--max-wcu", "200"];
        const stopped = await runCli(
          slow,
          { ...env, ...topic, AWS_CREDENTIAL_EXPIRATION: expiresAt },
          { timeoutMs: 120_000 },
        );
        expect(stopped.code, stopped.stderr).toBe(1);
        const reason = `the AWS credentials expire at ${expiresAt} and were not renewed`;
        expect(stopped.stderr).toContain(
          `reports: stopped because ${reason}; checkpoints are saved. ` +
            "Get fresh credentials, then run sitelogix-migrate sweep --resume (docs/runbook.md: long sweeps)",
        );
        const run = (await latestRun())!;
        expect(run).toMatchObject({ status: "stopped", error: reason });
        expect(await migrated()).toBeLessThan(rows.length);

        const resumed = await runCli(
          ["sweep", "--table", "reports", "--resume"],
          { ...env, ...topic },
          { timeoutMs: 180_000 },
        );
        expect(resumed.code, resumed.stderr).toBe(0);
        expect((await latestRun())!).toMatchObject({ sweepId: run.sweepId, status: "finished" });
        await expectAllNormalizedOnce(await reportsNow());
        expect(sns.published.map((p) => [p.event, p.Subject])).toEqual([
          ["sweep-stopped", "[sitelogix-migrator] sweep stopped: reports"],
          ["sweep-finished", "[sitelogix-migrator] sweep finished: reports"],
        ]);
        expect(sns.published[0]!.Message).toContain(reason);
      } finally {
        await sns.close();
      }
    },
  );

  it("refuses to start with credentials that expire within the minute", async () => {
    const run = await runCli(["sweep", "--table", "vendors"], {
      ...env,
      AWS_CREDENTIAL_EXPIRATION: new Date(Date.now() + 20_000).toISOString(),
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(
        "^sitelogix-migrate: the AWS credentials expire at \\S+: " +
          "get fresh ones before sweeping \\(docs/runbook.md: long sweeps\\)\n$",
      ),
    );
    expect(await ledgerOf(t).latestSweep("vendors")).toBeUndefined();
  });

  it("names a missing table in one line with exit 1", async () => {
    const noLedger = await runCli(["sweep"], { SITELOGIX_TABLE_PREFIX: "absent-" });
    expect(noLedger.code).toBe(1);
    expect(noLedger.stderr.trim()).toMatch(/^sitelogix-migrate: table absent-sitelogix-migration-ledger not found/);

    await t.clients.dynamodb.send(new DeleteTableCommand({ TableName: t.names["work-logs"] }));
    const noTable = await runCli(["sweep", "--table", "work-logs"], env);
    expect(noTable.code).toBe(1);
    expect(noTable.stderr.trim().split("\n")).toHaveLength(1);
    expect(noTable.stderr).toContain(`table ${t.names["work-logs"]} not found`);
  });

  it("rejects bad usage with exit 2", async () => {
    for (const args of [
      ["sweep", "--segments", "0"],
      ["sweep", "--max-wcu", "-5"],
      ["sweep", "--table", "nope"],
      ["sweep", "--table", "ai-analysis-cache"],
      ["sweep", "--pause", "--table", "reports"],
      ["sweep", "--pause", "--unpause"],
    ]) {
      const run = await runCli(args, env);
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stdout).toBe("");
    }
  });

  it("explains every option and its default in --help", async () => {
    const help = await runCli(["sweep", "--help"], env);
    expect(help.code).toBe(0);
    const text = help.stdout.replace(/\s+/g, " ");
    for (const option of [
      "--table",
      "--segments",
      "--concurrency",
      "--max-wcu",
      "--dry-run",
      "--resume",
      "--json",
      "--pause",
      "--unpause",
    ])
      expect(text).toContain(option);
    expect(text).toContain("(default: 8)");
    expect(text).toContain("(default: 32)");
    expect(text).toMatch(/default: no cap/);
    expect(text).toMatch(/Exit 0 .* 1 on error .* 130\/143/);
  });
});
