#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx sitelogix-migrate` works right after `npm install`.
import { register } from "tsx/esm/api";

// Node.js 20 is past end of life: say so once, in one line of our own, instead of the AWS SDK's
// multi-line warning from every client (docs/cli.md: Node.js versions). Processes this one starts inherit
// the variables and stay quiet.
if (process.versions.node.split(".")[0] === "20") {
  if (!process.env.SITELOGIX_NODE_NOTICE_SHOWN) {
    process.stderr.write(
      `sitelogix-migrate: Node.js ${process.versions.node} is past end of life (Node 20: 2026-04-30) ` +
        "and AWS SDK releases after early January 2027 need Node.js 22; use Node.js 22 or 24\n",
    );
  }
  process.env.SITELOGIX_NODE_NOTICE_SHOWN = "1";
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
}
register();
await import("../src/main.ts");
