// Source files and positions. Every AST node and every IR value carries a Span so
// that any error, however late it is found, can point at the text that caused it.

/** A range of text in a source file: where a diagnostic points. */
export interface Span {
  /** The file as messages name it: relative to the working directory when inside it. */
  file: string;
  /** 1-based line of the first character. */
  line: number;
  /** 1-based column of the first character. */
  col: number;
  /** 0-based character offset of the first character in the file text. */
  start: number;
  /** 0-based character offset just past the last character (exclusive). */
  end: number;
}

/** The texts of every file read so far, so diagnostics can quote them. */
export class SourceSet {
  private readonly texts = new Map<string, string>();

  /** Records `text` as the content of `file` (named as spans name it), replacing any earlier. */
  add(file: string, text: string): void {
    this.texts.set(file, text);
  }

  /** The text recorded for `file`, or undefined if none was. */
  get(file: string): string | undefined {
    return this.texts.get(file);
  }
}
