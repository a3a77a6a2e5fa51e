// Source files and positions. Every AST node and every IR value carries a Span so
// that any error, however late it is found, can point at the text that caused it.

export interface Span {
  file: string;
  /** 1-based line and column of the first character. */
  line: number;
  col: number;
  /** 0-based character offsets into the file text, end exclusive. */
  start: number;
  end: number;
}

/** The texts of every file read so far, so diagnostics can quote them. */
export class SourceSet {
  private readonly texts = new Map<string, string>();

  add(file: string, text: string): void {
    this.texts.set(file, text);
  }

  get(file: string): string | undefined {
    return this.texts.get(file);
  }
}
