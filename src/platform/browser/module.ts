// node:module in a browser: createRequire answers the two packages the runtime
// loads lazily. gpu.js resolves to its browser build (package.json "browser");
// "webgpu" (Dawn for Node) is the browser's own navigator.gpu.
import * as gpujs from "gpu.js";

export function createRequire(_from: string): (id: string) => unknown {
  return (id: string) => {
    if (id === "gpu.js") return (gpujs as { default?: unknown }).default ?? gpujs;
    if (id === "webgpu") {
      const gpu = (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu;
      if (!gpu) throw new Error("this browser has no WebGPU (navigator.gpu)");
      return { create: () => gpu };
    }
    throw new Error(`'${id}' is not available in a browser`);
  };
}
