// `sweep --workers K`: the distributed sweep rehearsed on one machine. This process owns the run
// (starts it or takes it over), starts K `sweep-worker` processes that claim segments through the
// ledger, follows the run from the ledger (progress, heartbeat), and records how it ended. A worker
// killed by a signal is replaced; its segment is taken over (a dead local holder's lease at once).
import { type ChildProcess, spawn } from "node:child_process";
import { hostname } from "node:os";
import { fileURLToPath } from "node:url";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import {
  claimRun,
  emptySweepCounts,
  emptySamples,
  failedOf,
  type Clients,
  type Ledger,
  type SiteLogixTable,
  setSweepControl,
  startSweepRun,
  sumCounts,
  SWEEP_DEFAULTS,
  type SweepCounts,
  type SweepOwner,
  type SweepPlan,
  type SweepProgress,
  type SweepReport,
  type SweepRun,
  sweepRunView,
} from "@sitelogix/core";
import { say } from "./output.js";

const BIN = fileURLToPath(new URL("../bin/sitelogix-migrate.js", import.meta.url));

export interface WorkersOptions {
  clients: Pick<Clients, "dynamodb" | "doc">;
  ledger: Ledger;
  table: SiteLogixTable;
  tableName: string;
  plan: Exclude<SweepPlan, { action: "skip" | "dry-run" }>;
  workers: number;
  segments?: number;
  concurrency?: number;
  maxWcu?: number;
  signal?: AbortSignal;
  leaseMs?: number;
  onProgress?: (p: SweepProgress) => void;
}

const minus = (a: SweepCounts, b: SweepCounts): SweepCounts => {
  const out = emptySweepCounts();
  for (const k of Object.keys(out) as (keyof SweepCounts)[]) out[k] = a[k] - b[k];
  return out;
};

export async function sweepWithWorkers(o: WorkersOptions): Promise<SweepReport> {
  const started = performance.now();
  const { ledger, table } = o;
  const description = await o.clients.dynamodb.send(new DescribeTableCommand({ TableName: o.tableName }));
  const estimatedTotal = description.Table?.ItemCount ?? 0;
  const owner: SweepOwner = { host: hostname(), pid: process.pid, heartbeatAt: new Date().toISOString() };
  const run: SweepRun =
    o.plan.action === "start"
      ? await startSweepRun(ledger, {
          table,
          totalSegments: o.segments ?? SWEEP_DEFAULTS.segments,
          concurrency: o.concurrency ?? SWEEP_DEFAULTS.concurrency,
          ...(o.maxWcu !== undefined ? { maxWcu: o.maxWcu } : {}),
          owner,
        })
      : await claimRun(ledger, o.plan.run, owner, o.leaseMs);
  // This invocation's budget replaces the last one's (no --max-wcu: no cap, as for a start).
  if (o.plan.action === "resume")
    await setSweepControl(ledger, run, {
      maxWcu: o.maxWcu ?? null,
      concurrency: o.concurrency ?? SWEEP_DEFAULTS.concurrency,
    });
  const before = sumCounts(await ledger.checkpoints(table, run.sweepId));

  const args = ["sweep-worker", "--table", table, "--sweep-id", run.sweepId];
  if (o.leaseMs !== undefined) args.push("--lease-ms", String(o.leaseMs));
  const children = new Set<ChildProcess>();
  const problems: string[] = [];
  let stopping = false;
  let restarts = 0;
  let allExited!: () => void;
  const exited = new Promise<void>((r) => (allExited = r));
  const start = (n: number) => {
    // Its own process group: a terminal's Ctrl-C reaches this process, which stops the workers once.
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "ignore", "pipe"], detached: true });
    children.add(child);
    let last = "";
    child.stderr!.on("data", (d: Buffer) => {
      for (const line of d.toString().split("\n").filter(Boolean)) {
        last = line;
        say(`${table} worker ${n}: ${line}`);
      }
    });
    child.on("exit", (code, signal) => {
      children.delete(child);
      if (signal && !stopping && restarts < o.workers) {
        restarts++;
        say(`${table}: worker ${n} was killed (${signal}); starting another, its segment is taken over`);
        start(n);
        return;
      }
      if (code !== 0 && !(stopping && (code === 130 || code === 143)))
        problems.push(`worker ${n} exited with ${signal ?? `code ${code}`}${last ? `: ${last}` : ""}`);
      if (children.size === 0) allExited();
    });
  };
  for (let n = 1; n <= o.workers; n++) start(n);
  const stopWorkers = () => {
    stopping = true;
    for (const child of children) child.kill("SIGTERM");
  };
  o.signal?.addEventListener("abort", stopWorkers, { once: true });
  const killOnExit = () => {
    for (const child of children) child.kill("SIGKILL");
  };
  process.on("exit", killOnExit);

  const progress = async (): Promise<SweepProgress> => {
    const view = await sweepRunView(ledger, run, estimatedTotal);
    const counts = minus(sumCounts(await ledger.checkpoints(table, run.sweepId)), before);
    return {
      table,
      scanned: view.scanned,
      estimatedTotal,
      counts,
      elapsedMs: performance.now() - started,
      paused: (await ledger.pauseFlag())?.paused === true,
      wcuPerSecond: view.wcuPerSecond,
      wcuLimit: view.maxWcu ?? null,
      throttles: 0,
    };
  };
  let done = false;
  exited.then(() => (done = true));
  while (!done) {
    await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
    try {
      owner.heartbeatAt = new Date().toISOString();
      await ledger.updateSweep(run, owner, { owner });
      o.onProgress?.(await progress());
    } catch (err) {
      // The workers report their own errors; this one only watches.
      problems.push(`following the run: ${(err as Error).message}`);
      stopWorkers();
      await exited;
      break;
    }
  }
  o.signal?.removeEventListener("abort", stopWorkers);
  process.off("exit", killOnExit);

  const checkpoints = await ledger.checkpoints(table, run.sweepId);
  const finished = checkpoints.length >= run.totalSegments && checkpoints.every((c) => c.done);
  const now = new Date().toISOString();
  const counts = sumCounts(checkpoints);
  const failed = problems.length > 0 && !finished;
  await ledger.updateSweep(run, owner, {
    ...(finished
      ? { status: "finished", finishedAt: now }
      : failed
        ? { status: "failed", stoppedAt: now, error: problems[0]! }
        : { status: "stopped", stoppedAt: now }),
    counts,
  });
  o.onProgress?.(await progress());
  if (failed) throw new Error(`${table}: sweep ${run.sweepId} failed: ${problems.join("; ")}`);
  const failedSegments = failedOf(checkpoints);
  return {
    table,
    tableName: o.tableName,
    sweepId: run.sweepId,
    status: finished ? "finished" : "stopped",
    dryRun: false,
    resumed: o.plan.action === "resume",
    totalSegments: run.totalSegments,
    counts: minus(counts, before),
    durationMs: Math.round(performance.now() - started),
    samples: emptySamples(),
    throttles: 0,
    ...(failedSegments.length ? { failedSegments } : {}),
  };
}
