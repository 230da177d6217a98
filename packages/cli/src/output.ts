// Output conventions: `--json` writes one JSON document to stdout and nothing else goes there;
// progress, logs and errors go to stderr. Errors are one line, with a non-zero exit code.
import { isErrorNamed } from "@sitelogix/core";

export const EXIT = { ok: 0, error: 1, usage: 2, gaps: 3, tampered: 4 } as const;

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A line for the operator, on stderr so that stdout stays machine-readable. */
export function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** An error the operator can act on: its message is the whole story, no stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
    this.name = "CliError";
  }
}

const CONNECTION_ERRORS = new Set(["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "ECONNRESET", "EHOSTUNREACH"]);

/** One line explaining an error; SDK errors are named with what they mean for the operator. */
export function describeError(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: unknown };
  if (e?.code && CONNECTION_ERRORS.has(e.code)) {
    const endpoint =
      process.env.AWS_ENDPOINT_URL_DYNAMODB ?? process.env.AWS_ENDPOINT_URL ?? "the AWS regional endpoint";
    return `cannot reach DynamoDB at ${endpoint} (${e.code})`;
  }
  if (isErrorNamed(err, "CredentialsProviderError")) return `no AWS credentials: ${e.message}`;
  if (isErrorNamed(err, "ExpiredTokenException", "ExpiredToken"))
    return `the AWS credentials expired: get fresh ones and run the command again (a sweep: with --resume)`;
  if (isErrorNamed(err, "AccessDeniedException")) return `access denied: ${e.message}`;
  if (isErrorNamed(err, "ResourceNotFoundException")) return `table not found: ${e.message}`;
  return e?.message ?? String(err);
}

export function reportFatal(err: unknown): never {
  const code = err instanceof CliError ? err.exitCode : EXIT.error;
  process.stderr.write(`sitelogix-migrate: ${describeError(err)}\n`);
  process.exit(code);
}
