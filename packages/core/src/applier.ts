// Turns a patch into one conditional UpdateItem and classifies what happened. The condition encodes
// the state the patch was derived from, so a write can only land on an item that still looks like
// that: it never creates an item, never overwrites a value the application changed in between, and
// rewrites a derived value only while the migrator still owns it.
import { UpdateCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { OWNERSHIP_ATTRIBUTE, ownershipHash } from "./ownership.js";
import type { Assignment, Patch } from "./rules.js";
import { TABLES } from "./schema.js";
import { errorName } from "./errors.js";

/** Who made a migrator write; the audit logger attributes changes by these names. */
export const MIGRATOR_ACTORS = {
  normalizer: "sitelogix-migrate:normalizer",
  sweep: "sitelogix-migrate:sweep",
} as const;
export type MigratorWriter = keyof typeof MIGRATOR_ACTORS;

/**
 * Bookkeeping attributes every migrator write sets besides the targets: who wrote, a revision that
 * only the migrator increments (a stream record whose new image has a higher revision than its old
 * image is therefore the migrator's, and no application write can look like one), and the record of
 * the derived values it owns (ownership.ts).
 */
export const MIGRATOR_MARKER = { by: "_migratedBy", rev: "_migrationRev", owns: OWNERSHIP_ATTRIBUTE } as const;

export type Outcome = "applied" | "alreadyNormalized" | "conflict" | "gone" | "rejected";

export interface ApplyResult {
  outcome: Outcome;
  key: Record<string, string>;
  /** Write units DynamoDB reported (1 assumed for a failed condition, which reports none). */
  consumedWcu: number;
  /** For `rejected`: DynamoDB's reason (it names attributes and indexes, never values). */
  reason?: string;
}

/** Placeholders for ExpressionAttributeNames/Values, allocated only when used (unused ones are rejected). */
class Expression {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private readonly nameOf = new Map<string, string>();

  name(attribute: string): string {
    let placeholder = this.nameOf.get(attribute);
    if (!placeholder) {
      placeholder = `#n${this.nameOf.size}`;
      this.nameOf.set(attribute, placeholder);
      this.names[placeholder] = attribute;
    }
    return placeholder;
  }

  value(value: unknown): string {
    const placeholder = `:v${Object.keys(this.values).length}`;
    this.values[placeholder] = value;
    return placeholder;
  }
}

const isDerived = (a: Assignment) => a.basis.kind !== "mirror";

/** The state the assignment was derived from, as a condition: the write lands only on that state. */
function condition(expr: Expression, a: Assignment): string {
  const target = expr.name(a.attribute);
  const absent = (name: string) => `(attribute_not_exists(${name}) OR ${name} = ${expr.value("")})`;
  const parts: string[] = [];
  if (!isDerived(a)) {
    parts.push(a.current === undefined ? `attribute_not_exists(${target})` : `${target} = ${expr.value(a.current)}`);
  } else if (a.current === undefined || a.current === "") {
    parts.push(absent(target));
  } else {
    // A rewrite of the migrator's own value: the value and its ownership entry both unchanged.
    const entry = `${expr.name(OWNERSHIP_ATTRIBUTE)}.${expr.name(a.attribute)}`;
    parts.push(`${target} = ${expr.value(a.current)}`, `${entry} = ${expr.value(ownershipHash(a.current))}`);
  }
  if (a.basis.kind === "mirror" || a.basis.kind === "derived")
    parts.push(`${expr.name(a.basis.source)} = ${expr.value(a.basis.sourceValue)}`);
  for (const source of a.absentSources ?? []) parts.push(absent(expr.name(source)));
  return parts.join(" AND ");
}

export function buildUpdate(tableName: string, patch: Patch, writer: MigratorWriter) {
  const expr = new Expression();
  const conditions = [
    `attribute_exists(${expr.name(TABLES[patch.table].hashKey)})`,
    ...patch.set.map((a) => condition(expr, a)),
  ];
  const sets = patch.set.map((a) => `${expr.name(a.attribute)} = ${expr.value(a.value)}`);
  sets.push(`${expr.name(MIGRATOR_MARKER.by)} = ${expr.value(MIGRATOR_ACTORS[writer])}`);
  // Ownership of each derived value written is recorded in the same write.
  const owned = patch.set.filter(isDerived);
  if (owned.length > 0) {
    const record = expr.name(OWNERSHIP_ATTRIBUTE);
    if (patch.ownershipRecord) {
      conditions.push(`attribute_type(${record}, ${expr.value("M")})`);
      for (const a of owned) sets.push(`${record}.${expr.name(a.attribute)} = ${expr.value(ownershipHash(a.value))}`);
    } else {
      conditions.push(`(attribute_not_exists(${record}) OR NOT attribute_type(${record}, ${expr.value("M")}))`);
      sets.push(
        `${record} = ${expr.value(Object.fromEntries(owned.map((a) => [a.attribute, ownershipHash(a.value)])))}`,
      );
    }
  }
  return {
    TableName: tableName,
    Key: patch.key,
    UpdateExpression: `SET ${sets.join(", ")} ADD ${expr.name(MIGRATOR_MARKER.rev)} ${expr.value(1)}`,
    ConditionExpression: conditions.join(" AND "),
    ExpressionAttributeNames: expr.names,
    ExpressionAttributeValues: expr.values,
    ReturnConsumedCapacity: "TOTAL" as const,
    ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const,
  };
}

/**
 * Applies a patch with one conditional UpdateItem. Item-level outcomes are returned, never thrown;
 * anything else (throttling after the SDK's retries, network, access) is thrown for the caller to
 * retry or abort on.
 */
export async function applyPatch(
  doc: DynamoDBDocumentClient,
  tableName: string,
  patch: Patch,
  writer: MigratorWriter,
  options: { abortSignal?: AbortSignal } = {},
): Promise<ApplyResult> {
  if (patch.set.length === 0) return { outcome: "alreadyNormalized", key: patch.key, consumedWcu: 0 };
  try {
    const out = await doc.send(new UpdateCommand(buildUpdate(tableName, patch, writer)), options);
    return { outcome: "applied", key: patch.key, consumedWcu: out.ConsumedCapacity?.CapacityUnits ?? 0 };
  } catch (err) {
    if (errorName(err) === "ConditionalCheckFailedException") {
      // With ALL_OLD, DynamoDB returns the item as it is now; no item means it was deleted.
      const gone = (err as { Item?: unknown }).Item === undefined;
      return { outcome: gone ? "gone" : "conflict", key: patch.key, consumedWcu: 1 };
    }
    // A malformed expression is our bug, not the item's: let it surface.
    if (errorName(err) === "ValidationException" && !/expression/i.test((err as Error).message)) {
      return { outcome: "rejected", key: patch.key, consumedWcu: 0, reason: (err as Error).message };
    }
    throw err;
  }
}
