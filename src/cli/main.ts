// The `gptc` command line.
import { Command } from "commander";
import { registerCheck } from "./check.js";
import { registerCompile } from "./compile.js";
import { registerVerify } from "./verify.js";
import { registerTrain } from "./train.js";
import { registerGenerate } from "./generate.js";
import { registerFmt } from "./fmt.js";
import { registerGraph } from "./graph.js";
import { registerPrepare } from "./prepare.js";
import { registerExport } from "./export.js";
import { reportAndExit } from "./errors.js";

// `gptc ... | head` closes stdout early: that is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

const program = new Command()
  .name("gptc")
  .description("A compiler for neural-network models: model spec -> tensor IR -> gpu.js kernels")
  .version("0.1.0")
  .showHelpAfterError();

registerCheck(program);
registerFmt(program);
registerCompile(program);
registerVerify(program);
registerGraph(program);
registerPrepare(program);
registerTrain(program);
registerGenerate(program);
registerExport(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  reportAndExit(e);
}
