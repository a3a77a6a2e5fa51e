// DataError: the user's training data cannot be used (missing, empty, damaged
// token files). Its own module so every file of the data layer can throw it
// without importing data.ts, which imports them; data.ts re-exports it.
import { GptcError } from "../errors.js";

export class DataError extends GptcError {
  constructor(message: string) {
    super("data", message);
  }
}
