#!/usr/bin/python3
"""The PyTorch peer of bench/unet_camvid.sh: torchvision's LR-ASPP (MobileNetV3-Large) or
FCN-ResNet50, or deft's own network (TAO's ResNet-18 UNet, the independent PyTorch definition
of tests/ref/unet_torch.py: the same-network speed comparison), from scratch, trained on the CamVid subset the way specs/unet_resnet18_camvid.txt
trains deft's UNet: same input size, batch, epochs, Adam, cosine decay, L2 on conv/linear
weights only, TAO's augmentation (hflip, crop-and-resize with each side moved in by U(0, ratio),
brightness U(-delta, delta) on x/255) and Unlabelled (11) ignored. One difference: the peer
scales its input x/255 where deft's spec has TAO's default x/127.5 - 1, so its brightness delta
of 0.1 is 25.5 grey levels against deft's 12.75. Validation after every
epoch, as deft does with checkpoint_interval 1; val mIoU over the 11 classes at network size
(mask resampled nearest), classes absent from both prediction and truth skipped.
Prints one JSON line: mIoU, per-class IoU, pixel accuracy, seconds per epoch, train img/s.

usage: unet_camvid_peer.py DATA_DIR [--arch lraspp|fcn|unet_resnet18] [--epochs 30] [--threads 2]
                           [--bn_momentum M] [--max_steps N (speed only)]
                           [--width 320 --height 240] [--out metrics.json]
"""
import argparse, glob, json, math, os, sys, time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import torchvision

CLASSES = ["sky", "building", "pole", "road", "pavement", "tree", "signsymbol", "fence", "car",
           "pedestrian", "bicyclist"]
IGNORE = 11


def pairs(root, split):
    out = []
    for im in sorted(glob.glob(os.path.join(root, split, "images", "*.jpg"))):
        stem = os.path.splitext(os.path.basename(im))[0]
        out.append((im, os.path.join(root, split, "labels", stem + ".png")))
    if not out:
        sys.exit("no images under %s/%s/images" % (root, split))
    return out


def load(pair, w, h, rng, augment):
    img = cv2.cvtColor(cv2.imread(pair[0], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    mask = cv2.imread(pair[1], cv2.IMREAD_UNCHANGED)
    ih, iw = mask.shape
    x0, y0, x1, y1 = 0.0, 0.0, float(iw), float(ih)
    hflip, bright = False, 0.0
    if augment:
        hflip = rng.random() < 0.5
        if rng.random() < 0.5:  # crop_and_resize_prob 0.5, ratio 0.1
            x0, x1 = rng.random() * 0.1 * iw, iw - rng.random() * 0.1 * iw
            y0, y1 = rng.random() * 0.1 * ih, ih - rng.random() * 0.1 * ih
        bright = (2 * rng.random() - 1) * 0.1  # delta 0.1 in x/255 units
    img = img[int(y0):int(math.ceil(y1)), int(x0):int(math.ceil(x1))]
    mask = mask[int(y0):int(math.ceil(y1)), int(x0):int(math.ceil(x1))]
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if img.shape[1] > w else cv2.INTER_LINEAR)
    mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    x = np.clip(img.astype(np.float32) / 255.0 + bright, 0.0, 1.0).transpose(2, 0, 1)
    if hflip:
        x, mask = x[:, :, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(x), np.ascontiguousarray(mask.astype(np.int64))


def batches(items, bs, w, h, rng, augment, drop_last):
    for i in range(0, len(items), bs):
        chunk = items[i:i + bs]
        if drop_last and len(chunk) < bs:
            return
        xs, ms = zip(*(load(p, w, h, rng, augment) for p in chunk))
        yield torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ms))


def build(arch, n):
    if arch == "unet_resnet18":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
        from unet_torch import ResNetUNet
        return ResNetUNet(18, n, 3, True)
    m = torchvision.models.segmentation
    if arch == "lraspp":
        return m.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=n)
    return m.fcn_resnet50(weights=None, weights_backbone=None, num_classes=n, aux_loss=False)


def forward(model, x):
    y = model(x)
    return y["out"] if isinstance(y, dict) else y


