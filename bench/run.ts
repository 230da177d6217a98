// `npm run bench [-- options]`: starts one DynamoDB Local (in memory) and runs the benchmark suites
// on it, printing a Markdown report for BENCHMARKS.md on stdout (progress on stderr). A suite is a
// module exporting a BenchSuite; add it to SUITES.
import "./sdk-env.js";
import { parseArgs } from "node:util";
import { startDynamoDbLocal } from "@sitelogix/testkit";
import { auditSuite } from "./audit.js";
import { machine, type BenchOption, type BenchSuite, type OptionValue } from "./lib.js";
import { normalizerSuite } from "./normalizer.js";
import { sweepSuite } from "./sweep.js";
import { workersSuite } from "./workers.js";

const SUITES: BenchSuite[] = [sweepSuite, workersSuite, normalizerSuite, auditSuite];

const GLOBAL = {
  suite: {
    type: "string",
    multiple: true,
    help: `suites to run (default: all): ${SUITES.map((s) => s.name).join(", ")}`,
  },
  quick: {
    type: "boolean",
    help: "small sizes and one run: validates the harness in a few minutes (figures are not comparable)",
  },
  json: { type: "boolean", help: "print the raw figures as JSON instead of Markdown" },
  help: { type: "boolean", help: "this text" },
} as const;

const suiteOption = (suite: BenchSuite, name: string) => `${suite.name}-${name}`;

function usage(): string {
  const lines = ["usage: npm run bench -- [options]", "", "options:"];
  for (const [name, o] of Object.entries(GLOBAL)) lines.push(`  --${name.padEnd(38)} ${o.help}`);
  for (const suite of SUITES) {
    lines.push("", `suite ${suite.name}: ${suite.description}`);
    for (const [name, o] of Object.entries(suite.options)) {
      const quick = o.quick !== undefined ? `, --quick: ${o.quick}` : "";
      const flag = `${suiteOption(suite, name)}${o.type === "string" ? " <value>" : ""}`;
      lines.push(`  --${flag.padEnd(38)} ${o.help} (default: ${o.default}${quick})`);
    }
  }
  return lines.join("\n");
}

const parsed = parseArgs({
  options: {
    ...Object.fromEntries(
      Object.entries(GLOBAL).map(([name, o]) => [
        name,
        { type: o.type, ...("multiple" in o ? { multiple: true } : {}) },
      ]),
    ),
    ...Object.fromEntries(
      SUITES.flatMap((s) =>
        Object.entries(s.options).map(([name, o]: [string, BenchOption]) => [suiteOption(s, name), { type: o.type }]),
      ),
    ),
  },
  allowPositionals: false,
});
const values = parsed.values as Record<string, OptionValue | string[]>;
if (values.help) {
  process.stdout.write(`${usage()}\n`);
  process.exit(0);
}
const wanted = (values.suite as string[] | undefined) ?? SUITES.map((s) => s.name);
const unknown = wanted.filter((w) => !SUITES.some((s) => s.name === w));
if (unknown.length) {
  process.stderr.write(`unknown suite(s): ${unknown.join(", ")}\n\n${usage()}\n`);
  process.exit(2);
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const before = machine();
const local = await startDynamoDbLocal();
// Clients (and the CLI the RSS measurement spawns) find the endpoint, region and credentials here.
Object.assign(process.env, local.env);
const results: { suite: string; markdown: string; data: unknown }[] = [];
try {
  for (const suite of SUITES.filter((s) => wanted.includes(s.name))) {
    const options = Object.fromEntries(
      Object.entries(suite.options).map(([name, o]) => [
        name,
        (values[suiteOption(suite, name)] as OptionValue) ??
          (values.quick && o.quick !== undefined ? o.quick : o.default),
      ]),
    );
    log(`== ${suite.name} ${JSON.stringify(options)}`);
    const started = performance.now();
    const { markdown, data } = await suite.run({ local, log }, options);
    log(`== ${suite.name} done in ${Math.round((performance.now() - started) / 1000)} s`);
    results.push({ suite: suite.name, markdown, data });
  }
} finally {
  await local.stop();
}

const after = machine();
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
if (values.json) {
  process.stdout.write(`${JSON.stringify({ command, machine: before, loadAfter: after.load, results }, null, 2)}\n`);
} else {
  const header = [
    `Command: \`${command}\` (${new Date().toISOString()})`,
    "",
    `Machine: ${before.cpu}, ${before.memory}, Node ${before.node}, ${before.java}; DynamoDB Local in memory.`,
    `Load average (1/5/15 min): ${before.load} before, ${after.load} after.`,
  ].join("\n");
  process.stdout.write(`${[header, ...results.map((r) => r.markdown)].join("\n\n")}\n`);
}
