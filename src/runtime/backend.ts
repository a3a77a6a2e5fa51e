// Backends: a gpu.js GPU instance in one of the modes gptc supports. `auto`
// picks the best that works here (headlessgl, then webasm, then cpu) and says
// which one ran in `describe` (the CLI logs it).
import { GptcError } from "../errors.js";
import type { DeviceLimits } from "../codegen/device-layout.js";
import { defaultLimits, type FusionLimits } from "../ir/passes/fuse.js";
import { DeviceWeights } from "./device-weights.js";
import { createRequire } from "node:module";
import { engineThreads } from "./gemm.js";

/** The backends gptc runs on (besides `auto`, which picks one). */
export const backendNames = ["webasm", "cpu", "headlessgl", "webgpu"] as const;
/**
 * One of `backendNames`, or `webgl2`: gpu.js's WebGL2 mode, which exists only in
 * a browser (the playground, web/); Node's GLSL path is headlessgl.
 */
export type BackendName = (typeof backendNames)[number] | "webgl2";

const require = createRequire(import.meta.url);

/** gpu.js is CommonJS; load it once, lazily (its optional `gl` binding may be absent). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type GpuModule = any;
let gpuModule: GpuModule | undefined;
export function gpujs(): GpuModule {
  gpuModule ??= require("gpu.js");
  return gpuModule;
}

export class BackendError extends GptcError {
  constructor(message: string) {
    super("backend", message);
  }
}

/** A place kernels run: a gpu.js GPU in one mode, and which of gptc's own engines serve it. */
export interface Backend {
  /** Which backend this is. */
  name: BackendName;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  /** The gpu.js GPU instance (untyped: gpu.js ships no types). */
  gpu: any;
  /** Whether kernels return promises (webgpu, threaded webasm). */
  async: boolean;
  /** Matmuls run on gptc's WebAssembly GEMM instead of as gpu.js kernels. */
  gemm: boolean;
  /**
   * Every other kernel runs as gptc's own WebAssembly (codegen/wasm/kernel.ts),
   * gpu.js only for what that compiler does not take.
   */
  wasmKernels: boolean;
  /** The backend in words, for logs: e.g. "webasm (WebAssembly SIMD)". */
  describe: string;
  /**
   * GPU backends: what one texture or buffer holds and indexes exactly; tensors
   * past it are tiled (codegen/device-layout.ts) or refused before anything runs.
   */
  limits?: DeviceLimits;
  /** Most buffers one kernel may read, where the backend binds fewer than fusion's default. */
  fusion?: FusionLimits;
  /** GPU backends: weights uploaded once and kept as textures (runtime/device-weights.ts). */
  weights?: DeviceWeights;
  /** GPU backends: textures read back to the host so far, and their bytes (tests count them). */
  readBacks?: { count: number; bytes: number };
}

/**
 * Whether `b` computes on a GPU (headlessgl, webgl2, webgpu): the backends
 * that report device limits, each of which createBackend gives them.
 */
export const onGpu = (b: Backend): boolean => b.limits !== undefined;

/**
 * gpu.js writes its kernels' index arithmetic in float32 (GLSL and WGSL alike:
 * `const i = this.thread.x` is a float), exact for integers up to 2^24.
 */
export const FLOAT_EXACT = 2 ** 24;

/** Renderers that draw on the CPU (Mesa's llvmpipe and softpipe, SwiftShader): their numbers are CPU numbers. */
const softwareRenderer = (renderer: string) => /llvmpipe|softpipe|swiftshader/i.test(renderer);

interface GlProbe {
  maxTextureSize: number;
  maxLoopIterations: number;
  renderer: string;
}

