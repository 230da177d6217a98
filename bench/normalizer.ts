// Benchmark: the normalizer on the local event-source mapping under live application traffic.
// Measures records/s through the normalizer at an offered rate of application writes, and the
// write→normalized lag (from the write's `updatedAt`, which ApplicationTraffic sets to the time it
// sends the write, to the moment the normalizer has handled its stream record). Targets: keeps up with
// 1,000 writes/s; p95 lag ≤ poll interval + 1 s (Lambda's batching window).
//
//   npx tsx bench/normalizer.ts [--writes-per-second 1000] [--seconds 20] [--items 5000] [--poll-interval 250]
//
// Standalone it starts its own DynamoDB Local unless AWS_ENDPOINT_URL_DYNAMODB points to one.
import { randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import {
  createClients,
  decodeRecord,
  defaultTableNames,
  destroyClients,
  ensureTables,
  isMigratorWrite,
  Ledger,
  type NormalizerOutcome,
} from "@sitelogix/core";
import { StreamRunner } from "@sitelogix/core/local-esm";
import { ApplicationTraffic, generateDataset, loadDataset } from "@sitelogix/testkit";

export interface NormalizerBenchOptions {
  /** Application writes offered per second (inserts, updates, deletes, old-code full puts). */
  writesPerSecond?: number;
  /** Measured seconds of traffic (after the warm-up). */
  seconds?: number;
  warmupSeconds?: number;
  /** Items loaded first: candidates for the traffic's updates, deletes and full puts. */
  items?: number;
  pollIntervalMs?: number;
  /** Progress lines (stderr when standalone). */
  log?: (line: string) => void;
}

export interface NormalizerBenchResult {
  offeredWritesPerSecond: number;
  achievedWritesPerSecond: number;
  /**
   * Every record the normalizer handled per second under the live traffic (application writes and its own writes'
   * records).
   */
  recordsPerSecond: number;
  /** Records per second while it worked through the load's backlog alone: its capacity on this machine. */
  backlogRecordsPerSecond: number;
  outcomes: Partial<Record<NormalizerOutcome, number>>;
  invocations: number;
  lagMs: { samples: number; p50: number; p95: number; max: number };
  /** After the traffic stopped: time until the last application write was normalized. */
  drainMs: number;
  pollIntervalMs: number;
  /** p95 lag within poll interval + 1 s, and the backlog at the end no larger than that either. */
  targets: { p95LagMs: number; p95Met: boolean; keepsUp: boolean };
}

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! : NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs against the endpoint in the SDK's environment, on tables of its own that it deletes at the end. */
export async function benchNormalizer(options: NormalizerBenchOptions = {}): Promise<NormalizerBenchResult> {
  const writesPerSecond = options.writesPerSecond ?? 1000;
  const seconds = options.seconds ?? 20;
  const warmupSeconds = options.warmupSeconds ?? 5;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const log = options.log ?? (() => undefined);
  // The handler's per-batch INFO lines, data-problem warnings and EMF output would bury the figures.
  process.env.POWERTOOLS_LOG_LEVEL ??= "ERROR";
  process.env.POWERTOOLS_METRICS_DISABLED ??= "true";
  const { createNormalizerHandler } = await import("@sitelogix/functions/normalizer");

  const names = defaultTableNames(`bench-${randomBytes(3).toString("hex")}-`);
  const clients = createClients();
  const created = await ensureTables(clients.dynamodb, names, "legacy");
  const tables = ["reports", "personnel", "vendors", "constraints"] as const;
  let appClients: ReturnType<typeof createClients> | undefined;
  let runner: StreamRunner | undefined;
  let running: Promise<unknown> | undefined;
  try {
    const rows = [...generateDataset({ items: options.items ?? 5000, seed: 3, transcriptBytes: 600 })];
    log(`loading ${rows.length} items`);
    await loadDataset(clients.doc, names, rows);

    let handled = 0;
    let firstHandledAt = 0;
    let lastHandledAt = Date.now();
    const outcomes: Partial<Record<NormalizerOutcome, number>> = {};
    let measureFrom = Infinity;
    let measureTo = Infinity;
    let trafficFrom = Infinity;
    let lastAppRecordAt = 0;
    const lags: number[] = [];
    const handler = createNormalizerHandler({
      deps: { doc: clients.doc, names, ledger: new Ledger(clients.doc, names.ledger) },
      onResult: (result, record) => {
        const now = Date.now();
        if (handled++ === 0) firstHandledAt = now;
        lastHandledAt = now;
        outcomes[result.outcome] = (outcomes[result.outcome] ?? 0) + 1;
        const decoded = decodeRecord(record);
        const written = Date.parse(String(decoded.newImage?.updatedAt ?? ""));
        if (isMigratorWrite(decoded) || !(written >= trafficFrom)) return;
        lastAppRecordAt = now;
        if (written >= measureFrom && written < measureTo) lags.push(now - written);
      },
    });
    runner = new StreamRunner({
      clients,
      names,
      ledger: new Ledger(clients.doc, names.ledger),
      tables,
      subscribers: ["normalizer"],
      pollIntervalMs,
      handlers: { normalizer: handler },
    });
    running = runner.run();
    // The load is the warm-up of DynamoDB Local's JVM; let the normalizer work through it first.
    while (handled < rows.length || Date.now() - lastHandledAt < 3000) await sleep(250);
    const backlogRecordsPerSecond = Math.round(handled / Math.max(0.001, (lastHandledAt - firstHandledAt) / 1000));
    log(
      `backlog of the load normalized: ${handled} records, ${backlogRecordsPerSecond}/s; ` +
        `now ${writesPerSecond} writes/s for ${warmupSeconds} + ${seconds} s`,
    );

    // The application has its own clients (and sockets), as it would.
    appClients = createClients();
    const traffic = new ApplicationTraffic(appClients.doc, names, {
      opsPerSecond: writesPerSecond,
      seed: 9,
      tables: [...tables],
    });
    for (const row of rows) traffic.know(row.table, { PK: row.item.PK as string, SK: row.item.SK as string });
    const writes = () => traffic.stats.insert + traffic.stats.update + traffic.stats.delete + traffic.stats.fullPut;
    trafficFrom = Date.now();
    traffic.start();
    await sleep(warmupSeconds * 1000);
    measureFrom = Date.now();
    const [writesAtStart, handledAtStart] = [writes(), handled];
    await sleep(seconds * 1000);
    measureTo = Date.now();
    const [writesAtEnd, handledAtEnd] = [writes(), handled];
    const stats = await traffic.stop();
    const stoppedAt = Date.now();
    log(`traffic stopped: ${JSON.stringify(stats)}`);
    // Drained once the normalizer has been idle for longer than a poll and a batching window.
    const deadline = Date.now() + 120_000;
    while (Date.now() - lastHandledAt < pollIntervalMs + 2000 && Date.now() < deadline) await sleep(50);
    const drainMs = Math.max(0, lastAppRecordAt - stoppedAt);

    const sorted = lags.sort((a, b) => a - b);
    const lagMs = {
      samples: sorted.length,
      p50: percentile(sorted, 0.5),
      p95: percentile(sorted, 0.95),
      max: sorted.at(-1) ?? NaN,
    };
    const p95LagMs = pollIntervalMs + 1000;
    const window = (measureTo - measureFrom) / 1000;
    return {
      offeredWritesPerSecond: writesPerSecond,
      achievedWritesPerSecond: Math.round((writesAtEnd - writesAtStart) / window),
      recordsPerSecond: Math.round((handledAtEnd - handledAtStart) / window),
      backlogRecordsPerSecond,
      outcomes,
      invocations: runner.stats.normalizer?.invocations ?? 0,
      lagMs,
      drainMs,
      pollIntervalMs,
      targets: { p95LagMs, p95Met: lagMs.p95 <= p95LagMs, keepsUp: drainMs <= p95LagMs },
    };
  } finally {
    runner?.stop();
    await running;
    await Promise.all(
      created.map((t) => clients.dynamodb.send(new DeleteTableCommand({ TableName: t.name })).catch(() => undefined)),
    );
    destroyClients(clients);
    if (appClients) destroyClients(appClients);
  }
}

/** The result as Markdown rows for BENCHMARKS.md. */
export function formatNormalizerBench(r: NormalizerBenchResult): string {
  const met = (ok: boolean) => (ok ? "met" : "NOT met");
  const lag = `${r.lagMs.p50} / ${r.lagMs.p95} / ${r.lagMs.max} ms (${r.lagMs.samples} samples)`;
  return [
    "| normalizer (local runner) | value |",
    "|---|---|",
    `| application writes/s offered / achieved | ${r.offeredWritesPerSecond} / ${r.achievedWritesPerSecond} |`,
    "| records/s through the normalizer (live traffic / backlog alone) | " +
      `${r.recordsPerSecond} / ${r.backlogRecordsPerSecond} |`,
    `| write→normalized lag p50 / p95 / max | ${lag} |`,
    `| backlog drained after the traffic stopped | ${r.drainMs} ms |`,
    `| targets: keeps up / p95 ≤ ${r.targets.p95LagMs} ms | ${met(r.targets.keepsUp)} / ${met(r.targets.p95Met)} |`,
  ].join("\n");
}

/**
 * The suite for `npm run bench` (bench/run.ts: options as --normalizer-<name>; the runner has started
 * DynamoDB Local and put its endpoint in the SDK's environment).
 */
export const normalizerSuite = {
  name: "normalizer",
  description:
    "records/s through the normalizer on the local runner under live application writes, and write→normalized lag",
  options: {
    "writes-per-second": {
      type: "string" as const,
      default: "1000",
      quick: "100",
      help: "application writes offered per second",
    },
    seconds: {
      type: "string" as const,
      default: "20",
      quick: "5",
      help: "measured seconds of traffic (after a 5 s warm-up)",
    },
    items: {
      type: "string" as const,
      default: "5000",
      quick: "1000",
      help: "items loaded first (their backlog also measures the normalizer alone)",
    },
    "poll-interval": { type: "string" as const, default: "250", help: "the runner's poll interval (ms)" },
  },
  async run(context: { log(line: string): void }, o: Record<string, string | boolean | undefined>) {
    const result = await benchNormalizer({
      writesPerSecond: Number(o["writes-per-second"]),
      seconds: Number(o.seconds),
      items: Number(o.items),
      pollIntervalMs: Number(o["poll-interval"]),
      log: context.log,
    });
    return { markdown: formatNormalizerBench(result), data: result };
  },
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      "writes-per-second": { type: "string" },
      seconds: { type: "string" },
      items: { type: "string" },
      "poll-interval": { type: "string" },
    },
  });
  const number = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const { startDynamoDbLocal } = await import("@sitelogix/testkit");
  const local = process.env.AWS_ENDPOINT_URL_DYNAMODB ? undefined : await startDynamoDbLocal();
  if (local) Object.assign(process.env, local.env);
  try {
    const result = await benchNormalizer({
      ...(values["writes-per-second"] ? { writesPerSecond: number(values["writes-per-second"]) } : {}),
      ...(values.seconds ? { seconds: number(values.seconds) } : {}),
      ...(values.items ? { items: number(values.items) } : {}),
      ...(values["poll-interval"] ? { pollIntervalMs: number(values["poll-interval"]) } : {}),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stderr.write(`${formatNormalizerBench(result)}\n`);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await local?.stop();
  }
}
