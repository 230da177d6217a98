// Imported first by bench/run.ts: the SDK warns at import time that its Node 20 support ends in 2027
// (the README says so once), as the CLI's bin and vitest.config.ts also silence it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
