// Runs the real sst.config.ts the way the SST CLI does — platform shim globals, `$app` from the
// config's own app(), the platform's run() inside a Pulumi stack — against Pulumi's mocks instead
// of AWS, and records every resource with its resolved inputs and its resource options.
//
// What the CLI would otherwise provide:
//   - an RPC server (SST_SERVER) answering Provider.Aws.Bootstrap and Runtime.Build; the build
//     really bundles each handler with esbuild, so a wrong handler path fails the program;
//   - the provider calls the platform makes (partition, region, caller identity, policy documents).
// What this cannot show: whether an imported table reconciles with the live one (`sst diff`).
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { build } from "esbuild";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PLATFORM = join(ROOT, ".sst/platform");
const ACCOUNT = "123456789012";
const REGION = "us-east-1";

export interface RecordedResource {
  type: string;
  name: string;
  /** Inputs as the provider would receive them (Outputs resolved). */
  inputs: Record<string, any>;
  /** What the mocked provider answered: the inputs plus name, arn, streamArn, url. */
  outputs: Record<string, any>;
  /** The import ID, when the resource is adopted rather than created. */
  importId?: string;
  protect?: boolean;
  retainOnDelete?: boolean;
  ignoreChanges?: string[];
  customTimeouts?: { create?: string; update?: string; delete?: string };
}

export interface LinkedResource {
  name: string;
  type: string;
  properties: Record<string, unknown>;
}

export interface ProgramRun {
  /** What sst.config.ts's app() returned for the stage (name, removal, protect, providers). */
  app: Record<string, any>;
  /** The stack outputs, resolved (as the engine awaits them before a deploy completes). */
  outputs: Record<string, any>;
  resources: RecordedResource[];
  /** Top-level linkable resources: what `sst shell` exposes and what sst-env.d.ts types. */
  links: LinkedResource[];
  /** What Runtime.Build was asked to build, by function: the handler and the links it bundles. */
  builds: Map<string, BuildRequest>;
  /** What the program threw (a refused deploy), if anything: the CLI would print it and stop. */
  error?: Error;
}

export interface BuildRequest {
  handler: string;
  /** Link name to its properties: what `Resource.<name>` holds inside the function. */
  links: Record<string, Record<string, unknown>>;
}

interface Workspace {
  dir: string;
  server: Server;
  builds: Map<string, BuildRequest>;
}

let workspace: Promise<Workspace> | undefined;
const bundles = new Map<string, Promise<{ out: string; handler: string; errors: string[] }>>();

/** Bundles a handler (`path/to/module.export`) once per process, as Runtime.Build would. */
function bundle(dir: string, handler: string) {
  let result = bundles.get(handler);
  if (!result) {
    const cut = handler.lastIndexOf(".");
    const module = handler.slice(0, cut);
    const exportName = handler.slice(cut + 1);
    const out = join(dir, "bundles", module.replace(/[^a-zA-Z0-9]/g, "-"));
    result = build({
      entryPoints: [join(ROOT, `${module}.ts`)],
      outfile: join(out, "index.mjs"),
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      logLevel: "silent",
    }).then(
      () => ({ out, handler: `index.${exportName}`, errors: [] }),
      (err: Error) => ({ out, handler, errors: [`${handler}: ${err.message}`] }),
    );
    bundles.set(handler, result);
  }
  return result;
}

/**
 * The platform takes a link's type from its URN. Pulumi's mock monitor qualifies a top-level
 * resource's URN type with the stack's (`pulumi:pulumi:Stack$sst:sst:Linkable`); the engine does not.
 */
function unqualifiedLinks(links: Record<string, Record<string, unknown>>) {
  return Object.fromEntries(
    Object.entries(links).map(([name, properties]) => [
      name,
      { ...properties, type: String(properties.type).replace(/^pulumi\.pulumi\.Stack\$/, "") },
    ]),
  );
}

async function startWorkspace(): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), "sitelogix-infra-"));
  const builds = new Map<string, BuildRequest>();
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", async () => {
      const { method, params } = JSON.parse(body) as { method: string; params: [any] };
      const reply = (result: unknown, error?: string) => {
        // No keep-alive: a socket reused just as the server drops it fails the platform's RPC call.
        res.writeHead(200, { "content-type": "application/json", connection: "close" });
        res.end(JSON.stringify({ result, error: error ?? null }));
      };
      if (method === "Provider.Aws.Bootstrap") {
        return reply({
          asset: "sst-asset-test",
          assetEcrRegistryId: ACCOUNT,
          assetEcrUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/sst-asset`,
          state: "sst-state-test",
        });
      }
      if (method === "Runtime.Build") {
        builds.set(params[0].functionID, { handler: params[0].handler, links: unqualifiedLinks(params[0].links) });
        const result = await bundle(dir, params[0].handler);
        return reply({ ...result, sourcemaps: [] });
      }
      reply(null, `rpc: can't find method ${method}`);
    });
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("RPC server has no port");
  process.env.SST_SERVER = `http://127.0.0.1:${address.port}`;
  return { dir, server, builds };
}