def evaluate(model, items, args):
    model.eval()
    conf = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    with torch.no_grad():
        for x, y in batches(items, args.batch, args.width, args.height, None, False, False):
            pred = forward(model, x).argmax(1).numpy().ravel()
            t = y.numpy().ravel()
            keep = t != IGNORE
            conf += np.bincount(t[keep] * len(CLASSES) + pred[keep],
                                minlength=len(CLASSES) ** 2).reshape(len(CLASSES), len(CLASSES))
    tp = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1) - tp
    iou = np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)
    return {"mIoU": float(np.nanmean(iou)), "pixel_accuracy": float(tp.sum() / conf.sum()),
            "iou": {c: (None if np.isnan(v) else float(v)) for c, v in zip(CLASSES, iou)}}


def train_step(model, opt, x, y):
    loss = F.cross_entropy(forward(model, x), y, ignore_index=IGNORE)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def speed_only(model, opt, train, args, rng):
    model.train()
    timed, n = 0.0, 0
    for step, (x, y) in enumerate(batches(train, args.batch, args.width, args.height, rng, True, True)):
        if step >= args.max_steps:
            break
        t0 = time.time()
        train_step(model, opt, x, y)
        print("step %d/%d %.1fs" % (step + 1, args.max_steps, time.time() - t0), file=sys.stderr, flush=True)
        if step > 0 or args.max_steps == 1:
            timed, n = timed + time.time() - t0, n + x.shape[0]
    m = {"arch": args.arch, "threads": args.threads, "timed_steps": max(args.max_steps - 1, 1),
         "train_images_per_second": n / timed, "params": sum(p.numel() for p in model.parameters())}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(m, f, indent=1)
    print(json.dumps(m))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--arch", choices=["lraspp", "fcn", "unet_resnet18"], default="lraspp")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bn_momentum", type=float, default=None,
                    help="every BatchNorm's momentum (torchvision's MobileNetV3 uses 0.01, tuned for long "
                         "ImageNet runs: its running statistics lag a short run from scratch; deft uses 0.1)")
    ap.add_argument("--max_steps", type=int, default=0,
                    help="speed only: train this many steps (the first one untimed, a warm-up), no validation; "
                         "reports train img/s (for networks too slow here for a whole epoch)")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train, val = pairs(args.data, "train"), pairs(args.data, "val")
    model = build(args.arch, len(CLASSES))
    for mod in model.modules():
        if args.bn_momentum is not None and isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = args.bn_momentum
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    # Keras L2(1e-5) adds 1e-5 * sum(w^2) to the loss: gradient 2e-5 * w
    opt = torch.optim.Adam([{"params": decay, "weight_decay": 2e-5}, {"params": no_decay, "weight_decay": 0.0}],
                           lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    steps_per_epoch = len(train) // args.batch
    total = steps_per_epoch * args.epochs

    def lr_at(step):  # TF cosine_decay with alpha 0.01 over all steps
        p = min(step, total) / total
        return args.lr * ((1 - 0.01) * 0.5 * (1 + math.cos(math.pi * p)) + 0.01)

    if args.max_steps:
        return speed_only(model, opt, train, args, rng)
    step, train_s, t_start = 0, 0.0, time.time()
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(train))
        t0, loss_sum = time.time(), 0.0
        for x, y in batches([train[i] for i in order], args.batch, args.width, args.height, rng, True, True):
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            loss_sum += train_step(model, opt, x, y)
            step += 1
        train_s += time.time() - t0
        m = evaluate(model, val, args)
        print("epoch %d/%d loss %.4f val mIoU %.4f pixel acc %.4f %.0fs" %
              (epoch + 1, args.epochs, loss_sum / steps_per_epoch, m["mIoU"], m["pixel_accuracy"],
               time.time() - t0), file=sys.stderr, flush=True)
    wall = time.time() - t_start
    m.update({"arch": args.arch, "epochs": args.epochs, "threads": args.threads, "bn_momentum": args.bn_momentum,
              "seconds_per_epoch": wall / args.epochs,
              "train_images_per_second": steps_per_epoch * args.batch * args.epochs / train_s,
              "params": sum(p.numel() for p in model.parameters())})
    if args.out:
        with open(args.out, "w") as f:
            json.dump(m, f, indent=1)
    print(json.dumps(m))


if __name__ == "__main__":
    main()
