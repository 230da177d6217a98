// An on-demand seal on AWS. Only the digest writer's role may sign with the digest key
// (stacks/digests.ts), so there `audit seal` invokes the writer Lambda and reports what it sealed.
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from "@aws-sdk/client-lambda";
import type { SealResult } from "./seal.js";

/** What the writer accepts when invoked on demand (the schedule sends EventBridge's event instead). */
export interface DigestWriterEvent {
  settleSeconds?: number;
}

/** What the writer returns: the digest it sealed. */
export type DigestWriterResult = Pick<SealResult, "digest" | "sequence" | "heads" | "parts" | "range" | "location">;

/** The writer ran and failed (its error type and message, never data). */
export class DigestWriterError extends Error {
  override name = "DigestWriterError";
}

/** The settle time of an on-demand invocation; anything else (a scheduled event) uses the default. */
export function writerSettleSeconds(event: unknown): number | undefined {
  const settle = (event as DigestWriterEvent | undefined)?.settleSeconds;
  return Number.isInteger(settle) && settle! >= 0 ? settle : undefined;
}

/** Invokes the digest writer synchronously and returns the digest it sealed. */
export async function invokeDigestWriter(
  functionName: string,
  event: DigestWriterEvent = {},
  client?: LambdaClient,
): Promise<DigestWriterResult> {
  const lambda = client ?? new LambdaClient({});
  let out: InvokeCommandOutput;
  try {
    out = await lambda.send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: "RequestResponse",
        Payload: new TextEncoder().encode(JSON.stringify(event)),
      }),
    );
  } finally {
    if (!client) lambda.destroy();
  }
  const text = out.Payload ? new TextDecoder().decode(out.Payload) : "";
  if (out.FunctionError) {
    let reason = out.FunctionError;
    try {
      const error = JSON.parse(text) as { errorType?: string; errorMessage?: string };
      reason = `${error.errorType ?? out.FunctionError}: ${error.errorMessage ?? ""}`;
    } catch {
      // Not Lambda's JSON error document: keep the FunctionError kind.
    }
    throw new DigestWriterError(`the digest writer ${functionName} failed (${reason}); see its logs`);
  }
  return JSON.parse(text) as DigestWriterResult;
}
