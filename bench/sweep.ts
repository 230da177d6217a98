// The sweep against the plan's backfill script and against the write ceiling of the endpoint, on
// DynamoDB Local directly and through a proxy that adds a region's latency; and the sweep's peak
// memory on a large table against a small one.
import { spawn } from "node:child_process";
import { paginateScan, UpdateCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import {
  applyPatch,
  createClients,
  defaultTableNames,
  derivePatch,
  destroyClients,
  Ledger,
  runSweep,
  SWEEP_DEFAULTS,
  sweepClientConfig,
  type Clients,
  type Item,
  type Patch,
} from "@sitelogix/core";
import { generateDataset, loadDataset, type SampleRow } from "@sitelogix/testkit";
import {
  dropTable,
  freshTable,
  median,
  round,
  rssMiB,
  type BenchContext,
  type BenchSuite,
  type OptionValue,
} from "./lib.js";
import { startLatencyProxy } from "./latency-proxy.js";

const CLI = new URL("../packages/cli/bin/sitelogix-migrate.js", import.meta.url).pathname;

/** `n` report items of about 1 KB, as the old application wrote them (every one needs work). */
export function* reportRows(n: number, seed = 1): Generator<SampleRow> {
  let count = 0;
  for (const row of generateDataset({
    items: Math.ceil(n / 0.3) + 10,
    seed,
    transcriptBytes: 600,
    largeTranscripts: false,
  })) {
    if (row.table !== "reports") continue;
    if (count++ >= n) return;
    yield row;
  }
}

/**
 * The plan's `backfill-reports-status.py` (migration-plan.md, step 2.2) ported as written: pages of
 * a serial scan, one awaited, unconditional UpdateItem per item missing `status` or `timestamp`.
 * Two fixes so that it runs and does the whole job: `status` and `timestamp` are reserved words
 * (named through ExpressionAttributeNames), and every page is read (the script reads only the first).
 */
async function planScript(doc: DynamoDBDocumentClient, tableName: string): Promise<number> {
  let updated = 0;
  for await (const page of paginateScan({ client: doc }, { TableName: tableName })) {
    for (const item of page.Items ?? []) {
      const sets: string[] = [];
      const names: Record<string, string> = {};
      const values: Record<string, unknown> = {};
      if (!("status" in item)) {
        sets.push("#status = :status");
        names["#status"] = "status";
        values[":status"] = "published";
      }
      if (!("timestamp" in item)) {
        sets.push("#timestamp = :timestamp");
        names["#timestamp"] = "timestamp";
        values[":timestamp"] = item.createdAt ?? new Date().toISOString();
      }
      if (sets.length === 0) continue;
      await doc.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { PK: item.PK, SK: item.SK },
          UpdateExpression: `SET ${sets.join(", ")}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      updated++;
    }
  }
  return updated;
}

/** The endpoint's write ceiling: the sweep's own conditional writes on keys known in advance, no scan. */
async function ceiling(
  doc: DynamoDBDocumentClient,
  tableName: string,
  patches: Patch[],
  concurrency: number,
): Promise<number> {
  let next = 0;
  let applied = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < patches.length) {
        const result = await applyPatch(doc, tableName, patches[next++]!, "sweep");
        if (result.outcome === "applied") applied++;
      }
    }),
  );
  return applied;
}

type Approach = "plan" | "ceiling" | "sweep";

interface Regime {
  name: string;
  /** Clients that talk to DynamoDB Local directly (loading data) and through the regime's path (measuring). */
  direct: Clients;
  measured: Clients;
  ledgerTable: string;
}

/** Loads `n` fresh items into a new table, runs `approach` on them, returns items per second. */
async function measure(
  context: BenchContext,
  regime: Regime,
  approach: Approach,
  n: number,
  concurrency: number,
): Promise<number> {
  const tableName = await freshTable(regime.direct.dynamodb, "reports");
  try {
    await loadDataset(regime.direct.doc, { ...defaultTableNames(), reports: tableName }, reportRows(n));
    const patches =
      approach === "ceiling"
        ? [...reportRows(n)].map((r) => derivePatch("reports", r.item as Item, { mode: "sweep" }))
        : [];
    const started = performance.now();
    let done: number;
    if (approach === "plan") done = await planScript(regime.measured.doc, tableName);
    else if (approach === "ceiling") done = await ceiling(regime.measured.doc, tableName, patches, concurrency);
    else {
      const report = await runSweep({
        clients: regime.measured,
        ledger: new Ledger(regime.measured.doc, regime.ledgerTable),
        table: "reports",
        tableName,
        plan: { action: "start" },
      });
      done = report.counts.applied;
    }
    const seconds = (performance.now() - started) / 1000;
    // A few generated reports already carry status and timestamp (the application's newer writes):
    // the plan's script skips them (it still reads them); the sweep still writes their snake_case copies.
    const expected = approach === "plan" ? Math.floor(n * 0.95) : n;
    if (done < expected || done > n) throw new Error(`${approach}: ${done} of ${n} items written`);
    const rate = n / seconds;
    context.log(
      `  ${regime.name} ${approach}${approach === "ceiling" ? ` (concurrency ${concurrency})` : ""}: ` +
        `${n} items in ${seconds.toFixed(1)} s = ${Math.round(rate)} items/s`,
    );
    return rate;
  } finally {
    await dropTable(regime.direct.dynamodb, tableName);
  }
}

interface RegimeResult {
  regime: string;
  items: number;
  planItems: number;
  ceilingConcurrency: number;
  concurrencyTrials: Record<string, number>;
  runs: Record<Approach, number[]>;
  medians: Record<Approach, number>;
  sweepVsCeiling: number;
  sweepVsPlan: number;
}

async function runRegime(
  context: BenchContext,
  name: string,
  endpoint: string,
  options: { items: number; planItems: number; runs: number; concurrencies: number[]; searchItems: number },
): Promise<RegimeResult> {
  const direct = createClients({ endpoint: context.local.endpoint });
  const maxConcurrency = Math.max(...options.concurrencies, SWEEP_DEFAULTS.concurrency);
  const measured = createClients({ endpoint, ...sweepClientConfig({ concurrency: maxConcurrency }) });
  const ledgerTable = await freshTable(direct.dynamodb, "ledger");
  const regime: Regime = { name, direct, measured, ledgerTable };
  try {
    context.log(`${name}: choosing the ceiling's concurrency (${options.searchItems} items each)`);
    const trials: Record<string, number> = {};
    for (const c of options.concurrencies)
      trials[c] = await measure(context, regime, "ceiling", options.searchItems, c);
    const best = Number(Object.entries(trials).sort((a, b) => b[1] - a[1])[0]![0]);

    const runs: Record<Approach, number[]> = { plan: [], ceiling: [], sweep: [] };
    for (let r = 1; r <= options.runs; r++) {
      context.log(`${name}: run ${r} of ${options.runs}`);
      // Interleaved, so that a change of machine load hits every approach alike.
      runs.plan.push(await measure(context, regime, "plan", options.planItems, 1));
      runs.ceiling.push(await measure(context, regime, "ceiling", options.items, best));
      runs.sweep.push(await measure(context, regime, "sweep", options.items, SWEEP_DEFAULTS.concurrency));
    }
    const medians = { plan: median(runs.plan), ceiling: median(runs.ceiling), sweep: median(runs.sweep) };
    return {
      regime: name,
      items: options.items,
      planItems: options.planItems,
      ceilingConcurrency: best,
      concurrencyTrials: Object.fromEntries(Object.entries(trials).map(([c, v]) => [c, round(v)])),
      runs: {
        plan: runs.plan.map((v) => round(v)),
        ceiling: runs.ceiling.map((v) => round(v)),
        sweep: runs.sweep.map((v) => round(v)),
      },
      medians: { plan: round(medians.plan), ceiling: round(medians.ceiling), sweep: round(medians.sweep) },
      sweepVsCeiling: round(medians.sweep / medians.ceiling, 3),
      sweepVsPlan: round(medians.sweep / medians.plan, 1),
    };
  } finally {
    await dropTable(direct.dynamodb, ledgerTable);
    destroyClients(direct);
    destroyClients(measured);
  }
}

/** Runs `sitelogix-migrate sweep` on a table of `n` items as an operator would; returns its peak RSS. */
async function sweepRss(
  context: BenchContext,
  n: number,
): Promise<{ items: number; peakRssMiB: number; steadyRssMiB: number; itemsPerSecond: number }> {
  const prefix = `rss${n}-`;
  const direct = createClients({ endpoint: context.local.endpoint });
  const tables = [
    await freshTable(direct.dynamodb, "reports", `${prefix}sitelogix-reports`),
    await freshTable(direct.dynamodb, "ledger", `${prefix}sitelogix-migration-ledger`),
  ];
  try {
    context.log(`peak RSS: loading ${n} items`);
    await loadDataset(direct.doc, { ...defaultTableNames(), reports: tables[0]! }, reportRows(n));
    const child = spawn(process.execPath, [CLI, "sweep", "--table", "reports", "--json"], {
      env: { ...process.env, SITELOGIX_TABLE_PREFIX: prefix },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    let peak = 0;
    const samples: number[] = [];
    const poll = setInterval(() => {
      const rss = rssMiB(child.pid!);
      if (!rss) return;
      peak = Math.max(peak, rss.peak);
      samples.push(rss.current);
    }, 100);
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    clearInterval(poll);
    if (code !== 0) throw new Error(`sweep exited ${code}`);
    const report = JSON.parse(stdout).tables.reports;
    // The garbage collector makes RSS a sawtooth: its median over the second half shows a trend the peak may hide.
    const result = {
      items: n,
      peakRssMiB: round(peak, 1),
      steadyRssMiB: round(median(samples.slice(Math.floor(samples.length / 2))), 1),
      itemsPerSecond: round(report.scanned / (report.durationMs / 1000)),
    };
    context.log(
      `peak RSS: ${n} items swept at ${result.itemsPerSecond} items/s, peak RSS ${result.peakRssMiB} MiB, ` +
        `median RSS (second half) ${result.steadyRssMiB} MiB`,
    );
    return result;
  } finally {
    for (const t of tables) await dropTable(direct.dynamodb, t);
    destroyClients(direct);
  }
}

const num = (v: OptionValue) => Number(v);
const list = (v: OptionValue) => String(v).split(",").map(Number);

function regimeTable(r: RegimeResult): string {
  const row = (label: string, a: Approach, items: number) =>
    `| ${label} | ${items} | ${r.runs[a].join(", ")} | **${r.medians[a]}** |`;
  return [
    `| approach | items | items/s per run | median items/s |`,
    `|---|---|---|---|`,
    row("plan's script (serial scan, one awaited update per item)", "plan", r.planItems),
    row(`ceiling (conditional UpdateItem on known keys, concurrency ${r.ceilingConcurrency})`, "ceiling", r.items),
    row(
      `sweep (defaults: ${SWEEP_DEFAULTS.segments} segments, concurrency ${SWEEP_DEFAULTS.concurrency})`,
      "sweep",
      r.items,
    ),
    "",
    `Sweep / ceiling: **${(r.sweepVsCeiling * 100).toFixed(1)}%**. Sweep / plan's script: **${r.sweepVsPlan}×**. ` +
      `Ceiling concurrency trials (items/s): ${Object.entries(r.concurrencyTrials)
        .map(([c, v]) => `${c}: ${v}`)
        .join(", ")}.`,
  ].join("\n");
}

export const sweepSuite: BenchSuite = {
  name: "sweep",
  description:
    "the sweep vs the plan's backfill script and the write ceiling, locally and with a region's latency; " +
    "peak RSS at scale",
  options: {
    parts: {
      type: "string",
      default: "local,latency,rss",
      help: "what to measure: local (no added latency), latency (through the proxy), rss (peak memory at scale)",
    },
    items: {
      type: "string",
      default: "20000",
      quick: "3000",
      help: "report items (~1 KB, each needing one write) per measured run",
    },
    runs: { type: "string", default: "3", quick: "1", help: "runs of each approach; medians are reported" },
    "latency-ms": { type: "string", default: "10", help: "latency the proxy adds per request" },
    "plan-latency-items": {
      type: "string",
      default: "2000",
      quick: "300",
      help: "items for the plan's script through the proxy (it is serial: ~1 request per latency)",
    },
    concurrencies: { type: "string", default: "8,16,32,64,128", help: "concurrencies tried for the local ceiling" },
    "latency-concurrencies": {
      type: "string",
      default: "32,64,128,256",
      help: "concurrencies tried for the ceiling through the proxy",
    },
    "search-items": { type: "string", default: "3000", quick: "1000", help: "items per ceiling concurrency trial" },
    "rss-items": {
      type: "string",
      default: "200000",
      quick: "20000",
      help: "items of the large table whose sweep's peak RSS is measured",
    },
    "rss-baseline-items": {
      type: "string",
      default: "20000",
      quick: "5000",
      help: "items of the small table it is compared with",
    },
  },

  async run(context, o) {
    // A cold JVM is several times slower for its first few thousand requests.
    context.log("warming up DynamoDB Local");
    const warm = { items: 2000, planItems: 1000, runs: 1, concurrencies: [32], searchItems: 1000 };
    await runRegime({ ...context, log: () => undefined }, "warm-up", context.local.endpoint, warm);

    const parts = String(o.parts).split(",");
    const regimes: RegimeResult[] = [];
    const base = { items: num(o.items), runs: num(o.runs), searchItems: num(o["search-items"]) };
    if (parts.includes("local")) {
      regimes.push(
        await runRegime(context, "local", context.local.endpoint, {
          ...base,
          planItems: num(o.items),
          concurrencies: list(o.concurrencies),
        }),
      );
    }
    const latencyMs = num(o["latency-ms"]);
    if (parts.includes("latency")) {
      const proxy = await startLatencyProxy({ target: context.local.endpoint, delayMs: latencyMs });
      try {
        regimes.push(
          await runRegime(context, `+${latencyMs} ms`, proxy.endpoint, {
            ...base,
            planItems: num(o["plan-latency-items"]),
            concurrencies: list(o["latency-concurrencies"]),
          }),
        );
      } finally {
        await proxy.close();
      }
    }

    const rss: Awaited<ReturnType<typeof sweepRss>>[] = [];
    if (parts.includes("rss")) {
      rss.push(await sweepRss(context, num(o["rss-baseline-items"])));
      rss.push(await sweepRss(context, num(o["rss-items"])));
    }

    const sections = regimes.map((r) => {
      const proxied = `Through the latency proxy (${r.regime} per request)`;
      const heading = r.regime === "local" ? "DynamoDB Local, no added latency" : proxied;
      return `### ${heading}\n\n${regimeTable(r)}`;
    });
    if (rss.length === 2) {
      sections.push(
        [
          "### Peak RSS of `sitelogix-migrate sweep`",
          "",
          "| items | items/s | peak RSS (VmHWM) | median RSS, second half of the run |",
          "|---|---|---|---|",
          ...rss.map((r) => `| ${r.items} | ${r.itemsPerSecond} | ${r.peakRssMiB} MiB | ${r.steadyRssMiB} MiB |`),
          "",
          `${rss[1]!.items / rss[0]!.items}× the items: ` +
            `peak RSS ${((rss[1]!.peakRssMiB / rss[0]!.peakRssMiB - 1) * 100).toFixed(1)}% higher, ` +
            `median RSS ${((rss[1]!.steadyRssMiB / rss[0]!.steadyRssMiB - 1) * 100).toFixed(1)}% higher.`,
        ].join("\n"),
      );
    }
    return { markdown: sections.join("\n\n"), data: { regimes, rss } };
  },
};
