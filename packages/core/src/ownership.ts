// Who owns a derived target attribute (DESIGN.md section 4). The migrator records, on the item and in
// the same UpdateItem that writes a derived value, a short hash of the value it wrote. It owns the
// attribute while the attribute still holds exactly that value; any other value is the
// application's. A hash rather than the value: the record must not copy data, only recognise it.
import { createHash } from "node:crypto";

/** The item attribute holding the record: a map of attribute name -> hash of the value written. */
export const OWNERSHIP_ATTRIBUTE = "_migratorOwns";

/** 48 bits: a collision would need the application to write, by chance, a different value with the same hash. */
export function ownershipHash(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("base64url").slice(0, 8);
}

/** The record as read (undefined when the item has none, or something that is not a map). */
export function ownershipRecord(item: Record<string, unknown>): Record<string, unknown> | undefined {
  const record = item[OWNERSHIP_ATTRIBUTE];
  return record !== null &&
    typeof record === "object" &&
    !Array.isArray(record) &&
    !(record instanceof Set) &&
    !(record instanceof Uint8Array)
    ? (record as Record<string, unknown>)
    : undefined;
}

/** True while `attribute` holds exactly the string value the migrator last wrote there. */
export function ownsValue(item: Record<string, unknown>, attribute: string): boolean {
  const value = item[attribute];
  return typeof value === "string" && value !== "" && ownershipRecord(item)?.[attribute] === ownershipHash(value);
}
