import { hostname, userInfo } from "node:os";
import { type Command, Option } from "commander";
import {
  createClients,
  destroyClients,
  Ledger,
  NoRunningSweepError,
  reconfigureSweep,
  resolveTableNames,
  runSweep,
  runSweepWorker,
  stageNotifier,
  SweepBusyError,
  SWEEP_DEFAULTS,
  sweepClientConfig,
  SweepRefusedError,
  sweepTables,
  tablesWithRules,
  type SiteLogixTable,
  type SweepPlan,
  type SweepProgress,
  type Notifier,
  type SweepReport,
} from "@sitelogix/core";
import { onTable, positiveInt, positiveNumber } from "../args.js";
import { selectTables } from "../options.js";
import { CliError, EXIT, printJson, say } from "../output.js";
import { createProgress } from "../progress.js";
import { onStopSignals, signalExitCode } from "../signals.js";
import { sweepWithWorkers } from "../sweep-workers.js";
import { distributedOptions, stopDistributed, sweepDistributed } from "./sweep-distributed.js";

interface SweepCliOptions {
  table?: string[];
  segments: number;
  concurrency: number;
  maxWcu?: number;
  dryRun?: boolean;
  resume?: boolean;
  json?: boolean;
  pause?: boolean;
  unpause?: boolean;
  workers?: number;
  setMaxWcu?: number;
  setConcurrency?: number;
  leaseMs?: number;
}

const tableReport = (r: SweepReport) => ({
  tableName: r.tableName,
  status: r.status,
  ...(r.stopReason ? { stopReason: r.stopReason } : {}),
  dryRun: r.dryRun,
  ...(r.sweepId ? { sweepId: r.sweepId } : {}),
  resumed: r.resumed,
  totalSegments: r.totalSegments,
  ...r.counts,
  durationMs: r.durationMs,
  throttles: r.throttles,
  samples: r.dryRun ? r.samples : { rejected: r.samples.rejected, violations: r.samples.violations },
  ...(r.failedSegments ? { failedSegments: r.failedSegments } : {}),
});

function progressInfo(p: SweepProgress, dryRun: boolean): string {
  const c = p.counts;
  const parts = dryRun
    ? [`needs work ${c.needsWork}`]
    : [
        `applied ${c.applied}`,
        `conflicts ${c.conflicts}`,
        `gone ${c.gone}`,
        `rejected ${c.rejected}`,
        `${Math.round(p.wcuPerSecond)} WCU/s${p.wcuLimit !== null ? ` (limit ${Math.round(p.wcuLimit)})` : ""}`,
      ];
  if (c.violations) parts.push(`violations ${c.violations}`);
  if (p.throttles) parts.push(`throttled ${p.throttles}x`);
  if (p.paused) parts.unshift("PAUSED");
  return parts.join(", ");
}

function summary(table: SiteLogixTable, r: SweepReport): string {
  const c = r.counts;
  const head =
    `${table} (${r.tableName}): ${r.dryRun ? "dry run " : ""}${r.status}${r.resumed ? " (resumed)" : ""} ` +
    `in ${(r.durationMs / 1000).toFixed(1)} s`;
  const body = r.dryRun
    ? `scanned ${c.scanned}, would write ${c.needsWork}, already normalized ${c.alreadyNormalized}, ` +
      `out of scope ${c.outOfScope}, violations ${c.violations}`
    : `scanned ${c.scanned}, applied ${c.applied}, already normalized ${c.alreadyNormalized}, ` +
      `out of scope ${c.outOfScope}, conflicts ${c.conflicts}, gone ${c.gone}, rejected ${c.rejected}, ` +
      `violations ${c.violations}, ${c.consumedWcu} WCU`;
  const lines = [`${head}: ${body}`];
  const key = (k: Record<string, string>) =>
    Object.entries(k)
      .map(([n, v]) => `${n}=${v}`)
      .join(" ");
  for (const f of r.failedSegments ?? []) lines.push(`  failed segment ${f.segment} at ${f.failedAt}: ${f.error}`);
  for (const s of r.samples.rejected) lines.push(`  rejected   ${key(s.key)}: ${s.reason}`);
  for (const s of r.samples.violations)
    lines.push(
      `  violation  ${key(s.key)}: ` +
        s.violations.map((v) => `${v.attribute} ${v.problem} (${v.at}: ${v.type})`).join("; "),
    );
  for (const s of r.samples.diffs)
    lines.push(
      `  would set  ${key(s.key)}: ${s.set.map((a) => `${a.attribute} (${a.was}) from ${a.from}`).join(", ")}`,
    );
  return lines.join("\n");
}

