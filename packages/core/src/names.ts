// Physical table names. Under `sst shell` (and in Lambda) they come from the SST links; otherwise
// from the defaults `sitelogix-*`, optionally prefixed (SITELOGIX_TABLE_PREFIX) so that tests and
// rehearsals can run side by side on one endpoint.
import { Resource } from "sst/resource";
import { TABLES, type LogicalTable } from "./schema.js";

export type TableNames = Record<LogicalTable, string>;

export function defaultTableNames(prefix = ""): TableNames {
  return Object.fromEntries(Object.values(TABLES).map((t) => [t.logical, `${prefix}${t.defaultName}`])) as TableNames;
}

function linkedName(linkName: string): string | undefined {
  if (!(linkName in Resource)) return undefined;
  const linked = (Resource as unknown as Record<string, { name?: unknown }>)[linkName];
  return typeof linked?.name === "string" ? linked.name : undefined;
}

export function resolveTableNames(env: NodeJS.ProcessEnv = process.env): TableNames {
  const defaults = defaultTableNames(env.SITELOGIX_TABLE_PREFIX ?? "");
  return Object.fromEntries(
    Object.values(TABLES).map((t) => [t.logical, linkedName(t.linkName) ?? defaults[t.logical]]),
  ) as TableNames;
}

/** The logical table a `--table` argument names: its logical name or its physical one. */
export function parseTableArg(arg: string, names: TableNames): LogicalTable {
  const logical = (Object.keys(names) as LogicalTable[]).find((l) => l === arg || names[l] === arg);
  if (!logical) {
    const known = Object.entries(names)
      .map(([l, p]) => `${l} (${p})`)
      .join(", ");
    throw new Error(`unknown table "${arg}"; expected one of: ${known}`);
  }
  return logical;
}

export function logicalFromPhysical(names: TableNames, physical: string): LogicalTable | undefined {
  return (Object.keys(names) as LogicalTable[]).find((l) => names[l] === physical);
}
