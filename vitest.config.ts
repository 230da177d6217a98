import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The SDK warns in every process that its Node 20 support ends in 2027; the README says so once.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

// The infra tests run SST's platform sources (.sst/platform, installed by `npm run sst:platform`):
// they and the tests must share the platform's one copy of the Pulumi runtime.
const platformModule = (name: string) => fileURLToPath(new URL(`./.sst/platform/node_modules/${name}`, import.meta.url));

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