async function setPause(paused: boolean, json: boolean | undefined): Promise<void> {
  const clients = createClients();
  try {
    const names = resolveTableNames();
    const ledger = new Ledger(clients.doc, names.ledger);
    const flag = await onTable(names.ledger, () => ledger.setPause(paused, `${userInfo().username}@${hostname()}`));
    if (json) printJson(flag);
    else
      say(
        paused
          ? `paused: running sweeps stop issuing work within ${SWEEP_DEFAULTS.controlIntervalMs / 1000} s ` +
              "and wait (checkpoints stay); continue with sweep --unpause"
          : "unpaused: paused sweeps continue within seconds",
      );
  } finally {
    destroyClients(clients);
  }
}

/** The phase event of a real sweep's end (dry runs change nothing and announce nothing). */
async function announce(
  notifier: Notifier,
  table: SiteLogixTable,
  outcome: { report?: SweepReport; error?: unknown },
): Promise<void> {
  const r = outcome.report;
  if (r?.dryRun || (r?.status === "stopped" && !r.stopReason)) return;
  const event = r
    ? r.status === "finished"
      ? {
          kind: "sweep-finished" as const,
          summary: `sweep finished: ${table}`,
          details: [summary(table, r), `Next: sitelogix-migrate verify --table ${table}`],
        }
      : {
          kind: "sweep-stopped" as const,
          summary: `sweep stopped: ${table}`,
          details: [
            `${r.stopReason}.`,
            "Continue with sitelogix-migrate sweep --resume once fresh credentials are in place.",
          ],
        }
    : {
        kind: "sweep-failed" as const,
        summary: `sweep failed: ${table}`,
        details: [
          (outcome.error as Error)?.message ?? String(outcome.error),
          "Checkpoints are kept: fix the cause, then sitelogix-migrate sweep --resume.",
        ],
      };
  const sent = await notifier.notify(event);
  if (sent.error) say(`${table}: the ${event.kind} notification was not sent: ${sent.error}`);
}

async function sweep(opts: SweepCliOptions): Promise<void> {
  const names = resolveTableNames();
  const tables = selectTables(opts.table, names, tablesWithRules());
  for (const t of tables) {
    if (!tablesWithRules().includes(t))
      throw new CliError(`${t} has no normalization rules: nothing to sweep`, EXIT.usage);
  }
  const clients = createClients(sweepClientConfig(opts));
  const ledger = new Ledger(clients.doc, names.ledger);
  const notifier = stageNotifier();
  const stop = new AbortController();
  const signals = onStopSignals("stopping — in-flight writes finish, checkpoints are saved", () => stop.abort());
  try {
    const runTable = async (table: SiteLogixTable, plan: Exclude<SweepPlan, { action: "skip" }>) => {
      const progress = createProgress(`${opts.dryRun ? "dry run " : "sweep "}${table}`);
      const common = {
        clients,
        ledger,
        table,
        tableName: names[table],
        segments: opts.segments,
        concurrency: opts.concurrency,
        ...(opts.maxWcu !== undefined ? { maxWcu: opts.maxWcu } : {}),
        ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
        signal: stop.signal,
        onProgress: (p: SweepProgress) =>
          progress.update(p.scanned, p.estimatedTotal, progressInfo(p, opts.dryRun === true)),
      };
      try {
        return await onTable(names[table], () =>
          opts.workers && plan.action !== "dry-run"
            ? sweepWithWorkers({ ...common, plan, workers: opts.workers })
            : runSweep({ ...common, plan }),
        );
      } catch (err) {
        progress.stop();
        if (err instanceof SweepBusyError) throw new CliError(err.message);
        if (!opts.dryRun) await announce(notifier, table, { error: err });
        throw err;
      } finally {
        progress.stop();
      }
    };
    const results: Record<string, unknown> = {};
    await sweepTables({
      ledger,
      tables,
      resume: opts.resume,
      dryRun: opts.dryRun,
      signal: stop.signal,
      plan: (_table, plan) => onTable(names.ledger, plan),
      run: (table, plan) => runTable(table, plan),
      onResult: async (result) => {
        const table = result.table;
        if ("skipped" in result) {
          const run = result.skipped;
          say(`${table}: its last sweep (${run.sweepId}) finished at ${run.finishedAt}; nothing to resume`);
          results[table] = {
            tableName: names[table],
            status: "skipped",
            sweepId: run.sweepId,
            finishedAt: run.finishedAt,
          };
          return;
        }
        const report = result.report;
        say(summary(table, report));
        await announce(notifier, table, { report });
        results[table] = tableReport(report);
        if (report.stopReason) {
          say(
            `${table}: stopped because ${report.stopReason}; checkpoints are saved. Get fresh credentials, ` +
              "then run sitelogix-migrate sweep --resume (docs/runbook.md: long sweeps)",
          );
          process.exitCode = EXIT.error;
        } else if (report.status === "stopped")
          say(`${table}: stopped; continue with sitelogix-migrate sweep --resume`);
      },
    }).catch((err) => {
      if (err instanceof SweepRefusedError) throw new CliError(err.message);
      throw err;
    });
    if (opts.json) printJson({ dryRun: opts.dryRun === true, tables: results });
    if (signals.received) process.exitCode = signalExitCode(signals.received);
  } finally {
    signals.dispose();
    notifier.close();
    destroyClients(clients);
  }
}

