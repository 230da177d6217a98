#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx sitelogix-migrate` works right after `npm install`.
import { register } from "tsx/esm/api";

// The SDK warns in every process that its Node 20 support ends in 2027; the README says so once.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
register();
await import("../src/main.ts");
