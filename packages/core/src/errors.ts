// Errors by name. The SDK's service errors (ConditionalCheckFailedException, …) are recognised by
// their `name`: it is what the service sends, it survives SDK upgrades and client mocks set it, where
// `instanceof` depends on which copy of a client package threw.

/** The `name` of a thrown value, or undefined when it has none. */
export function errorName(err: unknown): string | undefined {
  const name = (err as { name?: unknown } | null | undefined)?.name;
  return typeof name === "string" ? name : undefined;
}

/** True when the thrown value's `name` is one of `names`. */
export function isErrorNamed(err: unknown, ...names: string[]): boolean {
  const name = errorName(err);
  return name !== undefined && names.includes(name);
}

/** `Name: message` of a thrown value, for a one-line report. */
export function describeError(err: unknown): string {
  const message = (err as { message?: unknown } | null | undefined)?.message;
  return `${errorName(err) ?? "Error"}: ${typeof message === "string" ? message : String(err)}`;
}
