"""Independent reference of TAO's min_weight pruning rules (tao.md §2), in
numpy over torch.fx graphs of torchvision models, for tests/prune/test_prune_ref.sh.

    prune_ref.py make ARCH OUT.pth IN.npy        random weights (filters scaled so norms spread)
    prune_ref.py check ARCH W.pth CONFIGS.txt    each line: NORM EQ TH PG NF REPORT.json
    prune_ref.py forward ARCH W.pth REPORT.json IN.npy OUT.npy
                                                 slice W by the reference's retained channels,
                                                 run the pruned torch model

The rules (written from the description, not from deft's code):
  stat per output filter = L2 norm of the kernel; normalized per layer
  (max: s/max s; L2: s/||s||*N); k = #(s > th), k = max(k, min(nf, N)),
  round k up to a multiple of pg, k = min(k, N); keep the top k (stable
  argsort of -s) in ascending order. Layers whose outputs meet in an add form
  a group (unioned transitively) with stats combined element-wise over all
  members (max, min, mean, exp(mean(log))); a depthwise conv merges its stat
  pairwise into its parent's; layers whose channels reach the model output
  keep everything, and so does their group.
"""
import json
import operator
import sys

import numpy as np

if sys.argv[1:2] not in (["compare"], ["ratio"]):  # those need numpy alone: no torch import (2 CPU-s)
    import torch
    import torchvision
    from torch.fx import symbolic_trace
    from torch.fx.passes.shape_prop import ShapeProp


def build(arch):
    m = getattr(torchvision.models, arch)(num_classes=10)
    return m.eval()


def make(arch, out, xin):
    torch.manual_seed(7)
    m = build(arch)
    g = torch.Generator().manual_seed(11)
    sd = m.state_dict()
    for k, v in sd.items():
        if k.endswith("weight") and v.dim() in (2, 4):
            scale = torch.rand(v.shape[0], generator=g) * 0.9 + 0.1
            v.mul_(scale.view(-1, *([1] * (v.dim() - 1))))
        elif k.endswith("running_var"):
            v.copy_(torch.rand(v.shape, generator=g) + 0.5)
        elif k.endswith("running_mean") or (k.endswith("bias") and v.dim() == 1):
            v.copy_(torch.randn(v.shape, generator=g) * 0.1)
    m.load_state_dict(sd)
    torch.save(m.state_dict(), out)
    np.save(xin, torch.randn(1, 3, 224, 224, generator=g).numpy())


def normalize(s, norm):
    if norm == "max":
        return s / s.max()
    return s / np.linalg.norm(s) * len(s)


def combine(stats, eq):
    a = np.stack(stats)
    if eq == "union":
        return a.max(0)
    if eq == "intersection":
        return a.min(0)
    if eq == "arithmetic_mean":
        return a.mean(0)
    return np.exp(np.log(a).mean(0))


def pair(a, b, eq):
    return combine([a, b], eq) if eq != "arithmetic_mean" else (a + b) / 2


