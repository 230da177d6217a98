import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// On Node 20 the SDK warns in every process that its support ends in 2027, and the CLI says so in a
// line of its own (README: Node.js versions); neither belongs in the output the suites check.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
process.env.SITELOGIX_NODE_NOTICE_SHOWN ??= "1";

// The infra tests run SST's platform sources (.sst/platform, installed by `npm run sst:platform`):
// they and the tests must share the platform's one copy of the Pulumi runtime.
const platformModule = (name: string) =>
  fileURLToPath(new URL(`./.sst/platform/node_modules/${name}`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      "@pulumi/pulumi": platformModule("@pulumi/pulumi"),
      "@pulumi/aws": platformModule("@pulumi/aws"),
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Processes, not threads: suites spawn the CLI and send signals.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
