#!/usr/bin/python3
"""How much a pruned SqueezeNet 1.0 can still tell ants from bees (issue 5, Must show 2), in PyTorch.

  prune_probe_squeezenet.py probe   MODEL.safetensors [ALLOC.json ...]
  prune_probe_squeezenet.py retrain MODEL.safetensors ALLOC.json [--lr 1e-3 --freeze 8 --epochs 12]

MODEL: a deft squeezenet1_0 model with 2 classes (specs/hymenoptera_squeezenet_finetune.yaml).
ALLOC: {"layer": filters kept, ...}; each layer keeps its filters of largest kernel L2 norm
(TAO's ranking; every other layer whole). Pruning is simulated by zeroing the removed filters'
weights and biases, which gives the same outputs as slicing them away.
probe: validation top-1 of the model as it is, and of a linear probe (L2-regularized logistic
regression on the globally pooled features, trained on the training images and their mirror
images) after each fire module of the unpruned model and on the final features of each ALLOC:
what a retrained classifier can reach on features the pruning left.
retrain: ALLOC's pruned model retrained (RandomResizedCrop + flip, SGD momentum 0.9, lr divided by
10 after 5/8 of the epochs; features[:freeze] fixed; removed filters kept at zero after every step)."""
import argparse, json, os, sys
import torch, torchvision
from torchvision import transforms as T
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from resnet_parity import read_safetensors  # noqa: E402  (the tests' reader of deft's weight files)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "hymenoptera_256")
NORM = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])

def load_model(path):
    sd = read_safetensors(path)
    m = torchvision.models.squeezenet1_0(num_classes=2)
    m.load_state_dict({k: v for k, v in sd.items() if k in m.state_dict()})
    return m.eval()

def convs(m): return {n: c for n, c in m.named_modules() if isinstance(c, torch.nn.Conv2d)}

def masks_of(m, alloc):
    out = {}
    for name, k in alloc.items():
        w = convs(m)[name].weight
        keep = torch.zeros(w.shape[0], dtype=torch.bool)
        keep[torch.argsort(w.flatten(1).norm(dim=1), descending=True)[:k]] = True
        out[name] = keep
    return out

def apply(m, masks):
    with torch.no_grad():
        for name, keep in masks.items():
            c = convs(m)[name]; c.weight[~keep] = 0; c.bias[~keep] = 0

def params(m, masks):
    """Parameters of the sliced model: a removed filter takes its inputs in the next conv too."""
    kept = {n: int(k.sum()) for n, k in masks.items()}
    total = 0
    for name, c in convs(m).items():
        out = kept.get(name, c.out_channels)
        if name == "features.0": cin = 3
        elif name == "classifier.1": cin = sum(kept.get("features.12.expand" + e, 256) for e in ("1x1", "3x3"))
        elif name.endswith("squeeze"):
            i = int(name.split(".")[1]); prev = {3: None, 4: 3, 5: 4, 7: 5, 8: 7, 9: 8, 10: 9, 12: 10}[i]
            cin = kept.get("features.0", 96) if prev is None else sum(
                kept.get("features.%d.expand%s" % (prev, e), c.in_channels // 2) for e in ("1x1", "3x3"))
        else: cin = kept.get(name.rsplit(".", 1)[0] + ".squeeze", c.in_channels)
        total += out * cin * c.kernel_size[0] * c.kernel_size[1] + out
    return total

def images(split):
    ds = torchvision.datasets.ImageFolder(ROOT + "/" + split, T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), NORM]))
    return torch.stack([x for x, _ in ds]), torch.tensor(ds.targets)

def batched(f, x, b=64):
    with torch.no_grad(): return torch.cat([f(x[i:i + b]) for i in range(0, len(x), b)])

def linear_probe(ft, yt, fv, yv):
    mu, sd = ft.mean(0), ft.std(0) + 1e-6
    ft, fv = (ft - mu) / sd, (fv - mu) / sd
    best = 0.0
    for lam in (1e-3, 1e-2, 1e-1):
        w = torch.zeros(ft.shape[1], 2, requires_grad=True); b = torch.zeros(2, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=200)
        def closure():
            opt.zero_grad(); l = torch.nn.functional.cross_entropy(ft @ w + b, yt) + lam * (w ** 2).sum(); l.backward(); return l
        opt.step(closure)
        best = max(best, float(((fv @ w + b).argmax(1) == yv).float().mean()))
    return best

def probe(a):
    base = load_model(a.model)
    xt, yt = images("train"); xv, yv = images("val")
    xt = torch.cat([xt, xt.flip(3)]); yt = torch.cat([yt, yt])
    print("unpruned: val top-1 %.4f" % float((batched(base, xv).argmax(1) == yv).float().mean()))
    ht, hv = xt, xv
    for i, layer in enumerate(base.features):
        ht, hv = batched(layer, ht), batched(layer, hv)
        if isinstance(layer, torchvision.models.squeezenet.Fire):
            print("  probe on features.%d (%d channels): %.4f" % (i, ht.shape[1], linear_probe(ht.mean((2, 3)), yt, hv.mean((2, 3)), yv)), flush=True)
    p0 = params(base, {})
    for spec in a.alloc:
        m = load_model(a.model); mk = masks_of(m, json.load(open(spec))); apply(m, mk)
        f = lambda x: m.features(x).mean((2, 3))
        print("%s: params %.4f, val top-1 %.4f, probe %.4f" % (spec, params(m, mk) / p0,
              float((batched(m, xv).argmax(1) == yv).float().mean()), linear_probe(batched(f, xt), yt, batched(f, xv), yv)), flush=True)

def retrain(a):
    torch.manual_seed(1)
    m = load_model(a.model); mk = masks_of(m, json.load(open(a.alloc[0]))); apply(m, mk)
    print("params %.4f" % (params(m, mk) / params(load_model(a.model), {})))
    tr = torchvision.datasets.ImageFolder(ROOT + "/train", T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), NORM]))
    tl = torch.utils.data.DataLoader(tr, batch_size=16, shuffle=True)
    xv, yv = images("val")
    ps = [p for n, p in m.named_parameters() if not (n.startswith("features.") and int(n.split(".")[1]) < a.freeze)]
    opt = torch.optim.SGD(ps, lr=a.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, a.epochs * 5 // 8), gamma=0.1)
    best = 0.0
    for ep in range(a.epochs):
        m.train()
        for layer in m.features[:a.freeze]: layer.eval()
        for x, y in tl:
            opt.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward(); opt.step(); apply(m, mk)
        sched.step(); m.eval()
        acc = float((batched(m, xv).argmax(1) == yv).float().mean()); best = max(best, acc)
        print("epoch %d: val top-1 %.4f" % (ep + 1, acc), flush=True)
    print("best %.4f" % best)

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("mode", choices=("probe", "retrain")); ap.add_argument("model"); ap.add_argument("alloc", nargs="*")
ap.add_argument("--lr", type=float, default=1e-3); ap.add_argument("--freeze", type=int, default=8)
ap.add_argument("--epochs", type=int, default=12)
a = ap.parse_args()
torch.set_num_threads(2)
if a.mode == "retrain" and len(a.alloc) != 1: sys.exit("retrain takes one ALLOC.json")
probe(a) if a.mode == "probe" else retrain(a)
