#!/usr/bin/python3
"""Peer figure for issue 20's BCCD comparison (not part of make test): a torchvision detector
trained from scratch on ../shared/data/bccd (train 205 / val 87) with the given epochs, input
size and flips, then scored by `deft detection score` (TAO's INTEGRATE AP at IoU 0.5, the
definition deft's evaluate prints) so both sides are scored by the same code.

Usage: /usr/bin/python3 bench/det_bccd_peer.py --arch fasterrcnn_mobilenet_v3_large_fpn \
           --epochs 30 --out runs/bccd_peer/frcnn [--deft build/deft] [--max_steps N]
--max_steps N times N training steps and stops (speed only, no accuracy).
Prints one JSON line at the end: arch, epochs, s_per_epoch, img_per_s, map, per-class AP.
After each epoch the run's whole state (weights, optimizer, schedule, RNGs, timings) goes to
OUT/resume.pt (written to a temporary file, then renamed); a later run with the same --out and
--epochs continues from it, so a chain cut off by the end of a session loses at most one epoch.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import time

import torch
import torchvision
from torchvision.io import read_image

CLASSES = ["Platelets", "RBC", "WBC"]  # label 0 is background in torchvision


def read_split(root, name):
    with open(os.path.join(root, "ImageSets", "Main", name + ".txt")) as f:
        return [s.strip() for s in f if s.strip()]


def read_kitti(path):
    boxes, labels = [], []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 8 or p[0] not in CLASSES:
                continue
            x1, y1, x2, y2 = map(float, p[4:8])
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            boxes.append([x1, y1, x2, y2])
            labels.append(CLASSES.index(p[0]) + 1)
    return boxes, labels


class Bccd(torch.utils.data.Dataset):
    def __init__(self, root, stems, train):
        self.root, self.stems, self.train = root, stems, train

    def __len__(self):
        return len(self.stems)

    def __getitem__(self, i):
        s = self.stems[i]
        img = read_image(os.path.join(self.root, "JPEGImages", s + ".jpg")).float() / 255.0
        boxes, labels = read_kitti(os.path.join(self.root, "labels_kitti", s + ".txt"))
        b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        h, w = img.shape[1:]
        if self.train and random.random() < 0.5:  # horizontal flip
            img = img.flip(-1)
            b[:, [0, 2]] = w - b[:, [2, 0]]
        if self.train and random.random() < 0.5:  # vertical flip
            img = img.flip(-2)
            b[:, [1, 3]] = h - b[:, [3, 1]]
        return img, {"boxes": b, "labels": torch.tensor(labels, dtype=torch.int64)}, s


def build(arch, size):
    m = torchvision.models.detection
    kw = dict(weights=None, weights_backbone=None, num_classes=len(CLASSES) + 1)
    if arch == "fasterrcnn_mobilenet_v3_large_fpn":
        return m.fasterrcnn_mobilenet_v3_large_fpn(min_size=size[1], max_size=size[0], **kw)
    if arch == "ssdlite320_mobilenet_v3_large":
        return m.ssdlite320_mobilenet_v3_large(**kw)
    if arch == "fasterrcnn_resnet50_fpn":
        return m.fasterrcnn_resnet50_fpn(min_size=size[1], max_size=size[0], **kw)
    raise SystemExit("unknown --arch " + arch)


def collate(batch):
    return tuple(zip(*batch))


def evaluate(model, loader, out_dir, deft, gt_dir):
    pred = os.path.join(out_dir, "pred")
    os.makedirs(pred, exist_ok=True)
    model.eval()
    with torch.no_grad():
        for imgs, _, stems in loader:
            for r, s in zip(model(list(imgs)), stems):
                with open(os.path.join(pred, s + ".txt"), "w") as f:
                    for b, l, c in zip(r["boxes"].tolist(), r["labels"].tolist(), r["scores"].tolist()):
                        f.write("%s 0 0 0 %.2f %.2f %.2f %.2f 0 0 0 0 0 0 0 %.6f\n" % (CLASSES[l - 1], *b, c))
    model.train()
    mj = os.path.join(out_dir, "metrics.json")
    subprocess.run([deft, "detection", "score", "-l", gt_dir, "-p", pred, "-o", mj], check=True,
                   stdout=subprocess.DEVNULL)
    with open(mj) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="fasterrcnn_mobilenet_v3_large_fpn")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=416)
    ap.add_argument("--height", type=int, default=320)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max_steps", type=int, default=0)
    ap.add_argument("--eval_every", type=int, default=10)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "bccd"))
    ap.add_argument("--deft", default="build/deft")
    ap.add_argument("--out", default="runs/bccd_peer")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    gt_dir = os.path.join(a.out, "gt_val")
    os.makedirs(gt_dir, exist_ok=True)
    val = read_split(a.data, "val")
    for s in val:  # the scorer pairs by stem: a GT folder of the val split only
        dst = os.path.join(gt_dir, s + ".txt")
        if not os.path.exists(dst):
            os.symlink(os.path.abspath(os.path.join(a.data, "labels_kitti", s + ".txt")), dst)
    train_dl = torch.utils.data.DataLoader(Bccd(a.data, read_split(a.data, "train"), True), batch_size=a.batch,
                                           shuffle=True, collate_fn=collate, num_workers=0, drop_last=True)
    val_dl = torch.utils.data.DataLoader(Bccd(a.data, val, False), batch_size=a.batch, collate_fn=collate)
    model = build(a.arch, (a.width, a.height))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=5e-5)
    steps = a.epochs * len(train_dl)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: (t + 1) / warm if t < warm else 0.5 * (1 + math.cos(math.pi * (t - warm) / max(1, steps - warm))))
    step, train_s, best, hist, first = 0, 0.0, None, [], 0
    ckpt = os.path.join(a.out, "resume.pt")
    if os.path.exists(ckpt) and not a.max_steps:
        st = torch.load(ckpt)
        if st["epochs"] == a.epochs and st["arch"] == a.arch:
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["opt"])
            sched.load_state_dict(st["sched"])
            torch.set_rng_state(st["torch_rng"])
            random.setstate(st["py_rng"])
            step, train_s, best, hist, first = st["step"], st["train_s"], st["best"], st["hist"], st["next_epoch"]
            print("resumed from %s at epoch %d" % (ckpt, first + 1), flush=True)
    for ep in range(first, a.epochs):
        t0 = time.time()
        for imgs, tgts, _ in train_dl:
            loss = sum(model(list(imgs), list(tgts)).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if a.max_steps and step >= a.max_steps:
                dt = time.time() - t0
                print(json.dumps({"arch": a.arch, "steps": step, "s_per_step": dt / step,
                                  "img_per_s": step * a.batch / dt}))
                return
        train_s += time.time() - t0
        print("epoch %d loss %.4f (%.1f s)" % (ep + 1, loss.item(), time.time() - t0), flush=True)
        if (ep + 1) % a.eval_every == 0 or ep + 1 == a.epochs:
            m = evaluate(model, val_dl, a.out, a.deft, gt_dir)
            hist.append((ep + 1, m.get("mAP")))
            print("epoch %d val mAP %.4f" % (ep + 1, m.get("mAP", float("nan"))), flush=True)
            if best is None or m.get("mAP", 0) > best[1].get("mAP", 0):
                best = (ep + 1, m)
        st = {"arch": a.arch, "epochs": a.epochs, "model": model.state_dict(), "opt": opt.state_dict(),
              "sched": sched.state_dict(), "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
              "step": step, "train_s": train_s, "best": best, "hist": hist, "next_epoch": ep + 1}
        torch.save(st, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)
    n_img = len(train_dl) * a.batch
    print(json.dumps({"arch": a.arch, "epochs": a.epochs, "s_per_epoch": train_s / a.epochs,
                      "img_per_s": n_img * a.epochs / train_s, "best_epoch": best[0], "best": best[1],
                      "history": hist}))


if __name__ == "__main__":
    sys.exit(main())
