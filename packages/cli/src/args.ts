// Number and time options, and table errors that name the table (sweep, verify, audit).
import { InvalidArgumentError } from "commander";
import { isErrorNamed } from "@sitelogix/core";
import { CliError } from "./output.js";

/** A parser for whole numbers of at least `min`. */
export const integerAtLeast =
  (min: number) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number >= ${min}`);
    return n;
  };

export const positiveInt = integerAtLeast(1);

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
}

/** Runs `action`, turning "table not found" into a line that names the table. */
export async function onTable<T>(physical: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if (isErrorNamed(err, "ResourceNotFoundException"))
      throw new CliError(`table ${physical} not found (${(err as Error).message})`);
    throw err;
  }
}

/**
 * An operator's time bound as the ISO form audit entries use: a full time as given
 * (`2025-11-01T08:00:00Z`), a bare date as the start (`from`) or the end (`to`) of that UTC day.
 * Throws when unreadable.
 */
export function parseAuditTime(value: string, bound: "from" | "to"): string {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const ms = Date.parse(dateOnly ? `${value}T00:00:00.000Z` : value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) {
    throw new Error(
      `--${bound} must be an ISO date or time in UTC (e.g. 2025-11-01 or 2025-11-01T08:00:00Z); got "${value}"`,
    );
  }
  return new Date(dateOnly && bound === "to" ? ms + 86_400_000 - 1 : ms).toISOString();
}
