// node:v8 in a browser: engine flags cannot be set from a page.
export default {
  setFlagsFromString(_flags: string): void {
    throw new Error("V8 flags cannot be set in a browser");
  },
};
