import { type Command, Option } from "commander";
import { ensureTables, resolveTableNames, type SchemaName, withClients } from "@sitelogix/core";
import { printJson, say } from "../output.js";

export function registerTables(program: Command): void {
  const tables = program.command("tables").description("create the tables on the endpoint (rehearsal and local mode)");
  tables
    .command("create")
    .description(
      "create every SiteLogix table (streams NEW_AND_OLD_IMAGES) and the migrator's audit and ledger tables,\n" +
        "wait until ACTIVE and enable TTL. " +
        "Idempotent: existing tables must match the schema, else it fails naming the difference.",
    )
    .addOption(
      new Option(
        "--schema <schema>",
        "legacy: the four existing tables as in production today (plus the new ones); target: the end state, 14 GSIs",
      )
        .choices(["legacy", "target"])
        .makeOptionMandatory(),
    )
    .option("--json", "print the result as JSON on stdout")
    .action(async (opts: { schema: SchemaName; json?: boolean }) => {
      const names = resolveTableNames();
      const results = await withClients(({ dynamodb }) => ensureTables(dynamodb, names, opts.schema), names);
      if (opts.json) printJson({ schema: opts.schema, tables: results });
      else for (const r of results) say(`${r.action === "created" ? "created" : "exists "}  ${r.name}`);
    });
}
