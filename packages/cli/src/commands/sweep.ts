import { hostname, userInfo } from "node:os";
import { type Command, Option } from "commander";
import {
  createClients,
  destroyClients,
  Ledger,
  planSweep,
  resolveTableNames,
  runSweep,
  stageNotifier,
  SweepBusyError,
  SWEEP_DEFAULTS,
  sweepClientConfig,
  tablesWithRules,
  UnfinishedSweepError,
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
  const head = `${table} (${r.tableName}): ${r.dryRun ? "dry run " : ""}${r.status}${r.resumed ? " (resumed)" : ""} in ${(r.durationMs / 1000).toFixed(1)} s`;
  const body = r.dryRun
    ? `scanned ${c.scanned}, would write ${c.needsWork}, already normalized ${c.alreadyNormalized}, out of scope ${c.outOfScope}, violations ${c.violations}`
    : `scanned ${c.scanned}, applied ${c.applied}, already normalized ${c.alreadyNormalized}, out of scope ${c.outOfScope}, conflicts ${c.conflicts}, gone ${c.gone}, rejected ${c.rejected}, violations ${c.violations}, ${c.consumedWcu} WCU`;
  const lines = [`${head}: ${body}`];
  const key = (k: Record<string, string>) =>
    Object.entries(k)
      .map(([n, v]) => `${n}=${v}`)
      .join(" ");
  for (const s of r.samples.rejected) lines.push(`  rejected   ${key(s.key)}: ${s.reason}`);
  for (const s of r.samples.violations)
    lines.push(
      `  violation  ${key(s.key)}: ${s.violations.map((v) => `${v.attribute} ${v.problem} (${v.at}: ${v.type})`).join("; ")}`,
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
          ? `paused: running sweeps stop issuing work within ${SWEEP_DEFAULTS.controlIntervalMs / 1000} s and wait (checkpoints stay); continue with sweep --unpause`
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
    // Decide for every table before touching any, so an unfinished sweep is reported up front.
    const plans = new Map<SiteLogixTable, SweepPlan>();
    const refusals: string[] = [];
    for (const table of tables) {
      try {
        plans.set(
          table,
          await onTable(names.ledger, () => planSweep(ledger, table, { resume: opts.resume, dryRun: opts.dryRun })),
        );
      } catch (err) {
        if (!(err instanceof UnfinishedSweepError)) throw err;
        refusals.push(err.message);
      }
    }
    if (refusals.length > 0) throw new CliError(refusals.join("; "));

    const results: Record<string, unknown> = {};
    for (const table of tables) {
      if (stop.signal.aborted) break;
      const plan = plans.get(table)!;
      if (plan.action === "skip") {
        say(`${table}: its last sweep (${plan.run.sweepId}) finished at ${plan.run.finishedAt}; nothing to resume`);
        results[table] = {
          tableName: names[table],
          status: "skipped",
          sweepId: plan.run.sweepId,
          finishedAt: plan.run.finishedAt,
        };
        continue;
      }
      const progress = createProgress(`${opts.dryRun ? "dry run " : "sweep "}${table}`);
      let report: SweepReport;
      try {
        report = await onTable(names[table], () =>
          runSweep({
            clients,
            ledger,
            table,
            tableName: names[table],
            plan,
            segments: opts.segments,
            concurrency: opts.concurrency,
            ...(opts.maxWcu !== undefined ? { maxWcu: opts.maxWcu } : {}),
            signal: stop.signal,
            onProgress: (p) => progress.update(p.scanned, p.estimatedTotal, progressInfo(p, opts.dryRun === true)),
          }),
        );
      } catch (err) {
        progress.stop();
        if (err instanceof SweepBusyError) throw new CliError(err.message);
        if (!opts.dryRun) await announce(notifier, table, { error: err });
        throw err;
      } finally {
        progress.stop();
      }
      say(summary(table, report));
      await announce(notifier, table, { report });
      results[table] = tableReport(report);
      if (report.stopReason) {
        // The next table would meet the same credentials: stop here, resumable.
        say(
          `${table}: stopped because ${report.stopReason}; checkpoints are saved. Get fresh credentials, then run sitelogix-migrate sweep --resume (docs/runbook.md: long sweeps)`,
        );
        process.exitCode = EXIT.error;
        break;
      }
      if (report.status === "stopped") say(`${table}: stopped; continue with sitelogix-migrate sweep --resume`);
    }
    if (opts.json) printJson({ dryRun: opts.dryRun === true, tables: results });
    if (signals.received) process.exitCode = signalExitCode(signals.received);
  } finally {
    signals.dispose();
    notifier.close();
    destroyClients(clients);
  }
}

export function registerSweep(program: Command): void {
  program
    .command("sweep")
    .description(
      "backfill the target attributes of existing items: parallel scan, one conditional write per item that needs work " +
        "(none for items already normalized), throttled, checkpointed per segment in the ledger, resumable. " +
        "Progress goes to stderr. Exit 0 when every table finished, 1 on error (checkpoints kept), 130/143 when " +
        "stopped by SIGINT/SIGTERM (in-flight writes finish, checkpoints saved; continue with --resume).",
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
        "items in flight over all segments (each: one write, plus one HISTORY# query for a personnel profile)",
      )
        .default(SWEEP_DEFAULTS.concurrency)
        .argParser(positiveInt),
    )
    .addOption(
      new Option(
        "--max-wcu <n>",
        "cap on consumed write capacity units per second, from ReturnConsumedCapacity (default: no cap; on throttling it slows down by itself)",
      ).argParser(positiveNumber),
    )
    .addOption(
      new Option(
        "--dry-run",
        "write nothing (not even the ledger): report counts per outcome and sample diffs (keys and attribute names, never values)",
      ).conflicts("resume"),
    )
    .option(
      "--resume",
      "continue each table's unfinished sweep from its checkpoints; tables whose last sweep finished are skipped, others start",
    )
    .option("--json", "print one JSON document on stdout: per table the counts, durationMs and sample keys")
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
    .action(async (opts: SweepCliOptions) => {
      if (opts.pause || opts.unpause) return setPause(opts.pause === true, opts.json);
      return sweep(opts);
    });
}
