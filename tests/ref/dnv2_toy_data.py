"""A tiny KITTI dataset for tests/cli/test_detectnet_v2_workflow.sh: 160x128 PNGs
with 1-3 filled rectangles of two classes (red "square", yellow "block") on a
grey ground, in ROOT/{train,val}/{images,labels}.

usage: dnv2_toy_data.py ROOT N_TRAIN N_VAL
"""
import sys, os, numpy as np, cv2
root, n_train, n_val = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(7)
for split, n in (("train", n_train), ("val", n_val)):
    os.makedirs(f"{root}/{split}/images", exist_ok=True); os.makedirs(f"{root}/{split}/labels", exist_ok=True)
    for i in range(n):
        img = np.full((128, 160, 3), 40, np.uint8); lines = []
        for _ in range(rng.integers(1, 4)):
            cls = int(rng.integers(0, 2)); w, h = (int(rng.integers(28, 48)), int(rng.integers(28, 48)))
            x, y = int(rng.integers(0, 160 - w)), int(rng.integers(0, 128 - h))
            color = (40, 40, 230) if cls == 0 else (230, 200, 40)
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), color, -1)
            lines.append(f"{'square' if cls == 0 else 'block'} 0.0 0 0.0 {x} {y} {x + w} {y + h} 0 0 0 0 0 0 0")
        cv2.imwrite(f"{root}/{split}/images/{split}{i:03d}.png", img)
        open(f"{root}/{split}/labels/{split}{i:03d}.txt", "w").write("\n".join(lines) + "\n")
