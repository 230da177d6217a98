// The functions the mappings invoke: a handler module loaded as SST names it, called with a Lambda
// context and timeout, one invocation at a time per mapping, its response read as Lambda reads it.
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Context, DynamoDBRecord } from "aws-lambda";
import type { Subscription } from "../subscriptions.js";
import { failureText, type InvocationResult, type LambdaStreamHandler, type SubscriberStats } from "./options.js";

/** The repository root, against which SST's handler paths are written. */
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

/**
 * Imports a handler as SST names it (`packages/functions/src/normalizer.handler`, relative to the
 * repository root); each `instance` gets a module instance of its own (module state included).
 */
export async function loadHandler(spec: string, instance = "default"): Promise<LambdaStreamHandler> {
  const dot = spec.lastIndexOf(".");
  const modulePath = spec.slice(0, dot);
  const exportName = spec.slice(dot + 1);
  const file = [".ts", ".js", ".mjs"].map((ext) => join(ROOT, modulePath + ext)).find((f) => existsSync(f));
  if (!file) throw new Error(`handler module ${modulePath} not found under ${ROOT}`);
  const handler = (await import(`${pathToFileURL(file).href}?instance=${encodeURIComponent(instance)}`))[exportName];
  if (typeof handler !== "function") throw new Error(`${file} exports no function ${exportName}`);
  return handler as LambdaStreamHandler;
}

/** A Lambda context as the runtime builds it; the deadline makes `getRemainingTimeInMillis` real. */
function lambdaContext(functionName: string, streamArn: string, timeoutMs: number): Context {
  const [, , , region = "local", account = "000000000000"] = streamArn.split(":");
  const deadline = Date.now() + timeoutMs;
  const noop = () => undefined;
  const day = new Date().toISOString().slice(0, 10).replaceAll("-", "/");
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${region}:${account}:function:${functionName}`,
    memoryLimitInMB: "1024",
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${day}/[$LATEST]${randomBytes(16).toString("hex")}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: noop,
    fail: noop,
    succeed: noop,
  };
}

/**
 * The function of one mapping, like the execution environment that serves a shard: its invocations
 * are serialized, and mappings run concurrently (Lambda invokes once per shard at a time). Each
 * mapping imports its own instance of the handler module, because handler modules keep
 * per-invocation state at module level (Powertools), which Lambda never shares between concurrent
 * invocations and neither does the runner.
 */
export class FunctionInvoker {
  private queue: Promise<unknown> = Promise.resolve();
  private handler?: LambdaStreamHandler;
  readonly stats: SubscriberStats = { invocations: 0, recordsDelivered: 0, failedInvocations: 0, recordsSunk: 0 };

  constructor(
    readonly subscription: Subscription,
    private readonly source: () => Promise<LambdaStreamHandler>,
    private readonly timeoutMs: number,
  ) {}

  /** Imports the handler module before anything is read: a wiring error must stop the runner, not sink records. */
  async load(): Promise<void> {
    this.handler ??= await this.source();
  }

  invoke(records: DynamoDBRecord[], streamArn: string): Promise<InvocationResult> {
    const run = this.queue.then(() => this.invokeNow(records, streamArn));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async invokeNow(records: DynamoDBRecord[], streamArn: string): Promise<InvocationResult> {
    this.stats.invocations++;
    this.stats.recordsDelivered += records.length;
    const result = await this.call(records, streamArn);
    if (result.kind !== "ok") this.stats.failedInvocations++;
    return result;
  }

  private async call(records: DynamoDBRecord[], streamArn: string): Promise<InvocationResult> {
    let response: Awaited<ReturnType<LambdaStreamHandler>>;
    try {
      const handler = this.handler!;
      const context = lambdaContext(`sitelogix-local-${this.subscription.name}`, streamArn, this.timeoutMs);
      const call = Promise.resolve().then(() => handler({ Records: records }, context));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Task timed out after ${(this.timeoutMs / 1000).toFixed(2)} seconds`)),
          this.timeoutMs,
        );
      });
      try {
        response = await Promise.race([call, timeout]);
      } finally {
        clearTimeout(timer);
        // Lambda would end the environment; here the next invocation waits until this one is over.
        await call.catch(() => undefined);
      }
    } catch (err) {
      return { kind: "error", error: failureText(err) };
    }
    const failures = response?.batchItemFailures;
    if (!failures || failures.length === 0) return { kind: "ok" };
    // As Lambda: an empty, null or unknown itemIdentifier makes the whole batch a failure.
    const index = new Map(records.map((r, i) => [r.dynamodb?.SequenceNumber, i]));
    const failed = failures.map((f) =>
      typeof f?.itemIdentifier === "string" ? index.get(f.itemIdentifier) : undefined,
    );
    if (failed.some((i) => i === undefined))
      return {
        kind: "error",
        error: "invalid batchItemFailures: an itemIdentifier is not a sequence number of the batch",
      };
    const failedIndex = Math.min(...(failed as number[]));
    return {
      kind: "partial",
      failedIndex,
      error: `partial batch failure: ${failures.length} of ${records.length} records failed`,
    };
  }
}
