import { setMaxListeners } from "node:events";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { integerAtLeast } from "../args.js";
import { rehearse } from "../local/rehearsal.js";
import { renderMarkdown, renderTable, reportPassed } from "../local/report.js";
import { EXIT, say } from "../output.js";
import { onStopSignals, signalExitCode } from "../signals.js";

export function registerLocal(program: Command): void {
  program
    .command("local")
    .description(
      "rehearse the whole migration on an embedded DynamoDB Local (needs Java 17+): " +
        "legacy tables with sample data, expand\n" +
        "(streams, normalizer, audit logger) under live application traffic, sweep, verify, " +
        "the application's fix of the\n" +
        "violations, sweep and verify again, the gated index phase, index and access-pattern checks, " +
        "contract, audit trail.\n" +
        "Prints a table of phases and writes a Markdown report. Exit 0 when every check passed, 1 otherwise.",
    )
    .addOption(
      new Option("--items <n>", "sample items over the four legacy tables")
        .default(3000)
        .argParser(integerAtLeast(100)),
    )
    .addOption(
      new Option("--port <port>", "port for DynamoDB Local (default: a free one)").argParser(integerAtLeast(1)),
    )
    .addOption(
      new Option("--traffic <writes>", "application writes per second during the migration")
        .default(20)
        .argParser(integerAtLeast(0)),
    )
    .option("--report <file>", "where to write the Markdown report", "sitelogix-rehearsal.md")
    .option(
      "--no-fix",
      "leave the planted violations unfixed: the gate stays red and the index phase is refused " +
        "(a rehearsal of a refusal)",
    )
    .option(
      "--keep-running",
      "leave DynamoDB Local and the stream runner up afterwards and print how to point the CLI at them " +
        "(Ctrl-C stops them)",
    )
    .action(
      async (opts: {
        items: number;
        port?: number;
        traffic: number;
        report: string;
        fix: boolean;
        keepRunning?: boolean;
      }) => {
        const stop = new AbortController();
        // Every scan segment and write in flight listens to it.
        setMaxListeners(0, stop.signal);
        // DynamoDB Local is killed on exit either way.
        const signals = onStopSignals("stopping the rehearsal and DynamoDB Local", () => stop.abort());
        const rehearsal = await rehearse({
          items: opts.items,
          ...(opts.port !== undefined ? { port: opts.port } : {}),
          fix: opts.fix,
          trafficRate: opts.traffic,
          signal: stop.signal,
          log: say,
        });
        // Ctrl-C after the report (the way to end --keep-running) does not change the result.
        const interrupted = signals.received;
        try {
          const path = resolve(opts.report);
          writeFileSync(path, renderMarkdown(rehearsal.report));
          process.stdout.write(`\n${renderTable(rehearsal.report)}\n\nreport: ${path}\n`);
          if (opts.keepRunning && rehearsal.engine && !interrupted) {
            const env = Object.entries(rehearsal.engine.env).map(([k, v]) => `export ${k}=${v}`);
            say(
              [
                "",
                "DynamoDB Local keeps running with the rehearsal's tables. In another shell:",
                ...env.map((l) => `  ${l}`),
                "  npx sitelogix-migrate status",
                "Ctrl-C here stops it.",
              ].join("\n"),
            );
            await new Promise<void>((r) => stop.signal.addEventListener("abort", () => r(), { once: true }));
          }
        } finally {
          await rehearsal.shutdown();
          signals.dispose();
        }
        process.exitCode = interrupted
          ? signalExitCode(interrupted)
          : reportPassed(rehearsal.report)
            ? EXIT.ok
            : EXIT.error;
      },
    );
}
