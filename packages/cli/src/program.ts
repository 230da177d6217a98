import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { Command } from "commander";
import { migratorLink, regionProblem } from "@sitelogix/core";
import { registerAudit } from "./commands/audit.js";
import { registerCockpit } from "./commands/cockpit.js";
import { registerLocal } from "./commands/local.js";
import { registerRollback } from "./commands/rollback.js";
import { registerSweep } from "./commands/sweep.js";
import { registerStream } from "./commands/stream.js";
import { registerTables } from "./commands/tables.js";
import { registerVerify } from "./commands/verify.js";
import { CliError } from "./output.js";

/** The region the SDK resolves (AWS_REGION, else the profile's); undefined when none. */
async function sdkRegion(): Promise<string | undefined> {
  const client = new DynamoDBClient({});
  try {
    return await client.config.region();
  } catch {
    return undefined;
  } finally {
    client.destroy();
  }
}

export function buildProgram(): Command {
  const program = new Command("sitelogix-migrate")
    .description(
      "Online migration of the SiteLogix DynamoDB tables: stream normalizer, audit trail, sweep, index gate.\n" +
        "Endpoints and region come from the AWS SDK's variables (AWS_ENDPOINT_URL_DYNAMODB, AWS_REGION, ...);\n" +
        "table names from SST links under `sst shell`, else sitelogix-* (prefix with SITELOGIX_TABLE_PREFIX).",
    )
    .showHelpAfterError()
    .exitOverride((err) => {
      // Help and version are successes; any other parse error is a usage error.
      process.exit(err.exitCode === 0 ? 0 : 2);
    });
  // Under `sst shell` a command acts only in the region the stage is pinned to (`local` runs its own engine).
  program.hook("preAction", async (_program, action) => {
    if (action.name() === "local" || !migratorLink()) return;
    const problem = regionProblem(await sdkRegion());
    if (problem) throw new CliError(problem);
  });
  registerTables(program);
  registerAudit(program);
  registerCockpit(program);
  registerSweep(program);
  registerVerify(program);
  registerStream(program);
  registerRollback(program);
  registerLocal(program);
  return program;
}
