// Installs SST's platform types (.sst/platform) without the Pulumi engine binary, which cannot be
// downloaded offline and is only needed by `sst deploy`. Idempotent; `npm run typecheck` calls it.
import { spawnSync } from "node:child_process";

const result = spawnSync("npx", ["--no-install", "sst", "install", "--stage", "dev"], {
  stdio: ["ignore", "inherit", "inherit"],
  env: {
    ...process.env,
    SST_TELEMETRY_DISABLED: "1",
    SST_SKIP_DEPENDENCY_CHECK: "1",
    SST_NO_BUN: "1",
  },
});
if (result.status !== 0) {
  console.error("sst install failed: the SST platform types could not be installed (see above).");
  process.exit(result.status ?? 1);
}
