// Turns a patch into one conditional UpdateItem and classifies what happened. The condition encodes
// the state the patch was derived from, so a write can only land on an item that still looks like
// that: it never creates an item, never overwrites a value the application changed in between.
import { UpdateCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { Assignment, Patch } from "./rules.js";
import { TABLES } from "./schema.js";

/** Who made a migrator write; the audit logger attributes changes by these names. */
export const MIGRATOR_ACTORS = {
  normalizer: "sitelogix-migrate:normalizer",
  sweep: "sitelogix-migrate:sweep",
} as const;
export type MigratorWriter = keyof typeof MIGRATOR_ACTORS;

/**
 * Bookkeeping attributes every migrator write sets besides the targets: who wrote, and a revision
 * that only the migrator increments. A stream record whose new image has a higher revision than its
 * old image is therefore the migrator's, and no application write can look like one.
 */
export const MIGRATOR_MARKER = { by: "_migratedBy", rev: "_migrationRev" } as const;

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

function condition(expr: Expression, a: Assignment): string {
  const target = expr.name(a.attribute);
  const absent = (name: string) => `(attribute_not_exists(${name}) OR ${name} = ${expr.value("")})`;
  const unchanged = () => (a.current === undefined ? `attribute_not_exists(${target})` : `${target} = ${expr.value(a.current)}`);
  const basis = () => {
    switch (a.basis.kind) {
      case "default":
        return absent(target);
      case "copy":
        return `${expr.name(a.basis.source)} = ${expr.value(a.basis.sourceValue)} AND ${unchanged()}`;
      case "context":
        return unchanged();
    }
  };
  return [basis(), ...(a.absentSources ?? []).map((source) => absent(expr.name(source)))].join(" AND ");
}

export function buildUpdate(tableName: string, patch: Patch, writer: MigratorWriter) {
  const expr = new Expression();
  const conditions = [`attribute_exists(${expr.name(TABLES[patch.table].hashKey)})`, ...patch.set.map((a) => condition(expr, a))];
  const sets = patch.set.map((a) => `${expr.name(a.attribute)} = ${expr.value(a.value)}`);
  sets.push(`${expr.name(MIGRATOR_MARKER.by)} = ${expr.value(MIGRATOR_ACTORS[writer])}`);
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

const errorName = (err: unknown) => (err as { name?: string } | null)?.name;

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
