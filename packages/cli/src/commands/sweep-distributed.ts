// `sweep --distributed` and `sweep --stop`: the sweep run by the stage's state machine (Lambda
// workers over the scan segments, stacks/sweep.ts), started, resumed, stopped and followed from
// here. The logic is core's (sweep-machine/execution.ts); this adapts options and output.
import { hostname, userInfo } from "node:os";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { SFNClient } from "@aws-sdk/client-sfn";
import { Option } from "commander";
import {
  createClients,
  destroyClients,
  Ledger,
  planSweep,
  resolveTableNames,
  stageNotifier,
  startSweepRun,
  tablesWithRules,
  UnfinishedSweepError,
  type SiteLogixTable,
  type SweepRunView,
} from "@sitelogix/core";
import {
  type DistributedRun,
  describeSweepExecution,
  followSweepExecution,
  resumeSweepExecution,
  startSweepExecution,
  stopSweepExecution,
  SWEEP_MACHINE_ARN_ENV,
  sweepMachineLink,
  type SweepExecutionState,
} from "@sitelogix/core/sweep-machine/execution";
import { onTable } from "../args.js";
import { selectTables } from "../options.js";
import { CliError, EXIT, printJson, say } from "../output.js";
import { createProgress } from "../progress.js";
import { onStopSignals, signalExitCode } from "../signals.js";

export interface DistributedSweepOptions {
  table?: string[];
  /** Undefined: the stage's default (the SweepMachine link). */
  segments?: number;
  concurrency?: number;
  maxWcu?: number;
  resume?: boolean;
  json?: boolean;
}

/** The options `sweep` gets for the distributed mode. */
export const distributedOptions = () => [
  new Option(
    "--distributed",
    "run the sweep in the stage's Step Functions state machine (Lambda workers over the segments; under " +
      `sst shell, or with ${SWEEP_MACHINE_ARN_ENV}) and follow it; Ctrl-C detaches, the execution goes on`,
  ).conflicts(["workers", "dryRun", "setMaxWcu", "setConcurrency", "pause", "unpause"]),
  new Option(
    "--stop",
    "stop the distributed sweep of each --table (StopExecution); slices in flight finish and checkpoint",
  ).conflicts(["resume", "distributed", "dryRun", "workers", "pause", "unpause"]),
];

const ENDED_BADLY = new Set(["FAILED", "TIMED_OUT", "ABORTED"]);

function machineOrRefuse() {
  const machine = sweepMachineLink();
  if (!machine)
    throw new CliError(
      "no sweep state machine: run under `npx sst shell --stage <stage>` (its SweepMachine link), " +
        `or set ${SWEEP_MACHINE_ARN_ENV} (docs/sweep.md: distributed sweep)`,
      EXIT.usage,
    );
  return machine;
}

function viewInfo(view: SweepRunView, state: SweepExecutionState): string {
  const parts = [
    `segments ${view.segmentsDone}/${view.totalSegments}`,
    `${view.activeWorkers} workers`,
    `applied ${view.applied}`,
    `${Math.round(view.wcuPerSecond)} WCU/s${view.maxWcu !== undefined ? ` (budget ${view.maxWcu})` : ""}`,
  ];
  if (view.failedSegments.length) parts.push(`FAILED segments ${view.failedSegments.length}`);
  parts.push(`execution ${state.status}`);
  return parts.join(", ");
}

function endLines(table: SiteLogixTable, view: SweepRunView, state: SweepExecutionState): string[] {
  const lines = [
    `${table}: distributed sweep ${view.sweepId} ${state.status}: segments ${view.segmentsDone}/` +
      `${view.totalSegments} done, scanned ${view.scanned}, applied ${view.applied}`,
  ];
  for (const f of view.failedSegments) lines.push(`  failed segment ${f.segment} at ${f.failedAt}: ${f.error}`);
  if (state.error) lines.push(`  execution: ${state.error}${state.cause ? `: ${state.cause}` : ""}`);
  if (ENDED_BADLY.has(state.status))
    lines.push(
      `  continue with sitelogix-migrate sweep --distributed --resume --table ${table} ` +
        "(redrives the failed segments within 14 days, else starts over the unfinished ones)",
    );
  return lines;
}

