"""Runs exported PyTorch modules on given weights and inputs, for the export tests.

usage: torch_check.py CASES.json, a list of {dir, weights, inputs, out}: imports
DIR/model.py, loads the weights (safetensors), runs forward and backward on the
inputs (a safetensors file of float32 ids: tokens, targets) and writes logits,
loss and grad.<key> to OUT (safetensors, float32).
"""
import importlib.util
import json
import sys

import torch

torch.set_num_threads(1)

for i, case in enumerate(json.load(open(sys.argv[1], encoding="utf-8"))):
    spec = importlib.util.spec_from_file_location(f"exported_{i}", f"{case['dir']}/model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.Model()
    weights, _ = mod.load_safetensors(case["weights"])
    model.load_state_dict(weights, strict=True)
    model.eval()  # dropout off: gptc's answer is its evaluation-mode training graph
    inputs, _ = mod.load_safetensors(case["inputs"])
    args = [inputs[name].long() for name in mod.INPUTS]
    out = model(*args)
    out["loss"].backward()
    result = {"logits": out["logits"], "loss": out["loss"].reshape(1)}
    for key, p in model.named_parameters():
        result["grad." + key] = p.grad
    mod.save_safetensors(case["out"], result)
    print(case["out"], flush=True)