/** What a WebGL GPU instance (headlessgl, webgl2) can do: probe kernels, or undefined where none runs. */
function glProbe(gpu: Backend["gpu"], measureLoops = true): GlProbe | undefined {
  try {
    const k = gpu.createKernel("function (a) { return a[this.thread.x] + 1.0; }", { output: [2] });
    const r = k(Float32Array.of(1, 2));
    const gl = k.context;
    const maxTextureSize = gl ? (gl.getParameter(gl.MAX_TEXTURE_SIZE) as number) : 4096;
    // Browsers mask RENDERER ("WebKit WebGL"); the debug extension names the real one.
    const info = gl?.getExtension?.("WEBGL_debug_renderer_info");
    const renderer = gl
      ? String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER))
      : "unknown";
    let maxLoopIterations = Infinity;
    if (measureLoops) {
      // Mesa's llvmpipe ends a shader's loops after 65,535 iterations in all, silently:
      // count how many one loop of more actually runs.
      const n = 100_000;
      const loop = gpu.createKernel(
        `function () { let s = 0.0; for (let j = 0; j < ${n}; j++) { s = s + 1.0; } return s; }`,
        { output: [1], tactic: "precision", precision: "single" },
      );
      const ran = loop()[0] as number;
      if (ran < n) maxLoopIterations = ran;
    }
    return r[0] === 2 && r[1] === 3 ? { maxTextureSize, maxLoopIterations, renderer } : undefined;
  } catch {
    return undefined;
  }
}

/** Textures of 32-bit floats: a texel holds one value of an output (four of an upload). */
function glLimits(backend: string, probe: GlProbe): DeviceLimits {
  return {
    backend,
    exactIndex: FLOAT_EXACT,
    maxTextureSize: probe.maxTextureSize,
    maxElements: probe.maxTextureSize ** 2,
    maxLoopIterations: probe.maxLoopIterations,
  };
}

/** What headlessgl can do here, or undefined where it does not run. */
function headlessGlProbe(measureLoops = true): GlProbe | undefined {
  try {
    const { GPU } = gpujs();
    if (!GPU.isHeadlessGLSupported) return undefined;
    const gpu = new GPU({ mode: "headlessgl" });
    const probe = glProbe(gpu, measureLoops);
    gpu.destroy?.();
    return probe;
  } catch {
    return undefined;
  }
}

function headlessGlWorks(): boolean {
  return headlessGlProbe(false) !== undefined;
}

/**
 * Creates a backend by name, or with `auto` the best that works here
 * (headlessgl, then webasm, then cpu). Throws a BackendError when the one asked
 * for cannot run on this machine. Prints nothing: `describe` says which ran.
 */
