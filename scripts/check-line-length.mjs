// Lists the lines over 120 characters in the git-tracked .ts/.mjs/.js/.cjs files (or only in the files
// named as arguments) as `file:line: length`, and exits 1 if there are any. Biome's formatter keeps code
// within 120 but cannot wrap long strings or comments; this check catches those.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const MAX = 120;
const SOURCE = /\.(ts|mjs|js|cjs)$/;

const tracked = () =>
  execFileSync("git", ["ls-files", "-z"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })
    .split("\0")
    .filter(Boolean);

const args = process.argv.slice(2);
const files = (args.length > 0 ? args : tracked()).filter((f) => SOURCE.test(f));

let found = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    continue; // deleted in the working tree but still tracked
  }
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    // Count characters (code points), not UTF-16 units, so "—" counts once.
    const length = [...lines[i]].length;
    if (length > MAX) {
      console.log(`${file}:${i + 1}: ${length}`);
      found++;
    }
  }
}
if (found > 0) {
  console.error(`${found} line(s) over ${MAX} characters`);
  process.exit(1);
}
