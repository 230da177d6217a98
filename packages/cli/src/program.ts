import { Command } from "commander";
import { registerAudit } from "./commands/audit.js";
import { registerCockpit } from "./commands/cockpit.js";
import { registerLocal } from "./commands/local.js";
import { registerSweep } from "./commands/sweep.js";
import { registerStream } from "./commands/stream.js";
import { registerTables } from "./commands/tables.js";
import { registerVerify } from "./commands/verify.js";

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
  registerTables(program);
  registerAudit(program);
  registerCockpit(program);
  registerSweep(program);
  registerVerify(program);
  registerStream(program);
  registerLocal(program);
  return program;
}
