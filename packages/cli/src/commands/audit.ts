import { type Command, Option } from "commander";
import {
  AuditTrail,
  createClients,
  destroyClients,
  exportEntries,
  formatEntries,
  resolveTableNames,
  TABLES,
  type AuditEntry,
  type ChainProblem,
  type EntryFormat,
  type TableNames,
  type TimeRange,
} from "@sitelogix/core";
import { parseAuditTime } from "../args.js";
import { CliError, EXIT, printJson, say } from "../output.js";
import { tableArg } from "../options.js";

const usage = (message: string) => new CliError(message, EXIT.usage);

function timeRange(opts: { from?: string; to?: string }): TimeRange {
  try {
    const range: TimeRange = {
      ...(opts.from !== undefined ? { from: parseAuditTime(opts.from, "from") } : {}),
      ...(opts.to !== undefined ? { to: parseAuditTime(opts.to, "to") } : {}),
    };
    if (range.from && range.to && range.from > range.to)
      throw new Error(`--from ${opts.from} is after --to ${opts.to}`);
    return range;
  } catch (err) {
    throw usage((err as Error).message);
  }
}

/** `reports:REPORT#r1:METADATA` → the table and the item's keys, in the table's key order. */
function parseEntity(arg: string, names: TableNames): { table: string; keys: Record<string, string> } {
  const [tableName, ...rest] = arg.split(":");
  const table = tableArg(tableName ?? "", names);
  const def = TABLES[table as keyof typeof TABLES];
  // The sort key may itself contain colons (times): everything after the partition key is the sort key.
  const pk = rest[0];
  const sk = rest.length > 1 ? rest.slice(1).join(":") : undefined;
  if (!pk)
    throw usage(`--entity ${arg}: expected TABLE:PK${def.rangeKey ? ":SK" : ""}, e.g. reports:REPORT#r00001:METADATA`);
  if (def.rangeKey && sk === undefined)
    throw usage(`--entity ${arg}: ${table} items have a sort key (${def.rangeKey}); give TABLE:PK:SK`);
  if (!def.rangeKey && sk !== undefined) throw usage(`--entity ${arg}: ${table} items have no sort key; give TABLE:PK`);
  return { table, keys: { [def.hashKey]: pk, ...(def.rangeKey && sk !== undefined ? { [def.rangeKey]: sk } : {}) } };
}

/** Exactly one of the selectors, as the entries it selects. */
function selection(
  trail: AuditTrail,
  names: TableNames,
  opts: { entity?: string; actor?: string; table?: string },
  range: TimeRange,
): AsyncGenerator<AuditEntry> {
  const given = (["entity", "actor", "table"] as const).filter((k) => opts[k] !== undefined);
  if (given.length !== 1)
    throw usage(
      `give exactly one of ${["entity", "actor", "table"].map((k) => `--${k}`).join(", ")}${given.length ? ` (got ${given.map((k) => `--${k}`).join(" and ")})` : ""}`,
    );
  if (opts.entity !== undefined) {
    const { table, keys } = parseEntity(opts.entity, names);
    return trail.history(table, keys, range);
  }
  if (opts.actor !== undefined) return trail.byActor(opts.actor, range);
  return trail.byTable(tableArg(opts.table!, names), range);
}

async function writeStdout(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once("drain", () => resolve()));
}

async function withTrail<T>(run: (trail: AuditTrail, names: TableNames) => Promise<T>): Promise<T> {
  const clients = createClients();
  const names = resolveTableNames();
  try {
    return await run(new AuditTrail(clients.dynamodb, names), names);
  } finally {
    destroyClients(clients);
  }
}

const problemLine = (p: ChainProblem) =>
  `TAMPERED  ${p.table} ${JSON.stringify(p.keys)}${p.position !== undefined ? ` position ${p.position}` : ""}${p.sequenceNumber ? ` (sequence ${p.sequenceNumber})` : ""}: ${p.problem}`;

