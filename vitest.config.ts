import { defineConfig } from "vitest/config";

// The SDK warns in every process that its Node 20 support ends in 2027; the README says so once.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Processes, not threads: suites spawn the CLI and send signals.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
