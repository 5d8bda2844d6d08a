"""Reference side of the YOLOv4 export tests (run with /usr/bin/python3).

  yolo_export_check.py check MODEL.onnx OUT1,OUT2,..     onnx.checker full_check; input 'Input'
                                                         NCHW float; these outputs in this order;
                                                         metadata_props a consumer needs
  yolo_export_check.py stack DUMP_DIR LIST OUT.npy       the dumped inputs of the images in LIST
                                                         (stems, one a line) as one batch
  yolo_export_check.py dets MODEL.onnx DEFT.json DUMP_DIR LIST ORT_DIR
                                                         ORT's --nms onnx outputs for that batch,
                                                         mapped back to image pixels through each
                                                         image's letterbox, against `deft inference
                                                         --json`: same count, classes, boxes within
                                                         0.5 px, scores within 1e-4
  yolo_export_check.py trt MODEL.onnx C TOPK CONF IOU NUM_BOXES
                                                         the BatchedNMSDynamic_TRT node, its attributes,
                                                         the graph outputs' names, types and shapes
  yolo_export_check.py cut MODEL.onnx OUT.onnx           the graph with the plugin cut off: its inputs
                                                         become the outputs
  yolo_export_check.py same_raw A_DIR B_DIR              boxes and scores of the cut trt graph equal
                                                         the --nms none export's
"""
import json
import os
import sys

import numpy as np


def check(path, outs):
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ins = m.graph.input
    assert [i.name for i in ins] == ['Input'], [i.name for i in ins]
    t = ins[0].type.tensor_type
    assert t.elem_type == onnx.TensorProto.FLOAT and len(t.shape.dim) == 4 and t.shape.dim[1].dim_value == 3, t
    got = [o.name for o in m.graph.output]
    assert got == outs.split(','), got
    meta = {p.key: p.value for p in m.metadata_props}
    for k in ('class_names', 'preprocess', 'letterbox', 'nms', 'outputs', 'yolo'):
        assert k in meta, 'metadata_props has no ' + k
    pre = json.loads(meta['preprocess'])
    assert pre['channel_order'] in ('BGR', 'RGB') and len(pre['offsets']) == 3, pre
    lb = json.loads(meta['letterbox'])
    assert lb['type'] == 'letterbox' and lb['align'] == 'center', lb
    assert lb['net_h'] == t.shape.dim[2].dim_value and lb['net_w'] == t.shape.dim[3].dim_value, lb
    print('  checker ok; outputs %s; %s %s offsets %s' % (got, lb['resize'], pre['channel_order'], pre['offsets']))


def stems(list_file):
    return [s.strip() for s in open(list_file) if s.strip()]


def stack(dump, list_file, out):
    np.save(out, np.concatenate([np.load(os.path.join(dump, s + '.npy')) for s in stems(list_file)]))


def to_image(box, lb):
    # deft_letterbox_box_to_image of the box in network pixels
    x = np.array([box[0] * lb['net_w'], box[1] * lb['net_h'], box[2] * lb['net_w'], box[3] * lb['net_h']],
                 dtype=np.float64)
    x[[0, 2]] = np.clip((x[[0, 2]] - lb['off_x']) / lb['scale_x'], 0, lb['img_w'])
    x[[1, 3]] = np.clip((x[[1, 3]] - lb['off_y']) / lb['scale_y'], 0, lb['img_h'])
    return x


def dets(model, deft_json, dump, list_file, ort):
    import onnx
    d = {os.path.splitext(os.path.basename(e['image']))[0]: e['detections'] for e in json.load(open(deft_json))}
    n = np.load(os.path.join(ort, 'num_detections.npy'))
    boxes = np.load(os.path.join(ort, 'detection_boxes.npy'))
    scores = np.load(os.path.join(ort, 'detection_scores.npy'))
    classes = np.load(os.path.join(ort, 'detection_classes.npy'))
    names = json.loads({p.key: p.value for p in onnx.load(model).metadata_props}['class_names'])
    assert n.dtype == np.int32 and classes.dtype == np.int32, (n.dtype, classes.dtype)
    worst_box = worst_score = 0.0
    total = 0
    order_same = True
    for i, s in enumerate(stems(list_file)):
        lb = json.load(open(os.path.join(dump, s + '.json')))
        k = int(n[i, 0])
        ref = d[s]
        assert k == len(ref), '%s: onnxruntime keeps %d boxes, deft %d' % (s, k, len(ref))
        assert np.all(scores[i, k:] == 0) and np.all(classes[i, k:] == -1) and np.all(boxes[i, k:] == 0), \
            '%s: padding after num_detections' % s
        # one to one: each ORT detection takes an unmatched deft one of its class with the box
        # within 0.5 px and the score within 1e-4 (order may differ among scores closer than
        # onnxruntime's float sigmoid is to deft's double one, ~3e-6)
        used = [False] * k
        for j in range(k):
            b = to_image(boxes[i, j], lb)
            cls = names[classes[i, j]]
            best = None
            for q, r in enumerate(ref):
                if used[q] or r['class'] != cls or abs(float(scores[i, j]) - r['score']) > 1e-4:
                    continue
                e = float(np.abs(b - np.array(r['bbox'])).max())
                if e <= 0.5 and (best is None or e < best[1]):
                    best = (q, e)
            assert best is not None, '%s: onnxruntime detection #%d (%s %.6f %s) has no deft match' % (
                s, j, cls, scores[i, j], b.round(2).tolist())
            used[best[0]] = True
            worst_box = max(worst_box, best[1])
            worst_score = max(worst_score, abs(float(scores[i, j]) - ref[best[0]]['score']))
            order_same = order_same and best[0] == j
        total += k
    print('  %d detections on %d images (%s order); max |box diff| %.3g px, max |score diff| %.3g' %
          (total, len(stems(list_file)), 'same' if order_same else 'near-tie swaps in the', worst_box, worst_score))
    assert total > 0, 'no detections to compare'
    assert worst_box <= 0.5 and worst_score <= 1e-4, (worst_box, worst_score)


