// train.py of the PyTorch export: data-parallel training with
// torch.distributed (DDP; gloo on CPU, NCCL on GPUs), launched by torchrun.
// It reads token folders written by `gptc prepare` (so Python needs no
// tokenizer of its own and the ids are gptc's), trains with gptc's AdamW
// settings and schedule, and writes gptc run folders that `gptc generate`
// loads. Fixed text: what varies per model is in model.py and gptc-export.json.
export const trainScript =
  String.raw`#!/usr/bin/env python3
"""Trains the exported model data-parallel on token files from ` +
  "`gptc prepare`" +
  String.raw`.

    gptc prepare --data corpus.txt --tokenizer char -o tokens
    torchrun --nproc_per_node 2 train.py --data tokens --steps 200 --out run
    gptc generate run --prompt "The "

Options mirror ` +
  "`gptc train`" +
  String.raw`: --batch is per process, so a step sees
batch x processes sequences. The run folder holds model.safetensors,
checkpoint.safetensors (weights, AdamW moments, gptc's training state),
tokenizer.json and config.json, as gptc train writes them. --init starts from a
gptc run folder or a model.safetensors.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import INPUTS, Model, WEIGHTS, load_safetensors, save_safetensors  # noqa: E402

with open(os.path.join(HERE, "gptc-export.json"), encoding="utf-8") as f:
    EXPORT = json.load(f)


def fail(message):
    print(f"train.py: error: {message}", file=sys.stderr)
    sys.exit(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a token folder written by gptc prepare")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps (0: evaluate and save the starting weights)")
    p.add_argument("--batch", type=int, default=8, help="sequences per process per step")
    p.add_argument("--seq", type=int, default=None, help="tokens per sequence (default min(64, context))")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=None, help="default lr/10")
    p.add_argument("--warmup", type=int, default=None, help="default steps/20")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clipping (0: off)")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--eval-batches", type=int, default=4, help="validation batches measured before and after training (0: none)")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--out", default=os.path.join("runs", EXPORT["name"] + "-torch"))
    p.add_argument("--init", default=None, help="a gptc run folder or model.safetensors to start from")
    a = p.parse_args()
    if a.steps < 0 or a.batch < 1:
        fail("--steps must be at least 0 (0: evaluate and save the initial weights) and --batch at least 1")
    context = EXPORT.get("context")
    if a.seq is None:
        a.seq = min(64, context or 64)
    if context is not None and a.seq > context:
        fail(f"--seq {a.seq} is longer than the model's context ({context})")
    if a.min_lr is None:
        a.min_lr = a.lr / 10
    if a.warmup is None:
        a.warmup = a.steps // 20
    return a


def learning_rate(step, a):
    """Linear warmup, then cosine decay to min_lr at step index steps (as gptc train)."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = min(1.0, (step - a.warmup) / max(1, a.steps - a.warmup))
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * t))


def open_tokens(folder):
    try:
        with open(os.path.join(folder, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except OSError:
        fail(f"{folder} is not a token folder from gptc prepare (no meta.json)")
    if meta.get("format") != "gptc-tokens":
        fail(f"{folder}/meta.json is not a gptc token folder")
    vocab = EXPORT.get("vocab_size")
    if vocab is not None and meta["vocabSize"] != vocab:
        fail(
            f"the tokens of {folder} use {meta['vocabSize']} ids but the model was exported for {vocab}: "
            f"export again with --data {folder}"
        )
    dtype = {"uint16": np.uint16, "uint32": np.uint32}[meta["dtype"]]
    train = np.memmap(os.path.join(folder, "train.bin"), dtype=dtype, mode="r")
    val_path = os.path.join(folder, "val.bin")
    val = np.memmap(val_path, dtype=dtype, mode="r") if os.path.getsize(val_path) > 0 else train
    return meta, train, val


def batch(tokens, n, seq, gen):
    """n random windows of seq + 1 tokens: inputs and next-token targets."""
    if len(tokens) < seq + 2:
        fail(f"the training tokens ({len(tokens)}) are fewer than one sequence of {seq + 1}")
    starts = torch.randint(0, len(tokens) - seq - 1, (n,), generator=gen).tolist()
    rows = np.stack([np.asarray(tokens[s : s + seq + 1], dtype=np.int64) for s in starts])
    rows = torch.from_numpy(rows)
    return rows[:, :-1], rows[:, 1:]


@torch.no_grad()
def validate(model, val, a, device):
    """Mean loss on fixed validation batches (the same ones before and after training), without dropout."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(a.seed + 7)
    losses = [model(x.to(device), y.to(device))["loss"].item() for x, y in (batch(val, a.batch, a.seq, gen) for _ in range(a.eval_batches))]
    model.train(was)
    return sum(losses) / len(losses)


def load_init(model, path):
    file = os.path.join(path, "model.safetensors") if os.path.isdir(path) else path
    if not os.path.exists(file):
        fail(f"--init {path}: no model.safetensors there")
    tensors, _meta = load_safetensors(file)
    want = {k: tuple(s) for k, s, _i, _d in WEIGHTS}
    missing = sorted(set(want) - set(tensors))
    if missing:
        fail(f"--init {file} lacks weights {', '.join(missing[:5])}")
    for k, shape in want.items():
        if tuple(tensors[k].shape) != shape:
            fail(f"--init {file}: {k} has shape {list(tensors[k].shape)}, the model wants {list(shape)}")
    model.load_state_dict({k: tensors[k] for k in want}, strict=True)


def save(model, opt, a, step, tokens_seen, meta):
    os.makedirs(a.out, exist_ok=True)
    weights = {k: v for k, v in model.state_dict().items()}
    full = dict(weights)
    for p_name, p in model.named_parameters():
        st = opt.state.get(p, {})
        full["optimizer.m." + p_name] = st.get("exp_avg", torch.zeros_like(p))
        full["optimizer.v." + p_name] = st.get("exp_avg_sq", torch.zeros_like(p))
    state = {
        "format": "gptc-checkpoint-1",
        "step": step,
        "batchRng": a.seed,
        "tokensSeen": tokens_seen,
        "model": EXPORT["model"],
        "tokenizer": meta["tokenizer"],
        "options": {
            "steps": a.steps, "batch": a.batch * dist.get_world_size(), "seq": a.seq, "accum": 1,
            "lr": a.lr, "minLr": a.min_lr, "warmup": a.warmup, "weightDecay": a.weight_decay,
            "beta1": 0.9, "beta2": 0.95, "clip": a.clip, "evalEvery": 0, "evalBatches": 0,
            "saveEvery": a.save_every, "seed": a.seed, "data": os.path.abspath(a.data),
            "trainedWith": "pytorch-ddp",
        },
        "adamStep": step,
    }
    save_safetensors(os.path.join(a.out, "checkpoint.safetensors"), full, {"gptc_state": json.dumps(state)})
    save_safetensors(os.path.join(a.out, "model.safetensors"), weights, {"format": "pt"})
    with open(os.path.join(a.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(meta["tokenizer"]) + "\n")
    if EXPORT.get("hf_config"):
        with open(os.path.join(a.out, "config.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(EXPORT["hf_config"], indent=2) + "\n")


def main():
    a = parse_args()
    if not EXPORT.get("trainable"):
        fail(f"{EXPORT['name']} declares no loss: model.py runs it, but there is nothing to train")
    if INPUTS != ["tokens", "targets"]:
        fail(f"train.py feeds inputs tokens and targets; {EXPORT['name']} takes {', '.join(INPUTS)}")
    use_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    meta, tokens, val = open_tokens(a.data)

    torch.manual_seed(a.seed)  # the same initial weights on every process
    model = Model()
    if a.init:
        load_init(model, a.init)
    model.to(device)
    ddp = DDP(model, device_ids=[local] if use_cuda else None)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr, betas=(0.9, 0.95), eps=1e-8,
    )
    gen = torch.Generator().manual_seed(a.seed * 1000 + rank)  # each process its own batches
    if rank == 0:
        print(f"train.py: {EXPORT['name']}, {sum(p.numel() for p in model.parameters())} parameters, "
              f"{world} processes ({'nccl' if use_cuda else 'gloo'}), {len(tokens)} training tokens", flush=True)
    if rank == 0 and a.eval_batches > 0:
        print(json.dumps({"step": 0, "valLoss": round(validate(model, val, a, device), 6)}), flush=True)
    started = time.time()
    model.train()  # the spec's dropout applies to training steps
    for step in range(a.steps):
        lr = learning_rate(step, a)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch(tokens, a.batch, a.seq, gen)
        loss = ddp(x.to(device), y.to(device))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        mean = mean.item() / world
        if rank == 0:
            tps = (step + 1) * a.batch * a.seq * world / (time.time() - started)
            print(json.dumps({"step": step + 1, "loss": round(mean, 6), "lr": lr, "tokensPerSec": round(tps)}), flush=True)
            if a.save_every > 0 and (step + 1) % a.save_every == 0:
                save(model, opt, a, step + 1, (step + 1) * a.batch * a.seq * world, meta)
    if rank == 0:
        if a.eval_batches > 0:
            print(json.dumps({"step": a.steps, "valLoss": round(validate(model, val, a, device), 6)}), flush=True)
        save(model, opt, a, a.steps, a.steps * a.batch * a.seq * world, meta)
        print(f"train.py: saved {a.out}", flush=True)
    dist.barrier()  # every process ends together, after the checkpoint is written
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
`;