function arn(service: string, resource: string) {
  return `arn:aws:${service}:${REGION}:${ACCOUNT}:${resource}`;
}

/** Provider outputs the platform reads, on top of the echoed inputs. */
function providerOutputs(type: string, name: string, inputs: Record<string, any>): Record<string, unknown> {
  const physical = inputs.name ?? `${name}-mock`;
  switch (type) {
    case "aws:dynamodb/table:Table": {
      const tableArn = arn("dynamodb", `table/${physical}`);
      return {
        name: physical,
        arn: tableArn,
        ...(inputs.streamEnabled ? { streamArn: `${tableArn}/stream/2025-01-01T00:00:00.000` } : {}),
      };
    }
    case "aws:sqs/queue:Queue":
      return {
        name: physical,
        arn: arn("sqs", physical),
        url: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${physical}`,
      };
    case "aws:lambda/function:Function": {
      const fnArn = arn("lambda", `function:${physical}`);
      return {
        name: physical,
        arn: fnArn,
        qualifiedArn: `${fnArn}:$LATEST`,
        invokeArn: `arn:aws:apigateway:${REGION}:lambda:path/2015-03-31/functions/${fnArn}/invocations`,
      };
    }
    case "aws:sfn/stateMachine:StateMachine":
      return { name: physical, arn: arn("states", `stateMachine:${physical}`) };
    case "aws:cloudwatch/logGroup:LogGroup":
      return { name: physical, arn: arn("logs", `log-group:${physical}`) };
    case "aws:iam/role:Role":
      return { name: physical, arn: `arn:aws:iam::${ACCOUNT}:role/${physical}` };
    case "aws:kms/key:Key":
      return { keyId: `${name}-key-id`, arn: arn("kms", `key/${name}-key-id`) };
    case "aws:s3/bucket:Bucket": {
      const bucket = inputs.bucket ?? `${inputs.bucketPrefix ?? name}mock`;
      return { bucket, arn: `arn:aws:s3:::${bucket}` };
    }
    case "random:index/randomBytes:RandomBytes":
      return { base64: Buffer.alloc(32, 7).toString("base64"), hex: Buffer.alloc(32, 7).toString("hex") };
    default:
      return { name: physical, arn: arn("mock", `${type}/${physical}`) };
  }
}

/** `aws:iam/getPolicyDocument`: the statements rendered as the policy JSON IAM would get. */
function policyDocument(inputs: { statements?: any[] }) {
  const statements = (inputs.statements ?? []).map((s) => ({
    Effect: s.effect ?? "Allow",
    Action: s.actions,
    Resource: s.resources,
    ...(s.principals ? { Principal: s.principals } : {}),
    ...(s.conditions ? { Condition: s.conditions } : {}),
  }));
  return { ...inputs, json: JSON.stringify({ Version: "2012-10-17", Statement: statements }) };
}

/**
 * Waits until every declared resource is registered. Resources the platform creates inside
 * `apply` (functions, event source mappings) wait on RPC calls that Pulumi does not count as
 * outstanding, so waitForRPCs() alone can return before they exist.
 */
async function settled(recorded: readonly { resource: pulumi.Resource }[], label: string) {
  const deadline = Date.now() + 120_000;
  let count = -1;
  // `recorded` grows while we wait: resources declared in an `apply` arrive late.
  while (count !== recorded.length) {
    count = recorded.length;
    const pending = recorded.map((r) => resolved(r.resource.urn));
    const timeout = new Promise<"timeout">((done) =>
      setTimeout(() => done("timeout"), Math.max(0, deadline - Date.now())).unref(),
    );
    if ((await Promise.race([Promise.all(pending), timeout])) === "timeout") {
      throw new Error(
        `program for ${label} did not finish: ${recorded.length} resources declared, some never registered`,
      );
    }
    // Internal in the typings, exported at runtime: what the CLI's language host awaits at the end.
    await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
  }
}

const resolved = <T>(value: pulumi.Input<T>) =>
  new Promise<pulumi.Unwrap<T>>((done) => pulumi.output(value).apply(done));

/** Runs sst.config.ts for `stage` under Pulumi's mocks, as `sst deploy --stage <stage>` would. */
export async function runProgram(stage: string): Promise<ProgramRun> {
  // Pulumi captures a stack trace for every resource and output (source positions); formatting
  // them — source-mapped by vite-node — was most of this suite's time. No traces while it runs.
  const { prepareStackTrace, stackTraceLimit } = Error;
  Error.prepareStackTrace = undefined;
  Error.stackTraceLimit = 0;
  try {
    return await runProgramWithPlainStacks(stage);
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
}

async function runProgramWithPlainStacks(stage: string): Promise<ProgramRun> {
  workspace ??= startWorkspace();
  const { dir, builds } = await workspace;
  builds.clear();
  const g = globalThis as any;
  // The shim is plain JavaScript without typings: the globals sst.config.ts and the platform use.
  Object.assign(g, await import(join(PLATFORM, "src/shim/run.js")));
  const config = (await import("../../sst.config.ts")).default as {
    app(input: { stage: string }): any;
    run(): Promise<any>;
  };
  const app = await config.app({ stage });
  // Some platform modules read $app when they are loaded: set it before loading them.
  g.$app = {
    name: app.name,
    stage,
    removal: app.removal ?? "retain",
    providers: app.providers ?? {},
    protect: app.protect ?? false,
  };
  g.$dev = false;
  g.$cli = {
    command: "deploy",
    rpc: process.env.SST_SERVER,
    paths: { home: dir, root: ROOT, work: dir, platform: PLATFORM },
    state: { version: {} },
  };
  g.aws = await import("@pulumi/aws");
  g.sst = await import("../../.sst/platform/src/components/index.js");

  const inputsOf = new Map<string, Record<string, any>>();
  const providerState = new Map<string, Record<string, any>>();
  const importIds = new Map<string, string>();
  const recorded: { type: string; name: string; opts: pulumi.ResourceOptions & Record<string, any>; resource: any }[] =
    [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const inputs = args.inputs as Record<string, any>;
        inputsOf.set(`${args.type}::${args.name}`, inputs);
        if (args.id) importIds.set(`${args.type}::${args.name}`, args.id);
        const state = { ...inputs, ...providerOutputs(args.type, args.name, inputs) };
        providerState.set(`${args.type}::${args.name}`, state);
        return { id: args.id || `${args.name}-id`, state };
      },
      call(args) {
        switch (args.token) {
          case "aws:index/getPartition:getPartition":
            return { id: "aws", partition: "aws", dnsSuffix: "amazonaws.com" };
          case "aws:index/getRegion:getRegion":
            return { id: REGION, name: REGION, region: REGION };
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return {
              id: ACCOUNT,
              accountId: ACCOUNT,
              arn: arn("iam", "user/deployer").replace(`:${REGION}:`, "::"),
              userId: "deployer",
            };
          case "aws:iam/getPolicyDocument:getPolicyDocument":
            return policyDocument(args.inputs);
          default:
            throw new Error(`unmocked provider call ${args.token}`);
        }
      },
    },
    app.name,
    stage,
    false,
  );
  const { run } = await import("../../.sst/platform/src/auto/run.ts");
  let error: Error | undefined;
  const outputs = await pulumi.runtime.runInPulumiStack(() =>
    run(async () => {
      // Registered after the platform's own transformations, so it sees the final options.
      pulumi.runtime.registerStackTransformation((args) => {
        recorded.push({ type: args.type, name: args.name, opts: args.opts as any, resource: args.resource });
        return undefined;
      });
      try {
        return await config.run();
      } catch (err) {
        error = err as Error;
        return {};
      }
    }),
  );
  await settled(recorded, stage);

  const resources: RecordedResource[] = recorded.map(({ type, name, opts }) => ({
    type,
    name,
    inputs: inputsOf.get(`${type}::${name}`) ?? {},
    outputs: providerState.get(`${type}::${name}`) ?? {},
    importId: importIds.get(`${type}::${name}`) ?? (opts.import as string | undefined),
    protect: opts.protect,
    retainOnDelete: opts.retainOnDelete,
    ignoreChanges: opts.ignoreChanges,
    customTimeouts: opts.customTimeouts as RecordedResource["customTimeouts"],
  }));
  const links: LinkedResource[] = [];
  for (const { type, name, opts, resource } of recorded) {
    if (opts.parent || typeof resource?.getSSTLink !== "function") continue;
    const properties = (await resolved(resource.getSSTLink().properties)) as Record<string, unknown>;
    links.push({ name, type: type.replaceAll(":", "."), properties });
  }
  const resolvedOutputs = ((await resolved(outputs ?? {})) ?? {}) as Record<string, any>;
  return { app, outputs: resolvedOutputs, resources, links, builds: new Map(builds), ...(error ? { error } : {}) };
}

/** Stops the RPC server and removes the work directory (bundles, zips). */
export async function disposeHarness(): Promise<void> {
  if (!workspace) return;
  const { dir, server } = await workspace;
  workspace = undefined;
  bundles.clear();
  await new Promise((done) => server.close(done));
  await rm(dir, { recursive: true, force: true });
}
