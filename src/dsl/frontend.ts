// The front end in one call: load a model file and its imports, parse, and run
// the static checks. Returns the program, or the diagnostics that stop it.
import { DiagnosticBag } from "./diagnostics.js";
import { checkProgram } from "./check.js";
import { loadProgram, type Program, type SpecReader } from "./load.js";
import { SourceSet } from "./source.js";

export interface FrontendResult {
  program?: Program;
  diagnostics: DiagnosticBag;
  sources: SourceSet;
}

/**
 * `text` stands for the file's contents when given (a spec built in memory);
 * `read` reads the files it imports (the file system by default).
 */
export function frontend(path: string, text?: string, read?: SpecReader): FrontendResult {
  const diagnostics = new DiagnosticBag();
  const sources = new SourceSet();
  const program = loadProgram(path, diagnostics, sources, text, read);
  if (!diagnostics.hasErrors) {
    try {
      checkProgram(program, diagnostics);
    } catch (err) {
      // The checker recurses once per nesting level of an expression: a 100k-character
      // `x + x + ...` is 25,000 levels deep, too deep for the stack.
      if (!(err instanceof RangeError && /call stack/i.test(err.message))) throw err;
      diagnostics.error(
        `${program.root.file} nests too deeply to be checked (an expression of thousands of operators)`,
        undefined,
        "split the expression into several assignments",
      );
    }
  }
  return { program: diagnostics.hasErrors ? undefined : program, diagnostics, sources };
}
