# PyTorch's side of `npm run bench` (bench/torch-run.ts starts it): one workload,
# printed as one JSON line. Each configuration (model variant x thread count) has
# its own model and optimizer; their steps or runs alternate, round by round, so
# that load on a shared machine hits them alike.
#   python3 bench/torch_bench.py train|generate|train124m|check [--quick]
#       [--threads 1,2] [--export DIR (gptc's model.py: train and check)] [--steps N] [--rounds N]
import argparse
import ctypes
import importlib.util
import json
import os
import resource
import statistics
import sys
import time

import torch

sys.dont_write_bytecode = True  # no bench/__pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt2 import GPT2  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("workload", choices=["train", "generate", "train124m", "check"])
ap.add_argument("--quick", action="store_true")
ap.add_argument("--threads", default="1,2")
ap.add_argument("--export", help="folder with gptc's exported model.py (same shapes)")
ap.add_argument("--steps", type=int)
ap.add_argument("--rounds", type=int)
args = ap.parse_args()
threads = [int(n) for n in args.threads.split(",")]

# The shapes of bench/gptc-run.ts's benchSets and smallSets (no dropout).
QUICK = dict(vocab=512, ctx=64, d=64, layers=2, heads=2)
BENCH = QUICK if args.quick else dict(vocab=50257, ctx=1024, d=256, layers=4, heads=4)
SMALL = QUICK if args.quick else dict(vocab=50257, ctx=1024, d=768, layers=12, heads=12)

# torch.set_num_threads sets OpenMP's threads, not a pthread OpenBLAS's (Debian's
# python3-torch calls the system libblas, by default OpenBLAS with one thread per core).
_blas = sorted({line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line})
_blas_libs = [ctypes.CDLL(p) for p in _blas]
_blas_libs = [lib for lib in _blas_libs if hasattr(lib, "openblas_set_num_threads")]


def set_threads(n):
    torch.set_num_threads(n)
    for lib in _blas_libs:
        lib.openblas_set_num_threads(n)


def stats(xs):
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def adamw(model):
    """AdamW as gptc's bench step: lr 1e-4, betas 0.9/0.95, decay 0.1 on 2-D weights only."""
    ps = list(model.parameters())
    groups = [
        {"params": [p for p in ps if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in ps if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), eps=1e-8)


def exported(folder):
    """gptc's model.py (one PyTorch op per IR op): its Model class."""
    spec = importlib.util.spec_from_file_location("gptc_model", os.path.join(folder, "model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.Model


def loss_of(model, tokens, targets):
    out = model(tokens, targets)
    return out["loss"] if isinstance(out, dict) else out


def trainer(variant, shape, B, T, seed):
    torch.manual_seed(seed)
    model = GPT2(**shape) if variant == "functional" else exported(args.export)()
    opt = adamw(model)
    gen = torch.Generator().manual_seed(seed)

    def step():
        tokens = torch.randint(shape["vocab"], (B, T), generator=gen)
        targets = torch.randint(shape["vocab"], (B, T), generator=gen)
        t0 = time.perf_counter()
        loss = loss_of(model, tokens, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return (time.perf_counter() - t0) * 1000

    return step


def train(shape, B, T, steps, variants):
    """Steps of every (variant, threads) configuration in turn: the first, and the rest's spread."""
    configs = [(v, n) for v in variants for n in threads]
    steppers = [trainer(v, shape, B, T, 1) for v, _ in configs]
    times = [[] for _ in configs]
    for _ in range(steps):
        for i, (_, n) in enumerate(configs):
            set_threads(n)
            times[i].append(steppers[i]())
    return {
        f"{v}/{n}": {"firstStepMs": ts[0], "steadyMs": stats(ts[1:]), "stepsMs": ts}
        for (v, n), ts in zip(configs, times)
    }


def generate(rounds):
    torch.manual_seed(1)
    model = GPT2(**SMALL).eval()
    gen = torch.Generator().manual_seed(3)
    prompt = torch.randint(SMALL["vocab"], (16,), generator=gen).tolist()
    new = 8 if args.quick else 64
    runs = {n: {"total": [], "steady": []} for n in threads}
    for r in range(rounds + 1):  # round 0 warms up (allocations, thread pools)
        for n in threads:
            set_threads(n)
            first = []  # when the first token came (after the prompt's pass)
            t0 = time.perf_counter()
            model.generate_greedy(prompt, new, lambda _: first or first.append(time.perf_counter()))
            end = time.perf_counter()
            if r:
                runs[n]["total"].append(new / (end - t0))
                runs[n]["steady"].append((new - 1) / (end - first[0]))
    return {
        "newTokens": new,
        "rounds": rounds,
        "byThreads": {
            str(n): {"tokensPerSec": stats(x["total"]), "steadyTokensPerSec": stats(x["steady"])}
            for n, x in runs.items()
        },
    }


def check():
    """torch_gpt2 against gptc's model.py on the same weights; cached decoding against uncached."""
    torch.manual_seed(1)
    ours = GPT2(**QUICK)
    theirs = exported(args.export)()
    theirs.load_state_dict(ours.state_dict())
    gen = torch.Generator().manual_seed(5)
    tokens = torch.randint(QUICK["vocab"], (2, 32), generator=gen)
    targets = torch.randint(QUICK["vocab"], (2, 32), generator=gen)
    la, lb = loss_of(ours, tokens, targets), loss_of(theirs, tokens, targets)
    la.backward()
    lb.backward()
    ga, gb = dict(ours.named_parameters()), dict(theirs.named_parameters())
    grad_err = max(
        float((ga[k].grad - gb[k].grad).abs().max() / (gb[k].grad.abs().max() + 1e-12)) for k in gb
    )
    prompt = tokens[0, :8].tolist()
    cached = ours.generate_greedy(prompt, 24)
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(24):
            seq.append(int(ours(torch.tensor([seq]))[0, -1].argmax()))
    ok = abs(float(la - lb)) < 1e-5 and grad_err < 1e-4 and cached == seq[8:]
    return {
        "ok": ok,
        "lossFunctional": float(la),
        "lossExport": float(lb),
        "worstRelativeGradErr": grad_err,
        "cachedEqualsUncached": cached == seq[8:],
    }


load0 = os.getloadavg()
if args.workload == "train":  # (a): the bench step, gptc's B and T
    B, T = (2, 32) if args.quick else (4, 128)
    variants = ["functional"] + (["export"] if args.export else [])
    steps = args.steps or (4 if args.quick else 8)
    result = {"B": B, "T": T, "byConfig": train(BENCH, B, T, steps, variants)}
elif args.workload == "train124m":  # (c)
    B, T = (1, 16) if args.quick else (1, 128)
    steps = args.steps or (2 if args.quick else 4)
    result = {"B": B, "T": T, "byConfig": train(SMALL, B, T, steps, ["functional"])}
elif args.workload == "generate":  # (b)
    result = generate(args.rounds or (1 if args.quick else 3))
else:
    result = check()
print(
    json.dumps(
        {
            "workload": args.workload,
            "engine": f"torch {torch.__version__}",
            "python": sys.executable,
            "blas": [os.path.basename(p) for p in _blas] or "torch's own (torch.set_num_threads)",
            "threads": threads,
            "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY", "unset"),
            **result,
            "load": [load0, os.getloadavg()],
            "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
)
