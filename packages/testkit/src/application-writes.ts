// What the simulated application wrote last, to compare with what the migrator left.
import type { Item, SiteLogixTable } from "@sitelogix/core";
import type { AppWrite } from "./sample-data.js";

/**
 * Per item still present after the traffic, the value of each attribute the application wrote last
 * (ordered by the item's version, which its optimistic locking serializes). A later full put or
 * insert that lacked the attribute ends what the application said about it.
 */
export function lastApplicationWrites(
  journal: readonly AppWrite[],
): Map<
  string,
  { table: SiteLogixTable; key: { PK: string; SK: string }; values: Item; versions: Record<string, number> }
> {
  const id = (w: AppWrite) => `${w.table}|${w.key.PK}|${w.key.SK}`;
  const deleted = new Set(journal.filter((w) => w.op === "delete").map(id));
  const byItem = new Map<string, AppWrite[]>();
  for (const w of journal) if (!deleted.has(id(w))) byItem.set(id(w), [...(byItem.get(id(w)) ?? []), w]);
  const result = new Map<
    string,
    { table: SiteLogixTable; key: { PK: string; SK: string }; values: Item; versions: Record<string, number> }
  >();
  for (const [itemId, writes] of byItem) {
    writes.sort((a, b) => (a.version ?? 0) - (b.version ?? 0));
    const values: Item = {};
    /** The item's version after the write that set each attribute last. */
    const versions: Record<string, number> = {};
    for (const w of writes) {
      if (w.op !== "update") for (const k of Object.keys(values)) delete values[k];
      Object.assign(values, w.attributes ?? {}, w.version !== undefined ? { version: w.version } : {});
      for (const k of Object.keys(w.attributes ?? {})) versions[k] = w.version ?? 0;
    }
    result.set(itemId, { table: writes[0]!.table, key: writes[0]!.key, values, versions });
  }
  return result;
}
