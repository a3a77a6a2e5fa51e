// The front end in one call: load a model file and its imports, parse, and run
// the static checks. Returns the program, or the diagnostics that stop it.
import { DiagnosticBag } from "./diagnostics.js";
import { checkProgram } from "./check.js";
import { loadProgram, type Program } from "./load.js";
import { SourceSet } from "./source.js";

export interface FrontendResult {
  program?: Program;
  diagnostics: DiagnosticBag;
  sources: SourceSet;
}

export function frontend(path: string): FrontendResult {
  const diagnostics = new DiagnosticBag();
  const sources = new SourceSet();
  const program = loadProgram(path, diagnostics, sources);
  if (!diagnostics.hasErrors) checkProgram(program, diagnostics);
  return { program: diagnostics.hasErrors ? undefined : program, diagnostics, sources };
}