/** `--set-max-wcu` / `--set-concurrency`: the running sweep's workers take their share within 2 s. */
async function reconfigure(opts: SweepCliOptions): Promise<void> {
  const names = resolveTableNames();
  if (!opts.table?.length) throw new CliError("--set-max-wcu and --set-concurrency need --table", EXIT.usage);
  const tables = selectTables(opts.table, names, tablesWithRules());
  const clients = createClients();
  try {
    const ledger = new Ledger(clients.doc, names.ledger);
    const results: Record<string, unknown> = {};
    for (const table of tables) {
      const fields = {
        ...(opts.setMaxWcu !== undefined ? { maxWcu: opts.setMaxWcu } : {}),
        ...(opts.setConcurrency !== undefined ? { concurrency: opts.setConcurrency } : {}),
      };
      const done = await onTable(names.ledger, () => reconfigureSweep(ledger, table, fields)).catch((err) => {
        throw err instanceof NoRunningSweepError ? new CliError(err.message) : err;
      });
      results[table] = done;
      say(
        `${table}: sweep ${done.sweepId} now runs at ` +
          `${done.maxWcu !== undefined ? `${done.maxWcu} WCU/s` : "no WCU cap"}` +
          `, ${done.concurrency} items in flight over all workers; its workers take their share within ` +
          `${SWEEP_DEFAULTS.controlIntervalMs / 1000} s`,
      );
    }
    if (opts.json) printJson({ tables: results });
  } finally {
    destroyClients(clients);
  }
}

/** The hidden `sweep-worker` command: one worker process of `sweep --workers K`. */
async function sweepWorker(opts: { table: string; sweepId: string; leaseMs?: number }): Promise<void> {
  const names = resolveTableNames();
  const [table] = selectTables([opts.table], names, tablesWithRules());
  const clients = createClients(sweepClientConfig({ segments: 1 }));
  const stop = new AbortController();
  const signals = onStopSignals("stopping — in-flight writes finish, the checkpoint is saved", () => stop.abort());
  try {
    await onTable(names[table!], () =>
      runSweepWorker({
        clients,
        ledger: new Ledger(clients.doc, names.ledger),
        table: table!,
        tableName: names[table!],
        sweepId: opts.sweepId,
        signal: stop.signal,
        ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
      }),
    );
    if (signals.received) process.exitCode = signalExitCode(signals.received);
  } finally {
    signals.dispose();
    destroyClients(clients);
  }
}

