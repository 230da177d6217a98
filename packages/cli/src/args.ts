// Option parsing shared by the commands: numbers, `--table` selections, and table errors that name the table.
import { InvalidArgumentError } from "commander";
import { isSiteLogixTable, parseTableArg, type SiteLogixTable, type TableNames } from "@sitelogix/core";
import { CliError, EXIT } from "./output.js";

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
}

/** Tables named by `--table` (logical or physical), or `fallback`; only SiteLogix tables. */
export function selectTables(args: string[] | undefined, names: TableNames, fallback: SiteLogixTable[]): SiteLogixTable[] {
  if (!args?.length) return fallback;
  return args.map((arg) => {
    let logical;
    try {
      logical = parseTableArg(arg, names);
    } catch (err) {
      throw new CliError((err as Error).message, EXIT.usage);
    }
    if (!isSiteLogixTable(logical)) throw new CliError(`${arg} is a migrator table, not a SiteLogix table`, EXIT.usage);
    return logical;
  });
}

/** Runs `action`, turning "table not found" into a line that names the table. */
export async function onTable<T>(physical: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if ((err as { name?: string }).name === "ResourceNotFoundException") throw new CliError(`table ${physical} not found (${(err as Error).message})`);
    throw err;
  }
}
