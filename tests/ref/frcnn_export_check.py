"""Reference side of the Faster R-CNN export test (run with /usr/bin/python3).

  frcnn_export_check.py check MODEL.onnx         onnx.checker full_check; one input 'Input' NCHW
                                                 float; outputs NMS [N,1,K,7] float, NMS_1 int32;
                                                 no TensorRT plugin or custom domain; metadata
  frcnn_export_check.py dets MODEL.onnx DEFT.json DUMP_DIR LIST ORT_DIR
                                                 ORT's NMS rows for the batch of LIST, mapped to
                                                 image pixels through each image's letterbox,
                                                 against `deft faster_rcnn inference --json`: same
                                                 count, classes, boxes within 0.5 px, scores within
                                                 1e-4, zero rows after the count
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from yolo_export_check import stems, stack, to_image  # noqa: E402


def check(path):
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    assert [i.name for i in m.graph.input] == ['Input'], [i.name for i in m.graph.input]
    t = m.graph.input[0].type.tensor_type
    assert t.elem_type == onnx.TensorProto.FLOAT and len(t.shape.dim) == 4 and t.shape.dim[1].dim_value == 3, t
    outs = {o.name: o.type.tensor_type for o in m.graph.output}
    assert list(outs) == ['NMS', 'NMS_1'], list(outs)
    d = [x.dim_value for x in outs['NMS'].shape.dim]
    assert outs['NMS'].elem_type == onnx.TensorProto.FLOAT and d[1:2] == [1] and d[3] == 7, d
    assert outs['NMS_1'].elem_type == onnx.TensorProto.INT32 and len(outs['NMS_1'].shape.dim) == 4
    ops = {n.op_type for n in m.graph.node}
    assert all(n.domain in ('', 'ai.onnx') for n in m.graph.node), 'custom-domain node'
    for need in ('NonMaxSuppression', 'RoiAlign', 'TopK'):
        assert need in ops, need + ' missing'
    nms = [n for n in m.graph.node if n.op_type == 'NonMaxSuppression']
    assert len(nms) == 2, 'want the proposal and the detection NMS, got %d' % len(nms)
    meta = {p.key: p.value for p in m.metadata_props}
    for k in ('class_names', 'faster_rcnn', 'nms', 'outputs'):
        assert k in meta, 'metadata_props has no ' + k
    print('  checker ok; NMS %s; %d nodes; ops include NonMaxSuppression x2, RoiAlign, TopK' % (d, len(m.graph.node)))


def dets(model, deft_json, dump, list_file, ort):
    import onnx
    d = {os.path.splitext(os.path.basename(e['image']))[0]: e['detections'] for e in json.load(open(deft_json))}
    rows = np.load(os.path.join(ort, 'NMS.npy'))
    n = np.load(os.path.join(ort, 'NMS_1.npy'))
    names = json.loads({p.key: p.value for p in onnx.load(model).metadata_props}['class_names'])
    assert n.dtype == np.int32 and rows.dtype == np.float32, (n.dtype, rows.dtype)
    worst_box = worst_score = 0.0
    total = 0
    for i, s in enumerate(stems(list_file)):
        lb = json.load(open(os.path.join(dump, s + '.json')))
        k = int(n[i, 0, 0, 0])
        ref = d[s]
        r = rows[i, 0]
        assert k == len(ref), '%s: onnxruntime keeps %d boxes, deft %d' % (s, k, len(ref))
        assert np.all(r[k:] == 0), '%s: rows after the count are not zero' % s
        assert np.all(r[:k, 0] == i), '%s: image ids %s' % (s, r[:k, 0])
        used = [False] * k
        for j in range(k):
            b = to_image(r[j, 3:7], lb)
            cls = names[int(r[j, 1])]
            best = None
            for q, e in enumerate(ref):
                if used[q] or e['class'] != cls or abs(float(r[j, 2]) - e['score']) > 1e-4:
                    continue
                err = float(np.abs(b - np.array(e['bbox'])).max())
                if err <= 0.5 and (best is None or err < best[1]):
                    best = (q, err)
            assert best is not None, '%s: onnxruntime detection #%d (%s %.6f %s) has no deft match' % (
                s, j, cls, r[j, 2], b.round(2).tolist())
            used[best[0]] = True
            worst_box = max(worst_box, best[1])
            worst_score = max(worst_score, abs(float(r[j, 2]) - ref[best[0]]['score']))
        total += k
    print('  %d detections on %d images; max |box diff| %.3g px, max |score diff| %.3g' %
          (total, len(stems(list_file)), worst_box, worst_score))
    assert total > 0, 'no detections to compare'
    assert worst_box <= 0.5 and worst_score <= 1e-4, (worst_box, worst_score)


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    {'check': check, 'stack': stack, 'dets': dets}[cmd](*args)