export async function createBackend(
  name: BackendName | "auto",
  opts: {
    /** webasm: threads of the WebAssembly engine, 1 or 2 (default: the machine's cores, at most 2). */
    threads?: number;
    gemm?: boolean;
    wasmKernels?: boolean;
  } = {},
): Promise<Backend> {
  const { GPU } = gpujs();
  let chosen: BackendName;
  if (name === "auto")
    chosen = headlessGlWorks() ? "headlessgl" : GPU.isWebAssemblySupported ? "webasm" : "cpu";
  else chosen = name;

  let backend: Backend;
  switch (chosen) {
    case "cpu":
      backend = {
        name: "cpu",
        gpu: new GPU({ mode: "cpu" }),
        async: false,
        gemm: false,
        wasmKernels: false,
        describe: "cpu (plain JavaScript)",
      };
      break;
    case "webasm": {
      if (!GPU.isWebAssemblySupported)
        throw new BackendError("WebAssembly is not supported by this Node.js");
      if (opts.threads !== undefined && !engineThreads(opts.threads))
        throw new BackendError(
          `the WebAssembly engine already runs with another thread count in this process; threads ${opts.threads} cannot apply`,
        );
      backend = {
        name: "webasm",
        gpu: new GPU({ mode: "webasm" }),
        async: false,
        gemm: opts.gemm ?? true,
        wasmKernels: opts.wasmKernels ?? true,
        describe: `webasm (WebAssembly SIMD${opts.gemm === false ? ", gpu.js matmuls" : ""}${opts.wasmKernels === false ? ", gpu.js kernels" : ""})`,
      };
      // Its own kernels compute a row's reductions once per row (see FusionLimits).
      if (backend.wasmKernels) backend.fusion = { ...defaultLimits, rowReductions: true };
      break;
    }
    case "headlessgl": {
      const probe = headlessGlProbe();
      if (probe === undefined)
        throw new BackendError(
          "headlessgl is not available: the optional 'gl' package did not build or no display is open " +
            "(install libxi-dev libx11-dev libxext-dev pkg-config, run `npm rebuild gl`, and run under `xvfb-run -a`)",
        );
      backend = {
        name: "headlessgl",
        gpu: new GPU({ mode: "headlessgl" }),
        async: false,
        gemm: false,
        wasmKernels: false,
        describe: `headlessgl (GLSL through the gl package, ${probe.renderer}${
          softwareRenderer(probe.renderer)
            ? ": a software renderer on the CPU"
            : probe.maxLoopIterations === 65535
              ? "; its shaders stop at 65,535 loop iterations as Mesa's llvmpipe does: most likely a software renderer on the CPU"
              : ""
        })`,
        limits: glLimits("headlessgl", probe),
      };
      break;
    }
    case "webgl2": {
      if (!GPU.isWebGL2Supported)
        throw new BackendError(
          "webgl2 is not available: it runs in a browser with WebGL2 (the playground); in Node.js use headlessgl",
        );
      backend = {
        name: "webgl2",
        gpu: new GPU({ mode: "webgl2" }),
        async: false,
        gemm: false,
        wasmKernels: false,
        describe: "webgl2 (GLSL in the browser's WebGL2)",
      };
      const probe = glProbe(backend.gpu);
      if (probe === undefined)
        throw new BackendError("webgl2 is not available: a probe kernel did not run");
      // SwiftShader (Chromium without a GPU) renders on the CPU: say so with its numbers.
      if (softwareRenderer(probe.renderer))
        backend.describe = `webgl2 (GLSL in the browser's WebGL2, ${probe.renderer}: a software renderer on the CPU)`;
      backend.limits = glLimits("webgl2", probe);
      break;
    }
    case "webgpu": {
      let adapter: unknown;
      let bindingBytes = 2 ** 27;
      try {
        const webgpu = require("webgpu");
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        (globalThis as any).navigator ??= { gpu: webgpu.create([]) };
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        adapter = await (globalThis as any).navigator.gpu?.requestAdapter();
        if (adapter) {
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          const l = (adapter as any).limits;
          // Storage buffers, not textures: no side limit, only the binding's size.
          bindingBytes = Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize);
        }
      } catch (e) {
        throw new BackendError(`webgpu is not available: ${(e as Error).message.split("\n")[0]}`);
      }
      if (!adapter)
        throw new BackendError("webgpu is not available: no GPU adapter answered on this machine");
      backend = {
        name: "webgpu",
        gpu: new GPU({ mode: "webgpu" }),
        async: true,
        gemm: false,
        wasmKernels: false,
        describe: "webgpu (WGSL compute shaders)",
        // gpu.js binds each argument and the output as a storage buffer, and asks
        // for WebGPU's default 8 per shader stage: a kernel of 8 arguments fails
        // to build (measured in Chromium), so fusion keeps kernels to 7 buffers.
        fusion: { maxInputs: 7 },
        limits: {
          backend: "webgpu",
          exactIndex: FLOAT_EXACT,
          maxTextureSize: FLOAT_EXACT,
          maxElements: Math.floor(bindingBytes / 4),
          maxLoopIterations: Infinity,
        },
      };
      break;
    }
    default:
      throw new BackendError(
        `unknown backend '${name}': expected one of auto, ${backendNames.join(", ")}`,
      );
  }
  // Every GPU backend: gpu.js hands out kept GL textures and WebGPU buffers alike.
  if (onGpu(backend)) {
    backend.weights = new DeviceWeights(backend.gpu, backend.async);
    backend.readBacks = { count: 0, bytes: 0 };
  }
  return backend;
}
