// `rollback index` and `rollback restore`: the seed's rollback procedures as commands. Each plans
// first (and refuses with the reason), shows the plan, asks for confirmation on a terminal (`--yes`
// for scripts), then acts, waits, records the rollback in the ledger and prints what to do next.
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import {
  type Clients,
  indexRollbackFollowUp,
  type Ledger,
  planIndexRollback,
  planRestore,
  resolveTableNames,
  restoreFollowUp,
  restoreTable,
  rollbackIndex,
  RollbackRefusedError,
  stageNotifier,
  type RollbackResult,
  withClients,
} from "@sitelogix/core";
import { positiveInt } from "../args.js";
import { selectTables } from "../options.js";
import { CliError, EXIT, printJson, say } from "../output.js";

interface Common {
  table: string;
  dryRun?: boolean;
  yes?: boolean;
  json?: boolean;
}

/** Asks the operator to type `expected` (on a terminal); scripts pass --yes instead. */
async function confirm(what: string, expected: string, opts: Common): Promise<void> {
  if (opts.yes) return;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new CliError(`refusing to ${what} without confirmation: run it in a terminal, or add --yes`, EXIT.usage);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${what}? Type ${expected} to confirm: `);
    if (answer.trim() !== expected) throw new CliError("not confirmed: nothing was changed");
  } finally {
    rl.close();
  }
}

/** Runs a rollback step with the CLI's clients and ledger; a refusal is one line and exit 1. */
async function withRollback<T>(work: (clients: Clients, ledger: Ledger) => Promise<T>): Promise<T> {
  try {
    return await withClients(work);
  } catch (err) {
    if (err instanceof RollbackRefusedError) throw new CliError(`refused: ${err.message}`);
    throw err;
  }
}

function report(result: RollbackResult, followUp: string[], json: boolean | undefined, plan: object): void {
  if (result.ledgerProblem) say(`warning: ${result.ledgerProblem}`);
  say("next:");
  for (const step of followUp) say(`  - ${step}`);
  if (json) printJson({ plan, ...result, followUp });
  if (result.record.status !== "done") process.exitCode = EXIT.error;
}

const tableOf = (arg: string) => {
  const names = resolveTableNames();
  const [table] = selectTables([arg], names);
  return { table: table!, tableName: names[table!] };
};

export function registerRollback(program: Command): void {
  const rollback = program
    .command("rollback")
    .description(
      "the runbook's rollback procedures: delete a target GSI (`index`), restore a table into a new one (`restore`)",
    );

  rollback
    .command("index")
    .description(
      "delete a target GSI that failed to build, is stuck or misbehaves " +
        "(the one the index phase built on --table, or --index). " +
        "Refuses a legacy index the application still queries, an index of a new table " +
        "or one the schema does not know, and a state in which DynamoDB cannot delete it. " +
        "Waits until the index is gone, records it in the ledger, notifies the stage's topic " +
        "and prints the next steps. " +
        "Exit 0 when deleted (or --dry-run), 1 when refused or not finished, 2 for a usage error.",
    )
    .requiredOption("--table <table>", "the table: logical (reports) or physical (sitelogix-reports) name")
    .option("--index <name>", "the GSI to delete (default: the table's only GSI built by the index phase)")
    .option("--dry-run", "show what would be deleted and stop")
    .option("--yes", "do not ask for confirmation (scripts)")
    .option("--max-wait <minutes>", "how long to wait for the deletion", positiveInt, 30)
    .option("--json", "print the plan and the result as JSON on stdout")
    .action(async (opts: Common & { index?: string; maxWait: number }) => {
      const { table, tableName } = tableOf(opts.table);
      await withRollback(async ({ dynamodb }, ledger) => {
        const plan = await planIndexRollback(dynamodb, table, tableName, opts.index);
        const items = plan.itemCount !== undefined ? `, ~${plan.itemCount} items` : "";
        say(`plan: delete GSI ${plan.index} (${plan.state}${items}) on ${tableName}; the table stays online`);
        if (opts.dryRun) {
          if (opts.json) printJson({ plan, dryRun: true });
          return;
        }
        await confirm(`delete GSI ${plan.index} on ${tableName}`, plan.index, opts);
        const result = await rollbackIndex(dynamodb, ledger, plan, { maxWaitMs: opts.maxWait * 60_000 });
        const outcome = result.record.status === "done" ? "deleted" : `still being deleted after ${opts.maxWait} min`;
        say(`${tableName}: GSI ${plan.index} ${outcome}`);
        if (result.record.status === "done") {
          const notifier = stageNotifier();
          const sent = await notifier.notify({
            kind: "index-deleted",
            summary: `index deleted (rollback): ${tableName} ${plan.index}`,
          });
          notifier.close();
          if (sent.error) say(`warning: the phase event was not sent (${sent.error})`);
        }
        report(result, indexRollbackFollowUp(plan), opts.json, plan);
      });
    });

  rollback
    .command("restore")
    .description(
      "restore --table into a NEW table, from point-in-time recovery (--to ISO) " +
        "or an on-demand backup (--backup ARN; `status` shows the latest), wait until it is ACTIVE, " +
        "record it in the ledger and print how to repair the live table from it. " +
        "The live table is never replaced. " +
        "Exit 0 when restored (or --dry-run), 1 when refused or not finished, 2 for a usage error.",
    )
    .requiredOption("--table <table>", "the table to restore: logical (reports) or physical (sitelogix-reports) name")
    .option(
      "--to <iso>",
      "the point in time to restore (UTC, e.g. 2025-11-20T09:00:00Z), within the table's PITR window",
    )
    .option("--backup <arn>", "the on-demand backup to restore")
    .option("--target <name>", "the new table's name (default: <table>-restored-<time>)")
    .option("--dry-run", "show what would be restored and stop")
    .option("--yes", "do not ask for confirmation (scripts)")
    .option(
      "--max-wait <minutes>",
      "how long to wait for the new table (large tables take hours; it goes on anyway)",
      positiveInt,
      60,
    )
    .option("--json", "print the plan and the result as JSON on stdout")
    .action(async (opts: Common & { to?: string; backup?: string; target?: string; maxWait: number }) => {
      if ((opts.to === undefined) === (opts.backup === undefined))
        throw new CliError("give exactly one of --to ISO and --backup ARN", EXIT.usage);
      const { table, tableName } = tableOf(opts.table);
      await withRollback(async ({ dynamodb }, ledger) => {
        const plan = await planRestore(dynamodb, {
          table,
          tableName,
          ...(opts.to ? { to: opts.to } : {}),
          ...(opts.backup ? { backupArn: opts.backup } : {}),
          ...(opts.target ? { targetTableName: opts.target } : {}),
        });
        const source = plan.to ? `as of ${plan.to}` : `from backup ${plan.backupArn}`;
        say(`plan: restore ${tableName} ${source} into the new table ${plan.targetTableName}`);
        if (opts.dryRun) {
          if (opts.json) printJson({ plan, dryRun: true });
          return;
        }
        await confirm(`restore ${tableName} into ${plan.targetTableName}`, plan.targetTableName, opts);
        const result = await restoreTable(dynamodb, ledger, plan, {
          maxWaitMs: opts.maxWait * 60_000,
          onProgress: say,
        });
        const outcome = result.record.status === "done" ? "restored, ACTIVE" : `not ACTIVE after ${opts.maxWait} min`;
        say(`${plan.targetTableName}: ${outcome}`);
        report(result, restoreFollowUp(plan, result.record.status), opts.json, plan);
      });
    });
}
