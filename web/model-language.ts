// Syntax highlighting of the .model language for CodeMirror: a StreamLanguage
// whose keywords are the lexer's own (src/dsl/lexer.ts: every keyword token
// yields to Identifier for longer words), so the two cannot drift apart.
import { StreamLanguage, type StringStream } from "@codemirror/language";
import { allTokens } from "../src/dsl/lexer.js";

const keywords = new Set(
  allTokens
    .filter((t) => (t as { LONGER_ALT?: unknown }).LONGER_ALT)
    .map((t) => t.name.toLowerCase()),
);
const types = new Set(["float", "int", "bool"]);

export const modelLanguage = StreamLanguage.define<{ inComment: boolean }>({
  name: "gptc-model",
  startState: () => ({ inComment: false }),
  token(stream: StringStream, state) {
    if (state.inComment) {
      if (stream.skipTo("*/")) {
        stream.match("*/");
        state.inComment = false;
      } else stream.skipToEnd();
      return "comment";
    }
    if (stream.eatSpace()) return null;
    if (stream.match("//")) {
      stream.skipToEnd();
      return "comment";
    }
    if (stream.match("/*")) {
      state.inComment = true;
      return "comment";
    }
    if (stream.match(/^"(?:[^"\\]|\\.)*"?/)) return "string";
    if (stream.match(/^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/)) return "number";
    const word = stream.match(/^[A-Za-z_][A-Za-z0-9_]*/) as RegExpMatchArray | null;
    if (word) {
      const w = word[0];
      if (types.has(w)) return "typeName";
      if (keywords.has(w)) return "keyword";
      return stream.peek() === "(" ? "function" : "variableName";
    }
    if (stream.match(/^(\*\*|<=|>=|==|!=|[-+*/@<>=])/)) return "operator";
    stream.next();
    return "punctuation";
  },
  languageData: { commentTokens: { line: "//", block: { open: "/*", close: "*/" } } },
});