export function registerAudit(program: Command): void {
  const audit = program
    .command("audit")
    .summary("the compliance trail: query, export and verify who changed what, and when")
    .description(
      "The compliance trail: who changed what, and when, in every SiteLogix table. Every change to a record is one " +
        "audit entry (table, keys, event, time, actor, the changed attributes with their values before and after), " +
        "chained per record with SHA-256 so that altering the trail is detectable.",
    );

  audit
    .command("query")
    .summary("list audit entries of one record, one actor or one table, oldest first")
    .description(
      "List audit entries, oldest first, streamed page by page (any number of entries in constant memory). Select " +
        "exactly one of --entity (one record's full history), --actor or --table, and narrow with --from/--to. The actor " +
        "is the application user named by the record's lastModifiedBy (or updatedBy), sitelogix-migrate:normalizer or " +
        "sitelogix-migrate:sweep for the migration's own writes, dynamodb.amazonaws.com for TTL expiry; actorBasis says " +
        "which of these it was.",
    )
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  sitelogix-migrate audit query --entity reports:REPORT#r00001:METADATA\n" +
        "  sitelogix-migrate audit query --actor user_42 --from 2025-11-01 --to 2025-11-30 --format csv > user_42.csv\n" +
        "  sitelogix-migrate audit query --table personnel --from 2025-11-01T08:00:00Z --format ndjson\n",
    )
    .option(
      "--entity <TABLE:PK[:SK]>",
      "one record: its table (logical or physical name) and keys, e.g. personnel:PERSON#e00012:PROFILE",
    )
    .option("--actor <id>", "everything one actor changed, e.g. user_42 or sitelogix-migrate:sweep")
    .option("--table <table>", "everything changed in one table (logical name such as reports, or the physical name)")
    .option("--from <iso>", "only changes at or after this UTC time; a bare date means the start of that day")
    .option("--to <iso>", "only changes at or before this UTC time; a bare date means the end of that day")
    .addOption(
      new Option(
        "--format <format>",
        "table: aligned columns with attribute names only; json: one array; ndjson: one entry per line; csv: one row per entry with a header",
      )
        .choices(["table", "json", "ndjson", "csv"])
        .default("table"),
    )
    .action(
      async (opts: {
        entity?: string;
        actor?: string;
        table?: string;
        from?: string;
        to?: string;
        format: EntryFormat;
      }) => {
        const range = timeRange(opts);
        await withTrail(async (trail, names) => {
          for await (const text of formatEntries(selection(trail, names, opts, range), opts.format))
            await writeStdout(text);
        });
      },
    );

  audit
    .command("export")
    .summary("write a table's or an actor's entries in a time range to a file, with its SHA-256 digest")
    .description(
      "Write the entries of one table or one actor in a time range to a file, oldest first, with the file's SHA-256 " +
        "digest beside it as <file>.sha256 (sha256sum format: check a copy later with `sha256sum -c <file>.sha256`). " +
        "The file is written under a temporary name and renamed when complete, so a file with the requested name is " +
        "always a whole export.",
    )
    .addHelpText(
      "after",
      "\nExample:\n  sitelogix-migrate audit export --table personnel --from 2025-01-01 --to 2025-12-31 --out personnel-2025.ndjson\n",
    )
    .option("--table <table>", "entries of one table (logical or physical name)")
    .option("--actor <id>", "entries of one actor")
    .requiredOption("--from <iso>", "first UTC time included; a bare date means the start of that day")
    .requiredOption("--to <iso>", "last UTC time included; a bare date means the end of that day")
    .requiredOption("--out <file>", "the export file to write (replaced if it exists)")
    .addOption(
      new Option("--format <format>", "ndjson: one JSON entry per line; csv: one row per entry with a header")
        .choices(["ndjson", "csv"])
        .default("ndjson"),
    )
    .option("--json", "print the result (file, digest file, entries, bytes, sha256) as JSON on stdout")
    .action(
      async (opts: {
        table?: string;
        actor?: string;
        from: string;
        to: string;
        out: string;
        format: "ndjson" | "csv";
        json?: boolean;
      }) => {
        const range = timeRange(opts);
        const result = await withTrail((trail, names) =>
          exportEntries(selection(trail, names, opts, range), opts.format, opts.out),
        );
        if (opts.json) printJson(result);
        else
          say(
            `exported ${result.entries} entries (${result.bytes} bytes) to ${result.file}; sha256 ${result.sha256} in ${result.digestFile}`,
          );
      },
    );

  audit
    .command("verify")
    .summary("check every record's hash chain; exit 0 intact, 4 altered")
    .description(
      "Check that the trail was not altered: recompute every entry's SHA-256, follow every record's chain from its " +
        "first entry to its head, and report any entry that was edited, deleted (the newest included), inserted or " +
        "moved, and any chain whose head is missing. Entries removed because their retention period ended are counted, " +
        "not reported.",
    )
    .addHelpText(
      "after",
      "\nExit codes: 0 every chain intact; 4 something was altered (each finding names the record and the position); 1 error.\n",
    )
    .option("--table <table>", "only the chains of one table (logical or physical name)")
    .option("--json", "print the report as JSON on stdout: intact, chains, entries, expired, problems")
    .action(async (opts: { table?: string; json?: boolean }) => {
      const report = await withTrail((trail, names) =>
        trail.verify({
          ...(opts.table ? { table: tableArg(opts.table, names) } : {}),
          ...(opts.json ? {} : { onProblem: (p: ChainProblem) => say(problemLine(p)) }),
        }),
      );
      if (opts.json) printJson(report);
      else {
        say(
          `${report.intact ? "intact" : "ALTERED"}: ${report.chains} chains, ${report.entries} entries verified` +
            `${report.expired ? `, ${report.expired} expired by retention` : ""}${report.intact ? "" : `, ${report.problems.length} findings`}`,
        );
      }
      if (!report.intact) process.exitCode = EXIT.tampered;
    });
}
