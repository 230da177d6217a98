import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import {
  AuditTrail,
  retentionFromEnv,
  digestWriterFromEnvironment,
  invokeDigestWriter,
  sealAuditDigest,
  signerFromEnvironment,
  storeFromEnvironment,
  verifyExport,
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
  type VerifyReport,
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
  if (!pk) {
    const form = `TABLE:PK${def.rangeKey ? ":SK" : ""}`;
    throw usage(`--entity ${arg}: expected ${form}, e.g. reports:REPORT#r00001:METADATA`);
  }
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
  if (given.length !== 1) {
    const got = given.length ? ` (got ${given.map((k) => `--${k}`).join(" and ")})` : "";
    throw usage(`give exactly one of --entity, --actor, --table${got}`);
  }
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

async function withTrail<T>(
  run: (trail: AuditTrail, names: TableNames, clients: ReturnType<typeof createClients>) => Promise<T>,
): Promise<T> {
  const clients = createClients();
  const names = resolveTableNames();
  try {
    return await run(new AuditTrail(clients.dynamodb, names), names, clients);
  } finally {
    destroyClients(clients);
  }
}

function problemLine(p: ChainProblem): string {
  const where = p.table
    ? `${p.table} ${JSON.stringify(p.keys)}${p.position !== undefined ? ` position ${p.position}` : ""}` +
      `${p.sequenceNumber ? ` (sequence ${p.sequenceNumber})` : ""}`
    : p.digest
      ? `digest ${p.digest}`
      : "export";
  return `TAMPERED  ${where}: ${p.problem}${p.table && p.digest ? ` [${p.digest}]` : ""}`;
}

/** The public key that verifies digests: the file given, else the signer's (local key pair or KMS). */
const publicKeyOf = (file: string | undefined, auditTableName: string) => async () =>
  file !== undefined ? readFile(file, "utf8") : (await signerFromEnvironment({ auditTableName })).publicKeyPem();

function summary(report: VerifyReport): string {
  const parts = [
    `${report.intact ? "intact" : "ALTERED"}: ${report.chains} chains, ${report.entries} entries verified`,
    ...(report.expired ? [`${report.expired} expired by retention`] : []),
    report.digests.count
      ? `${report.digests.count} signed digests (latest ${report.digests.latest}, sealed to ${report.digests.sealedTo})`
      : "no signed digest yet",
    ...(report.unsealed.entries
      ? [
          `${report.unsealed.entries} entries not yet sealed (oldest recorded ${report.unsealed.oldestRecordedAt}, ` +
            `${report.unsealed.ageSeconds} s ago): run \`audit seal\``,
        ]
      : []),
    ...(report.intact ? [] : [`${report.problems.length} findings`]),
  ];
  return parts.join(", ");
}

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
      "List audit entries, oldest first, streamed page by page (any number of entries in constant memory). " +
        "Select exactly one of --entity (one record's full history), --actor or --table, and narrow with " +
        "--from/--to. The actor is the application user named by the record's lastModifiedBy (or updatedBy), " +
        "sitelogix-migrate:normalizer or sitelogix-migrate:sweep for the migration's own writes, " +
        "dynamodb.amazonaws.com for TTL expiry; actorBasis says which of these it was.",
    )
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  sitelogix-migrate audit query --entity reports:REPORT#r00001:METADATA\n" +
        "  sitelogix-migrate audit query --actor user_42 --from 2025-11-01 --to 2025-11-30 --format csv " +
        "> user_42.csv\n" +
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
        "table: aligned columns with attribute names only; json: one array; ndjson: one entry per line; " +
          "csv: one row per entry with a header",
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
    .summary("write a table's or an actor's entries in a time range to a file, with its digest and proof")
    .description(
      "Write the entries of one table or one actor in a time range to a file, oldest first, with the file's " +
        "SHA-256 beside it as <file>.sha256 (sha256sum format: `sha256sum -c <file>.sha256`) and the proof as " +
        "<file>.proof.ndjson: the signed digests, the head lists that seal the exported records, and each record's " +
        "entries from the first exported one to the position a digest sealed. With the public key " +
        "(`audit public-key`), `audit verify --export <file> --public-key <key>` proves the export offline. The " +
        "files are written under temporary names and renamed when complete.",
    )
    .addHelpText(
      "after",
      "\nExample:\n  sitelogix-migrate audit export --table personnel --from 2025-01-01 --to 2025-12-31 " +
        "--out personnel-2025.ndjson\n",
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
    .option("--json", "print the result (files, entries, bytes, sha256, sealed and unsealed entries) as JSON")
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
          exportEntries(selection(trail, names, opts, range), opts.format, opts.out, {
            audit: trail,
            store: storeFromEnvironment({ auditTableName: names.audit }),
            publicKeyPem: publicKeyOf(undefined, names.audit),
          }),
        );
        if (opts.json) printJson(result);
        else {
          say(
            `exported ${result.entries} entries (${result.bytes} bytes) to ${result.file}; ` +
              `sha256 ${result.sha256} in ${result.digestFile}`,
          );
          if (result.proof)
            say(
              `proof in ${result.proof.file}: ${result.proof.digests} digests, ` +
                `${result.proof.sealedEntries} entries sealed, ${result.proof.unsealedEntries} not yet sealed`,
            );
        }
      },
    );

  audit
    .command("seal")
    .summary("sign a digest of every chain head changed since the last digest")
    .description(
      "Seal the trail: write a digest of every chain head changed since the previous digest (table, keys, " +
        "entry count, newest hash), the previous digest's hash and the time range, signed with the digest key " +
        "(KMS key SITELOGIX_AUDIT_KMS_KEY_ID on AWS, else a local Ed25519 key kept under SITELOGIX_AUDIT_HOME), " +
        "into the digest store (S3 bucket SITELOGIX_AUDIT_DIGEST_BUCKET, else a local directory). Once sealed, " +
        "no one who can write the audit table can alter the sealed entries undetected. The digest writer seals " +
        "hourly on AWS; run this before an export or a verification that must cover the latest changes. On AWS " +
        "(SITELOGIX_AUDIT_DIGEST_WRITER, or the stage's writer under `sst shell`) only the digest writer may sign: " +
        "this invokes it (lambda:InvokeFunction) and prints what it sealed.",
    )
    .option(
      "--settle <seconds>",
      "seal heads changed up to this long ago (appends still in flight are left to the next digest)",
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw usage(`--settle ${v}: expected whole seconds`);
        return n;
      },
    )
    .option("--json", "print the result (digest, sequence, heads, parts, range, previous, location) as JSON")
    .action(async (opts: { settle?: number; json?: boolean }) => {
      const settle = opts.settle !== undefined ? { settleSeconds: opts.settle } : {};
      const writer = digestWriterFromEnvironment();
      const result = writer
        ? await invokeDigestWriter(writer, settle)
        : await withTrail(async (_trail, names, clients) =>
            sealAuditDigest({
              doc: clients.doc,
              auditTableName: names.audit,
              signer: await signerFromEnvironment({ auditTableName: names.audit }),
              store: storeFromEnvironment({ auditTableName: names.audit }),
              ...settle,
            }),
          );
      if (opts.json) printJson(result);
      else
        say(
          `sealed ${result.digest}: ${result.heads} chain heads changed after ${result.range.from ?? "the start"} ` +
            `up to ${result.range.to}, in ${result.location}`,
        );
    });

  audit
    .command("public-key")
    .summary("print the public key (PEM) that verifies the signed digests")
    .description(
      "Print the public key (PEM) of the digest key: give it to an auditor with an export, for " +
        "`audit verify --export FILE --public-key KEY`. Locally the key pair is created on first use.",
    )
    .action(async () => {
      const signer = await signerFromEnvironment({ auditTableName: resolveTableNames().audit });
      process.stdout.write(await signer.publicKeyPem());
    });

  audit
    .command("verify")
    .summary("check every entry, chain, head and signed digest (or an export, offline); exit 0 intact, 4 altered")
    .description(
      "Check that the trail was not altered: recompute every entry's SHA-256, follow every record's chain from " +
        "its first entry to its head, check every signed digest's signature and its link to the one before, and " +
        "every chain against the point the latest digest covering it sealed. Reports any entry edited, deleted " +
        "(the newest included) or inserted, a chain rewritten with recomputed hashes (against the digest), a " +
        "missing head or chain, an expiry moved before the end of retention, and any digest altered, deleted or " +
        "reordered. Entries newer than the latest digest are reported as not yet sealed (count and age), not as " +
        "tampering; entries removed because their retention ended are counted. With --export, checks an export " +
        "and its proof offline (no AWS access) with --public-key.",
    )
    .addHelpText(
      "after",
      "\nExit codes: 0 intact; 4 something was altered (each finding names the record, the position and the " +
        "digest); 1 error.\n" +
        "\nExamples:\n  sitelogix-migrate audit verify\n" +
        "  sitelogix-migrate audit verify --export personnel-2025.ndjson --public-key digest-key.pem\n",
    )
    .option("--table <table>", "only the chains of one table (logical or physical name)")
    .option("--export <file>", "verify this ndjson export and its <file>.proof.ndjson offline (needs --public-key)")
    .option("--public-key <file>", "the PEM public key that verifies the digests (default: the signer's)")
    .option("--json", "print the report as JSON on stdout: intact, chains, entries, problems, digests, unsealed")
    .action(async (opts: { table?: string; export?: string; publicKey?: string; json?: boolean }) => {
      const onProblem = opts.json ? undefined : (p: ChainProblem) => say(problemLine(p));
      let report: VerifyReport;
      if (opts.export !== undefined) {
        if (opts.publicKey === undefined) throw usage("--export needs --public-key (the digest key's PEM)");
        if (opts.table !== undefined) throw usage("--export verifies the whole export: leave out --table");
        report = await verifyExport(opts.export, await readFile(opts.publicKey, "utf8"), {
          ...(onProblem ? { onProblem } : {}),
        });
      } else {
        report = await withTrail((trail, names) =>
          trail.verify({
            ...(opts.table ? { table: tableArg(opts.table, names) } : {}),
            ...(onProblem ? { onProblem } : {}),
            digests: {
              store: storeFromEnvironment({ auditTableName: names.audit }),
              publicKeyPem: publicKeyOf(opts.publicKey, names.audit),
            },
            retention: retentionFromEnv(),
          }),
        );
      }
      if (opts.json) printJson(report);
      else say(summary(report));
      if (!report.intact) process.exitCode = EXIT.tampered;
    });
}