export function registerSweep(program: Command): void {
  program
    .command("sweep-worker", { hidden: true })
    .description("one worker process of `sweep --workers K` (started by it): claims segments through the ledger")
    .requiredOption("--table <name>", "the table of the run")
    .requiredOption("--sweep-id <id>", "the run")
    .addOption(new Option("--lease-ms <n>", "segment lease").argParser(positiveInt))
    .action((opts: { table: string; sweepId: string; leaseMs?: number }) => sweepWorker(opts));
  program
    .command("sweep")
    .description(
      "backfill the target attributes of existing items: parallel scan, one conditional write per item that " +
        "needs work (none for items already normalized), throttled, checkpointed per item in the ledger, " +
        "resumable. Progress goes to stderr. Exit 0 when every table finished, 1 on error (checkpoints kept), " +
        "130/143 when stopped by SIGINT/SIGTERM (in-flight writes finish, checkpoints saved; continue with " +
        "--resume).",
    )
    .option(
      "--table <name...>",
      `tables to sweep, logical or physical names (default: ${tablesWithRules().join(", ")})`,
    )
    .addOption(
      new Option(
        "--segments <n>",
        "parallel scan segments (TotalSegments) of a new sweep; a resumed sweep keeps its own",
      )
        .default(SWEEP_DEFAULTS.segments)
        .argParser(positiveInt),
    )
    .addOption(
      new Option(
        "--concurrency <n>",
        "items in flight over all segments and workers (each: one write, plus one HISTORY# query for a " +
          "personnel profile)",
      )
        .default(SWEEP_DEFAULTS.concurrency)
        .argParser(positiveInt),
    )
    .addOption(
      new Option(
        "--max-wcu <n>",
        "the table's budget: consumed write capacity units per second over all workers, from " +
          "ReturnConsumedCapacity (default: no cap; on throttling it slows down by itself)",
      ).argParser(positiveNumber),
    )
    .addOption(
      new Option(
        "--workers <k>",
        "run K worker processes that claim segments through the ledger (the distributed sweep on one " +
          "machine); default: this process runs every segment",
      ).argParser(positiveInt),
    )
    .addOption(
      new Option(
        "--dry-run",
        "write nothing (not even the ledger): report counts per outcome and sample diffs (keys and attribute " +
          "names, never values)",
      ).conflicts(["resume", "workers"]),
    )
    .option(
      "--resume",
      "continue each table's unfinished sweep from its checkpoints; tables whose last sweep finished are " +
        "skipped, others start",
    )
    .option("--json", "print one JSON document on stdout: per table the counts, durationMs and sample keys")
    .addOption(
      new Option(
        "--set-max-wcu <n>",
        "change the budget of the table's running sweep (every mode); its workers follow within 2 s",
      )
        .argParser(positiveNumber)
        .conflicts(["dryRun", "resume", "maxWcu", "workers", "pause", "unpause"]),
    )
    .addOption(
      new Option(
        "--set-concurrency <n>",
        "change the items in flight of the table's running sweep (over all workers); followed within 2 s",
      )
        .argParser(positiveInt)
        .conflicts(["dryRun", "resume", "maxWcu", "workers", "pause", "unpause"]),
    )
    .addOption(new Option("--lease-ms <n>", "segment and run lease (tests)").argParser(positiveInt).hideHelp())
    .addOption(distributedOptions()[0]!)
    .addOption(distributedOptions()[1]!)
    .addOption(
      new Option(
        "--pause",
        "set the ledger's pause flag: running sweeps stop issuing work within seconds and wait",
      ).conflicts(["unpause", "table", "dryRun", "resume", "maxWcu"]),
    )
    .addOption(
      new Option("--unpause", "clear the pause flag: paused sweeps continue").conflicts([
        "table",
        "dryRun",
        "resume",
        "maxWcu",
      ]),
    )
    .action(async (opts: SweepCliOptions & { distributed?: boolean; stop?: boolean }, command: Command) => {
      if (opts.stop) return stopDistributed(opts);
      // Without --segments, a distributed sweep takes the stage's (migration.config.ts).
      const segments = command.getOptionValueSource("segments") === "default" ? undefined : opts.segments;
      if (opts.distributed) return sweepDistributed({ ...opts, segments });
      if (opts.pause || opts.unpause) return setPause(opts.pause === true, opts.json);
      if (opts.setMaxWcu !== undefined || opts.setConcurrency !== undefined) return reconfigure(opts);
      return sweep(opts);
    });
}