export async function sweepDistributed(opts: DistributedSweepOptions): Promise<void> {
  const machine = machineOrRefuse();
  const names = resolveTableNames();
  const tables = selectTables(opts.table, names, tablesWithRules());
  const clients = createClients();
  const ledger = new Ledger(clients.doc, names.ledger);
  const sfn = new SFNClient({});
  const notifier = stageNotifier();
  const detach = new AbortController();
  const how = tables.map((t) => `sitelogix-migrate sweep --stop --table ${t}`).join("; ");
  const signals = onStopSignals(
    "detaching — the execution goes on in Step Functions; follow it with sitelogix-migrate status, " +
      `stop it with ${how}`,
    () => detach.abort(),
  );
  try {
    // Decide for every table before starting any, so an unfinished sweep is reported up front.
    const plans = new Map<SiteLogixTable, Awaited<ReturnType<typeof planSweep>>>();
    const refusals: string[] = [];
    for (const table of tables) {
      try {
        plans.set(
          table,
          await onTable(names.ledger, () => planSweep(ledger, table, { resume: opts.resume, distributed: true })),
        );
      } catch (err) {
        if (!(err instanceof UnfinishedSweepError)) throw err;
        refusals.push(`${err.message} (with --distributed)`);
      }
    }
    if (refusals.length > 0) throw new CliError(refusals.join("; "));

    const started: { table: SiteLogixTable; run: DistributedRun; executionArn: string }[] = [];
    const results: Record<string, unknown> = {};
    for (const table of tables) {
      const plan = plans.get(table)!;
      if (plan.action === "skip") {
        say(`${table}: its last sweep (${plan.run.sweepId}) finished at ${plan.run.finishedAt}; nothing to resume`);
        results[table] = { tableName: names[table], status: "skipped", sweepId: plan.run.sweepId };
        continue;
      }
      if (plan.action === "resume") {
        const run = plan.run as DistributedRun;
        const resumed = await resumeSweepExecution(sfn, ledger, machine.arn, run);
        if (resumed.action === "finished") {
          say(`${table}: every segment of sweep ${run.sweepId} is done; nothing to resume`);
          continue;
        }
        say(
          resumed.action === "running"
            ? `${table}: sweep ${run.sweepId} is running in Step Functions (${resumed.executionArn}); following it`
            : resumed.action === "redriven"
              ? `${table}: redriven ${resumed.executionArn}: its failed and unfinished segments run again`
              : `${table}: ${resumed.why}; started ${resumed.executionArn} over the ` +
                `${resumed.segments.length} unfinished segments`,
        );
        started.push({ table, run, executionArn: resumed.executionArn });
        continue;
      }
      const totalSegments = opts.segments ?? machine.segments;
      const run = await startSweepRun(ledger, {
        table,
        totalSegments,
        ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
        ...(opts.maxWcu !== undefined ? { maxWcu: opts.maxWcu } : {}),
      });
      const segments = Array.from({ length: totalSegments }, (_, s) => s);
      const executionArn = await startSweepExecution(sfn, ledger, machine.arn, run, segments);
      say(
        `${table}: sweep ${run.sweepId} started in Step Functions: ${executionArn} ` +
          `(${totalSegments} segments, at most ${machine.maxConcurrency} at once)`,
      );
      started.push({ table, run, executionArn });
    }

    for (const { table, run, executionArn } of started) {
      if (detach.signal.aborted) break;
      const described = await onTable(names[table], () =>
        clients.dynamodb.send(new DescribeTableCommand({ TableName: names[table] })),
      );
      const estimatedTotal = described.Table?.ItemCount ?? 0;
      const progress = createProgress(`sweep ${table} (distributed)`);
      const followed = await followSweepExecution({
        sfn,
        ledger,
        run,
        executionArn,
        estimatedTotal,
        signal: detach.signal,
        onView: (view, state) => progress.update(view.scanned, estimatedTotal, viewInfo(view, state)),
      }).finally(() => progress.stop());
      const { view, state } = followed;
      if (!followed.detached) {
        const lines = endLines(table, view, state);
        for (const line of lines) say(line);
        // The phase event of its end, as a one-process sweep sends it (a detached run's failure: the alarm).
        const ok = state.status === "SUCCEEDED";
        const sent = await notifier.notify({
          kind: ok ? "sweep-finished" : "sweep-failed",
          summary: `sweep ${ok ? "finished" : "failed"}: ${table}`,
          details: ok ? [...lines, `Next: sitelogix-migrate verify --table ${table}`] : lines,
        });
        if (sent.error) say(`${table}: the sweep notification was not sent: ${sent.error}`);
      }
      if (ENDED_BADLY.has(state.status)) process.exitCode = EXIT.error;
      results[table] = { tableName: names[table], executionArn, execution: state.status, ...view };
    }
    if (opts.json) printJson({ distributed: true, tables: results });
    if (signals.received) process.exitCode = signalExitCode(signals.received);
  } finally {
    signals.dispose();
    notifier.close();
    sfn.destroy();
    destroyClients(clients);
  }
}

