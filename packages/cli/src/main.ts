import { buildProgram } from "./program.js";
import { reportFatal } from "./output.js";

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  reportFatal(err);
}
