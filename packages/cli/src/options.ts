// Options several commands share.
import { Option } from "commander";
import {
  type LogicalTable,
  parseTableArg,
  SITELOGIX_TABLES,
  type SiteLogixTable,
  type TableNames,
} from "@sitelogix/core";
import { CliError, EXIT } from "./output.js";

/** `--table T…`: logical (`reports`) or physical (`sitelogix-reports`) names, repeatable. */
export const tableOption = (what = "tables to include") =>
  new Option("--table <table...>", `${what}: logical (reports) or physical (sitelogix-reports) names; default: all`);

/** The SiteLogix tables a `--table` list names (all when absent); unknown names are usage errors. */
export function selectTables(
  args: string[] | undefined,
  names: TableNames,
  defaults: readonly SiteLogixTable[] = SITELOGIX_TABLES,
): SiteLogixTable[] {
  if (!args?.length) return [...defaults];
  return args.map((arg) => {
    const logical = tableArg(arg, names);
    if (!(SITELOGIX_TABLES as readonly string[]).includes(logical))
      throw new CliError(`${arg} is not a SiteLogix table`, EXIT.usage);
    return logical as SiteLogixTable;
  });
}

/** One `--table` value as a logical table (SiteLogix or migrator); unknown names are usage errors. */
export function tableArg(arg: string, names: TableNames): LogicalTable {
  try {
    return parseTableArg(arg, names);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.usage);
  }
}
