// Number options and table errors that name the table (sweep, verify).
import { InvalidArgumentError } from "commander";
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
    if ((err as { name?: string }).name === "ResourceNotFoundException") throw new CliError(`table ${physical} not found (${(err as Error).message})`);
    throw err;
  }
}
