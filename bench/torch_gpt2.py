# GPT-2 in plain PyTorch (torch.nn.functional), the bench's idiomatic PyTorch
# side: Hugging Face's parameter names and layout (Conv1D weights [in, out], the
# head tied to wte), so gptc's exported model.py and this module load each
# other's state_dict. Fused library ops where PyTorch has them (layer_norm,
# gelu tanh, cross_entropy); decoding keeps a preallocated KV cache per layer
# and computes the head for the last position only. A one-row product is a
# matrix-vector product (addmv): OpenBLAS's sgemm with one row runs at about a
# quarter of its sgemv's speed (1.7 ms against 0.4 ms for [1,768]@[768,2304]).
import math

import torch
import torch.nn.functional as F
from torch import nn


def linear(x, lin):
    """x [N, in] @ weight [in, out] + bias."""
    if x.shape[0] == 1:
        return torch.addmv(lin.bias, lin.weight.t(), x[0]).unsqueeze(0)
    return torch.addmm(lin.bias, x, lin.weight)


class GPT2(nn.Module):
    def __init__(self, vocab, ctx, d, layers, heads):
        super().__init__()
        self.ctx, self.d, self.heads, self.layers = ctx, d, heads, layers
        p = lambda *shape: nn.Parameter(torch.empty(shape))
        self.wte = nn.Module()
        self.wte.weight = p(vocab, d)
        self.wpe = nn.Module()
        self.wpe.weight = p(ctx, d)
        self.h = nn.ModuleList()
        for _ in range(layers):
            b = nn.Module()
            b.ln_1, b.ln_2, b.attn, b.mlp = nn.Module(), nn.Module(), nn.Module(), nn.Module()
            b.attn.c_attn, b.attn.c_proj = nn.Module(), nn.Module()
            b.mlp.c_fc, b.mlp.c_proj = nn.Module(), nn.Module()
            for ln in (b.ln_1, b.ln_2):
                ln.weight, ln.bias = p(d), p(d)
            for lin, n_in, n_out in [
                (b.attn.c_attn, d, 3 * d),
                (b.attn.c_proj, d, d),
                (b.mlp.c_fc, d, 4 * d),
                (b.mlp.c_proj, 4 * d, d),
            ]:
                lin.weight, lin.bias = p(n_in, n_out), p(n_out)
            self.h.append(b)
        self.ln_f = nn.Module()
        self.ln_f.weight, self.ln_f.bias = p(d), p(d)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """GPT-2's initialization, as specs/gpt2-small.model declares it."""
        small = 0.02 / math.sqrt(2 * self.layers)
        for name, w in self.named_parameters():
            if name.endswith("bias"):
                w.zero_()
            elif ".ln_" in name or name.startswith("ln_f"):
                w.fill_(1.0)
            else:
                std = 0.01 if name == "wpe.weight" else small if "c_proj" in name else 0.02
                w.normal_(0.0, std)

    def _block(self, b, x, cache, pos):
        B, T, C = x.shape
        H = self.heads
        y = F.layer_norm(x, (C,), b.ln_1.weight, b.ln_1.bias, 1e-5)
        qkv = linear(y.view(B * T, C), b.attn.c_attn)
        q, k, v = qkv.view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)  # each [B, H, T, D]
        if cache is not None:  # write this step's keys and values, attend to all so far
            cache[0][:, :, pos : pos + T] = k
            cache[1][:, :, pos : pos + T] = v
            k, v = cache[0][:, :, : pos + T], cache[1][:, :, : pos + T]
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(C // H))
        if T > 1:  # causal mask (one new token sees every cached one)
            mask = torch.ones(T, k.shape[2], dtype=torch.bool).tril(k.shape[2] - T)
            att = att.masked_fill(~mask, -math.inf)
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B * T, C)
        x = x + linear(y, b.attn.c_proj).view(B, T, C)
        y = F.layer_norm(x, (C,), b.ln_2.weight, b.ln_2.bias, 1e-5).view(B * T, C)
        y = F.gelu(linear(y, b.mlp.c_fc), approximate="tanh")
        return x + linear(y, b.mlp.c_proj).view(B, T, C)

    def forward(self, tokens, targets=None, cache=None, pos=0, last_only=False):
        """Logits [B, T, vocab] (or [B, vocab] with last_only), or the mean loss given targets."""
        T = tokens.shape[1]
        x = self.wte.weight[tokens] + self.wpe.weight[pos : pos + T]
        for i, b in enumerate(self.h):
            x = self._block(b, x, None if cache is None else cache[i], pos)
        if last_only:
            x = x[:, -1]
        x = F.layer_norm(x, (self.d,), self.ln_f.weight, self.ln_f.bias, 1e-5)
        if x.dim() == 2 and x.shape[0] == 1:  # one token: the head as a matrix-vector product
            return torch.mv(self.wte.weight, x[0]).unsqueeze(0)
        logits = x @ self.wte.weight.t()
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))

    @torch.no_grad()
    def generate_greedy(self, prompt, new_tokens, on_token=None):
        """Greedy decoding with a KV cache: the prompt in one pass, then one token per step."""
        D = self.d // self.heads
        cache = [torch.empty(2, 1, self.heads, self.ctx, D) for _ in self.h]
        tokens = list(prompt)
        x = torch.tensor([tokens])
        pos = 0
        for _ in range(new_tokens):
            nxt = int(self(x, cache=cache, pos=pos, last_only=True).argmax(-1))
            pos += x.shape[1]
            tokens.append(nxt)
            if on_token:
                on_token(nxt)
            x = torch.tensor([[nxt]])
        return tokens[len(prompt) :]