/** `sweep --stop --table T`: stops each table's distributed sweep. */
export async function stopDistributed(opts: { table?: string[]; json?: boolean }): Promise<void> {
  if (!opts.table?.length) throw new CliError("--stop needs --table", EXIT.usage);
  const names = resolveTableNames();
  const tables = selectTables(opts.table, names, tablesWithRules());
  const clients = createClients();
  const sfn = new SFNClient({});
  try {
    const ledger = new Ledger(clients.doc, names.ledger);
    const results: Record<string, unknown> = {};
    for (const table of tables) {
      const run = (await onTable(names.ledger, () => ledger.latestSweep(table))) as DistributedRun | undefined;
      if (!run?.executionArn) throw new CliError(`${table}: its latest sweep did not run in Step Functions`);
      const before = await stopSweepExecution(sfn, ledger, run, `${userInfo().username}@${hostname()}`);
      results[table] = { sweepId: run.sweepId, executionArn: run.executionArn, was: before?.status };
      say(
        before?.status === "RUNNING" || before?.status === "PENDING_REDRIVE"
          ? `${table}: stopped ${run.executionArn}; slices in flight finish and checkpoint (within one ` +
              "slice, 10 minutes by default); continue with sitelogix-migrate sweep --distributed --resume"
          : `${table}: its execution had already ended (${before?.status}); nothing to stop`,
      );
    }
    if (opts.json) printJson({ tables: results });
  } finally {
    sfn.destroy();
    destroyClients(clients);
  }
}

/**
 * `status`: the Step Functions state of each table whose latest sweep ran there (one that cannot be
 * read, e.g. without credentials for Step Functions, says why instead).
 */
export async function executionStates(
  tables: { table: string; lastSweep?: object }[],
): Promise<Record<string, SweepExecutionState | { unreadable: string }>> {
  const runs = tables.filter((t) => (t.lastSweep as DistributedRun | undefined)?.executionArn);
  if (runs.length === 0) return {};
  const sfn = new SFNClient({});
  try {
    const states: Record<string, SweepExecutionState | { unreadable: string }> = {};
    for (const { table, lastSweep } of runs) {
      const arn = (lastSweep as DistributedRun).executionArn!;
      states[table] = await describeSweepExecution(sfn, arn).catch((err: Error) => ({ unreadable: err.message }));
    }
    return states;
  } finally {
    sfn.destroy();
  }
}

/** The `status` line of a distributed sweep's execution. */
export function executionLine(state: SweepExecutionState | { unreadable: string }): string {
  if ("unreadable" in state) return `  distributed: execution unreadable (${state.unreadable})`;
  const redrive = state.redriveStatus === "REDRIVABLE" ? "; redrivable with sweep --distributed --resume" : "";
  const error = state.error ? ` (${state.error})` : "";
  return `  distributed: execution ${state.status}${error}${redrive}: ${state.executionArn}`;
}
