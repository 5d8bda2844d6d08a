"""Run an exported YOLOv4 ONNX (`deft yolo_v4 export --nms onnx`, float or QDQ) in
onnxruntime-node over a spec's validation images and write KITTI predictions (the
score as a 16th field) in image pixels, for `deft detection score`.
Called by bench/yolo_onnx_score.sh (see there); run with /usr/bin/python3.

  yolo_onnx_score.py MODEL.onnx SPEC OUT_DIR [--inputs DUMP_DIR] [--batch N]
  yolo_onnx_score.py --link_images SPEC DIR   the spec's validation images as links in DIR
                                              (for `deft <net> inference -i DIR`)

The input of each image is either
  - made here from the model's metadata_props alone (what a consumer of the ONNX
    does): OpenCV decodes the image at full size, the letterbox rule of the
    'letterbox' entry (bilinear, cv2.INTER_LINEAR on float pixels) and the
    'preprocess' entry (channel order, offsets, scale); or
  - with --inputs, what `deft <net> inference --dump_input DUMP_DIR` fed deft's own
    model (<stem>.npy and the letterbox <stem>.json), so only the runtimes differ.
Boxes go back to the image as deft inference does: x = (x_norm*net_w - off_x) /
scale_x, clipped to the image.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ORT_RUN = os.path.join(HERE, '..', 'tests', 'ref', 'ort_run.js')


def val_sources(spec):
    """(image_dir, label_dir, split_list or None) of each validation_data_sources block."""
    text = open(spec).read()
    out = []
    for m in re.finditer(r'validation_data_sources\s*:?\s*\{([^}]*)\}', text):
        body = m.group(1)

        def field(k):
            f = re.search(k + r'\s*:\s*"([^"]*)"', body)
            return f.group(1) if f else None
        out.append((field('image_directory_path'), field('label_directory_path'), field('split_list_path')))
    if not out:
        sys.exit('%s: no validation_data_sources block (protobuf text with quoted paths)' % spec)
    return out


def val_images(spec):
    items = []
    for img_dir, lab_dir, split in val_sources(spec):
        if split:
            stems = [s.strip() for s in open(split) if s.strip()]
        else:
            stems = sorted(os.path.splitext(f)[0] for f in os.listdir(lab_dir) if f.endswith('.txt'))
        files = {os.path.splitext(f)[0]: f for f in os.listdir(img_dir)
                 if f.lower().endswith(('.jpg', '.jpeg', '.png', '.bmp'))}
        for s in stems:
            if s in files:
                items.append((s, os.path.join(img_dir, files[s]), os.path.join(lab_dir, s + '.txt')))
    return items


def letterbox(img_w, img_h, net_w, net_h):
    # deft_letterbox_make: round half away from zero, centred with integer division
    r = min(net_w / img_w, net_h / img_h)
    cw = min(max(int(np.floor(r * img_w + 0.5)), 1), net_w)
    ch = min(max(int(np.floor(r * img_h + 0.5)), 1), net_h)
    return {'net_w': net_w, 'net_h': net_h, 'img_w': img_w, 'img_h': img_h, 'content_w': cw, 'content_h': ch,
            'scale_x': np.float32(cw / img_w), 'scale_y': np.float32(ch / img_h),
            'off_x': (net_w - cw) // 2, 'off_y': (net_h - ch) // 2}


def preprocess(path, meta):
    import cv2
    lbm, pre = json.loads(meta['letterbox']), json.loads(meta['preprocess'])
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit('cannot read ' + path)
    h, w = bgr.shape[:2]
    lb = letterbox(w, h, lbm['net_w'], lbm['net_h'])
    img = bgr if pre['channel_order'] == 'BGR' else bgr[:, :, ::-1]
    img = cv2.resize(img.astype(np.float32), (lb['content_w'], lb['content_h']), interpolation=cv2.INTER_LINEAR)
    off = np.array(pre['offsets'], np.float32)
    x = np.tile(off, (lb['net_h'], lb['net_w'], 1))  # padding: the offsets, 0 after preprocessing
    x[lb['off_y']:lb['off_y'] + lb['content_h'], lb['off_x']:lb['off_x'] + lb['content_w']] = img
    x = (x - off) * np.array(pre['scale'], np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32), lb


def to_image(box, lb):
    x = np.array([box[0] * lb['net_w'], box[1] * lb['net_h'], box[2] * lb['net_w'], box[3] * lb['net_h']],
                 dtype=np.float32)
    x[[0, 2]] = np.clip((x[[0, 2]] - np.float32(lb['off_x'])) / np.float32(lb['scale_x']), 0, lb['img_w'])
    x[[1, 3]] = np.clip((x[[1, 3]] - np.float32(lb['off_y'])) / np.float32(lb['scale_y']), 0, lb['img_h'])
    return x


def main():
    args = sys.argv[1:]
    if args and args[0] == '--link_images':
        os.makedirs(args[2], exist_ok=True)
        for _, img, _ in val_images(args[1]):
            dst = os.path.join(args[2], os.path.basename(img))
            if not os.path.exists(dst):
                os.symlink(os.path.abspath(img), dst)
        return
    inputs, batch = None, 8
    if '--inputs' in args:
        i = args.index('--inputs')
        inputs = args[i + 1]
        del args[i:i + 2]
    if '--batch' in args:
        i = args.index('--batch')
        batch = int(args[i + 1])
        del args[i:i + 2]
    model, spec, out = args
    import onnx
    meta = {p.key: p.value for p in onnx.load(model, load_external_data=False).metadata_props}
    names = json.loads(meta['class_names'])
    if json.loads(meta['nms'])['mode'] != 'onnx':
        sys.exit('%s: export it with --nms onnx (onnxruntime does not run the TensorRT plugin)' % model)
    items = val_images(spec)
    pred, gt = os.path.join(out, 'pred'), os.path.join(out, 'gt')
    os.makedirs(pred, exist_ok=True)
    os.makedirs(gt, exist_ok=True)
    n_det = 0
    with tempfile.TemporaryDirectory() as tmp:
        for b0 in range(0, len(items), batch):
            chunk = items[b0:b0 + batch]
            xs, lbs = [], []
            for stem, img, _ in chunk:
                if inputs:
                    xs.append(np.load(os.path.join(inputs, stem + '.npy')))
                    lbs.append(json.load(open(os.path.join(inputs, stem + '.json'))))
                else:
                    x, lb = preprocess(img, meta)
                    xs.append(x)
                    lbs.append(lb)
            np.save(os.path.join(tmp, 'x.npy'), np.concatenate(xs))
            subprocess.run(['node', ORT_RUN, model, os.path.join(tmp, 'x.npy'), os.path.join(tmp, 'o') + '/'],
                           check=True)
            k = np.load(os.path.join(tmp, 'o', 'num_detections.npy'))
            boxes = np.load(os.path.join(tmp, 'o', 'detection_boxes.npy'))
            scores = np.load(os.path.join(tmp, 'o', 'detection_scores.npy'))
            classes = np.load(os.path.join(tmp, 'o', 'detection_classes.npy'))
            for i, (stem, _, label) in enumerate(chunk):
                with open(os.path.join(pred, stem + '.txt'), 'w') as f:
                    for j in range(int(k[i, 0])):
                        x = to_image(boxes[i, j], lbs[i])
                        f.write('%s 0.00 0 0.00 %.4f %.4f %.4f %.4f 0.00 0.00 0.00 0.00 0.00 0.00 0.00 %.6f\n' %
                                (names[classes[i, j]], x[0], x[1], x[2], x[3], scores[i, j]))
                        n_det += 1
                dst = os.path.join(gt, stem + '.txt')
                if not os.path.exists(dst):
                    os.symlink(os.path.abspath(label), dst)
            print('\r  %d/%d images' % (min(b0 + batch, len(items)), len(items)), end='', file=sys.stderr)
    print('', file=sys.stderr)
    print('%d images, %d detections (%s input) -> %s' % (len(items), n_det,
                                                         'deft --dump_input' if inputs else 'metadata', pred))


if __name__ == '__main__':
    main()