def retained(s, th, nf, pg):
    n = len(s)
    k = int((s > th).sum())
    k = max(k, min(nf, n))
    k = -(-k // pg) * pg
    k = min(k, n)
    return sorted(np.argsort(-s, kind="stable")[:k].tolist())


class Ref:
    """Channel owners per fx node: a list, one (layer, index) or None per channel."""

    def __init__(self, arch, sd, norm, eq, gm=None):
        if gm is None:
            model = build(arch)
            model.load_state_dict(sd)
            gm = symbolic_trace(model)
            ShapeProp(gm).propagate(torch.zeros(1, 3, 64, 64))
        self.gm = gm
        self.mods = dict(self.gm.named_modules())
        self.norm, self.eq = norm, eq
        self.stat, self.kind, self.parent = {}, {}, {}
        self.group = {}        # layer -> representative (union-find)
        self.full = set()
        self.owner = {}
        self.layers = []       # order of appearance
        self.dw_parent = {}

    def find(self, a):
        while self.group[a] != a:
            a = self.group[a]
        return a

    def unite(self, a, b):
        a, b = self.find(a), self.find(b)
        if a != b:
            self.group[b] = a

    def kstat(self, w):
        w = w.detach().numpy().reshape(w.shape[0], -1)
        return normalize(np.sqrt((w.astype(np.float64) ** 2).sum(1)), self.norm)

    def single(self, own):
        """The layer whose channels these are, in order; None if unprunable."""
        if all(o is None for o in own):
            return None
        name = own[0][0] if own[0] else None
        assert name and all(o == (name, i) for i, o in enumerate(own)), "mixed channels"
        return name

    def run(self):
        for n in self.gm.graph.nodes:
            if n.op == "placeholder":
                self.owner[n] = [None] * n.meta["tensor_meta"].shape[1]
            elif n.op == "call_module":
                mod = self.mods[n.target]
                x = self.owner[n.args[0]]
                if isinstance(mod, torch.nn.Conv2d) and mod.groups == 1 or isinstance(mod, torch.nn.Linear):
                    name = n.target
                    self.stat[name] = self.kstat(mod.weight)
                    self.kind[name] = "conv" if isinstance(mod, torch.nn.Conv2d) else "linear"
                    self.group[name] = name
                    self.layers.append(name)
                    self.owner[n] = [(name, i) for i in range(mod.weight.shape[0])]
                elif isinstance(mod, torch.nn.Conv2d):  # depthwise, multiplier 1
                    assert mod.groups == mod.in_channels == mod.out_channels
                    p = self.single(x)
                    self.layers.append(n.target)
                    self.kind[n.target] = "depthwise"
                    self.dw_parent[n.target] = p
                    if p:
                        self.stat[p] = pair(self.stat[p], self.kstat(mod.weight), self.eq)
                    self.owner[n] = list(x)
                else:  # BN, ReLU, pooling, dropout: channels pass through
                    self.owner[n] = list(x)
            elif n.op == "call_function" and n.target in (operator.add, operator.iadd, torch.add):
                a, b = (self.owner[v] for v in n.args[:2])
                la, lb = self.single(a), self.single(b)
                if la and lb:
                    self.unite(la, lb)
                elif la or lb:
                    self.full.add(la or lb)
                self.owner[n] = list(a)
            elif n.op == "call_function" and n.target is torch.cat:
                assert n.args[1] == 1 or n.kwargs.get("dim") == 1
                self.owner[n] = [o for v in n.args[0] for o in self.owner[v]]
            elif n.op == "call_function" and n.target is torch.flatten:
                shp = n.args[0].meta["tensor_meta"].shape
                hw = int(np.prod(shp[2:]))
                self.owner[n] = [o for o in self.owner[n.args[0]] for _ in range(hw)]
            elif n.op == "call_function":  # relu, adaptive_avg_pool2d ...
                self.owner[n] = list(self.owner[n.args[0]])
            elif n.op == "output":
                for o in self.owner[n.args[0]]:
                    if o:
                        self.full.add(o[0])

    def decide(self, th, pg, nf):
        self.ret = {}
        groups = {}
        for l in self.stat:
            groups.setdefault(self.find(l), []).append(l)
        for members in groups.values():
            n = len(self.stat[members[0]])
            if any(m in self.full for m in members):
                r = list(range(n))
            else:
                s = combine([self.stat[m] for m in members], self.eq) if len(members) > 1 else self.stat[members[0]]
                r = retained(s, th, nf, pg)
            for m in members:
                self.ret[m] = r
        for d, p in self.dw_parent.items():
            self.ret[d] = self.ret[p] if p else list(range(self.mods[d].out_channels))
        return self.ret

    def kept(self, own):
        return [i for i, o in enumerate(own) if o is None or o[1] in set(self.ret[o[0]])]


def check(arch, pth, configs):
    sd = torch.load(pth)
    bad = 0
    gm = None
    for line in open(configs):
        norm, eq, th, pg, nf, rep = line.split()
        ref = Ref(arch, sd, norm, eq, gm)
        gm = ref.gm  # traced once: the rules only read it
        ref.run()
        want = ref.decide(float(th), int(pg), int(nf))
        got = {l["name"]: l for l in json.load(open(rep))["layers"]}
        errs = []
        if set(got) != set(want):
            errs.append("layer sets differ: %s" % sorted(set(got) ^ set(want))[:5])
        for name, r in want.items():
            g = got.get(name)
            if g and (g["retained"] != r or g["after"] != len(r) or g["type"] != ref.kind[name]):
                errs.append("%s: deft %s %d %s..., ref %s %d %s..." % (name, g["type"], g["after"], g["retained"][:6],
                                                                       ref.kind[name], len(r), r[:6]))
        pruned = sum(len(r) < len(ref.stat.get(n, r)) for n, r in want.items() if n in ref.stat)
        tag = "%s %s %s th=%s pg=%s nf=%s (%d/%d layers pruned)" % (arch, norm, eq, th, pg, nf, pruned, len(want))
        if errs:
            bad += 1
            print("MISMATCH", tag, "\n  " + "\n  ".join(errs[:8]))
        else:
            print("match", tag)
    return bad


def forward(arch, pth, rep, xin, out):
    """Slice every weight by the report's retained channels (this code's own
    reading of which input channels remain) and run the smaller torch model."""
    sd = torch.load(pth)
    ref = Ref(arch, sd, "max", "union")
    ref.run()
    ref.ret = {l["name"]: l["retained"] for l in json.load(open(rep))["layers"]}
    for n in ref.gm.graph.nodes:
        if n.op != "call_module":
            continue
        mod = ref.mods[n.target]
        xi = ref.kept(ref.owner[n.args[0]])
        yi = ref.kept(ref.owner[n])
        with torch.no_grad():
            if isinstance(mod, torch.nn.Conv2d):
                w = mod.weight[yi]
                if mod.groups == 1:
                    w = w[:, xi]
                else:
                    mod.groups = len(yi)
                mod.weight = torch.nn.Parameter(w.clone())
                if mod.bias is not None:
                    mod.bias = torch.nn.Parameter(mod.bias[yi].clone())
                mod.in_channels, mod.out_channels = len(xi), len(yi)
            elif isinstance(mod, torch.nn.Linear):
                mod.weight = torch.nn.Parameter(mod.weight[yi][:, xi].clone())
                mod.bias = torch.nn.Parameter(mod.bias[yi].clone())
            elif isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight = torch.nn.Parameter(mod.weight[xi].clone())
                mod.bias = torch.nn.Parameter(mod.bias[xi].clone())
                mod.running_mean = mod.running_mean[xi].clone()
                mod.running_var = mod.running_var[xi].clone()
                mod.num_features = len(xi)
    with torch.no_grad():
        y = ref.gm(torch.from_numpy(np.load(xin)))
    np.save(out, y.numpy())


def st_params(path):
    """Every weight of a safetensors file (BN statistics too: TAO's count), optimizer state excluded."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        h = json.loads(f.read(n))
    return sum(int(np.prod(v["shape"])) for k, v in h.items() if k != "__metadata__" and not k.startswith("__optim__"))


def ratio(before, after, rep, target, tol):
    r = st_params(after) / st_params(before)
    rr = json.load(open(rep))["pruning_ratio"]
    print("ratio %.4f (file), %.4f (report), threshold %.4g" % (r, rr, json.load(open(rep))["threshold"]))
    return abs(r - float(target)) <= float(tol) and abs(r - rr) < 1e-6


def reshape_onnx(out):
    class Reshaped(torch.nn.Module):
        """conv1 (prunable) -> a reshape that regroups its channels -> conv2 -> head."""

        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 32, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
            self.fc = torch.nn.Linear(32, 4)

        def forward(self, x):
            y = torch.relu(self.conv1(x)).reshape(1, 16, 64, 32)
            y = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.conv2(y)), 1), 1)
            return self.fc(y)

    torch.manual_seed(3)
    m = Reshaped().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(torch.rand(p.shape[0]).view(-1, *([1] * (p.dim() - 1))) + 0.1)
    torch.onnx.export(m, torch.zeros(1, 3, 32, 32), out, input_names=["input_1"], output_names=["logits"],
                      opset_version=13)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(*sys.argv[2:5])
    elif cmd == "check":
        sys.exit(1 if check(*sys.argv[2:5]) else 0)
    elif cmd == "forward":
        forward(*sys.argv[2:7])
    elif cmd == "ratio":
        sys.exit(0 if ratio(*sys.argv[2:7]) else 1)
    elif cmd == "reshape_onnx":
        reshape_onnx(sys.argv[2])
    elif cmd == "compare":
        a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
        d = float(np.abs(a - b).max())
        tol = float(sys.argv[4]) * max(1.0, float(np.abs(b).max()))
        print("max abs diff %.3g (tol %.3g)" % (d, tol))
        sys.exit(0 if a.shape == b.shape and d <= tol else 1)