def attr(node, name):
    import onnx
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    raise AssertionError('BatchedNMSDynamic_TRT has no attribute ' + name)


def trt(path, c, top_k, conf, iou, num_boxes):
    import onnx
    m = onnx.load(path)
    c, top_k, num_boxes = int(c), int(top_k), int(num_boxes)
    nodes = [n for n in m.graph.node if n.op_type == 'BatchedNMSDynamic_TRT']
    assert len(nodes) == 1, 'one BatchedNMSDynamic_TRT node'
    n = nodes[0]
    assert m.graph.node[-1].op_type == 'BatchedNMSDynamic_TRT', 'the plugin ends the graph'
    assert [i.name for i in m.graph.input] == ['Input']
    want = {'shareLocation': 1, 'backgroundLabelId': -1, 'numClasses': c, 'topK': min(num_boxes, 4096),
            'keepTopK': top_k, 'isNormalized': 1, 'clipBoxes': 1}
    for k, v in want.items():
        assert attr(n, k) == v, '%s = %s, want %s' % (k, attr(n, k), v)
    assert abs(attr(n, 'scoreThreshold') - float(conf)) < 1e-7 and abs(attr(n, 'iouThreshold') - float(iou)) < 1e-7
    outs = ['BatchedNMS', 'BatchedNMS_1', 'BatchedNMS_2', 'BatchedNMS_3']
    assert list(n.output) == outs and [o.name for o in m.graph.output] == outs, [o.name for o in m.graph.output]
    T = onnx.TensorProto
    types = [T.INT32, T.FLOAT, T.FLOAT, T.FLOAT]
    shapes = [[1], [top_k, 4], [top_k], [top_k]]
    for o, t, s in zip(m.graph.output, types, shapes):
        dims = o.type.tensor_type.shape.dim
        assert o.type.tensor_type.elem_type == t, o.name
        assert dims[0].dim_param == 'batch' and [d.dim_value for d in dims[1:]] == s, (o.name, dims)
    b, sc = n.input
    shape_of = {}
    inf = onnx.shape_inference.infer_shapes(m)
    for v in inf.graph.value_info:
        shape_of[v.name] = [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
    assert shape_of.get(b) == ['batch', num_boxes, 1, 4] and shape_of.get(sc) == ['batch', num_boxes, c], \
        (b, shape_of.get(b), sc, shape_of.get(sc))
    print('  BatchedNMSDynamic_TRT: %s; inputs %s %s, %s %s' %
          ({a.name: onnx.helper.get_attribute_value(a) for a in n.attribute if a.name != 'plugin_version'},
           b, shape_of[b], sc, shape_of[sc]))


def cut(path, out):
    import onnx
    m = onnx.load(path)
    n = [x for x in m.graph.node if x.op_type == 'BatchedNMSDynamic_TRT'][0]
    inf = onnx.shape_inference.infer_shapes(m)
    vis = {v.name: v for v in inf.graph.value_info}
    m.graph.node.remove(n)
    del m.graph.output[:]
    m.graph.output.extend([vis[i] for i in n.input])
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out)


def same_raw(a, b):
    worst = 0.0
    for name in ('boxes', 'scores'):
        x, y = np.load(os.path.join(a, name + '.npy')), np.load(os.path.join(b, name + '.npy'))
        assert x.size == y.size, (name, x.shape, y.shape)
        worst = max(worst, float(np.abs(x.reshape(y.shape) - y).max()))
    print('  boxes %s and scores %s: max abs diff %.3g' % (list(np.load(os.path.join(a, 'boxes.npy')).shape),
                                                          list(np.load(os.path.join(a, 'scores.npy')).shape), worst))
    assert worst == 0.0, worst


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    {'check': check, 'stack': stack, 'dets': dets, 'trt': trt, 'cut': cut, 'same_raw': same_raw}[cmd](*args)
