"""Reference side of the SSD export test (run with /usr/bin/python3).

  ssd_export_check.py check MODEL.onnx OUT1,OUT2,..    onnx.checker full_check; input 'Input' NCHW
                                                        float; these outputs; metadata_props incl. 'ssd'
  ssd_export_check.py trt MODEL.onnx K TOPK CONF IOU P [sigmoid]
                                                        TAO's NMSDynamic_TRT node "NMS": attributes,
                                                        inputs anchor_data (constant [1,2,4P,1]),
                                                        loc_data [N,4P,1,1], conf_data [N,PK,1,1];
                                                        outputs NMS [N,1,TOPK,7] float, NMS_1 int32;
                                                        sigmoid: TAO's RetinaNet (conf_data = the
                                                        mbox_conf logits, confSigmoid 1)
  ssd_export_check.py cut MODEL.onnx OUT.onnx ANCHOR.npy  the graph before the plugin (outputs loc_data,
                                                        conf_data) and the anchor_data constant
  ssd_export_check.py plugin_decode CUT_DIR ANCHOR.npy NONE_DIR [sigmoid]
                                                        TensorRT's NMS plugin input semantics in numpy
                                                        (codeType CENTER_SIZE, variances from the
                                                        priors' second plane, inputOrder [1,2,0],
                                                        background 0; sigmoid: the plugin's sigmoid
                                                        of conf_data) on the cut graph's outputs ==
                                                        the --nms none export's boxes and scores
  ssd_export_check.py int8 MODEL.onnx CAL.bin QDQ.onnx|- [HEADS]
                                                        cal.bin names == the network's activations;
                                                        the QDQ graph's HEADS (12) head convs float
  stack / dets: as yolo_export_check.py (ORT --nms onnx detections == deft inference)
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import yolo_export_check as yec  # noqa: E402


def check(path, outs):
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    assert [i.name for i in m.graph.input] == ['Input'], [i.name for i in m.graph.input]
    t = m.graph.input[0].type.tensor_type
    assert t.elem_type == onnx.TensorProto.FLOAT and len(t.shape.dim) == 4 and t.shape.dim[1].dim_value == 3, t
    got = [o.name for o in m.graph.output]
    assert got == outs.split(','), got
    meta = {p.key: p.value for p in m.metadata_props}
    for k in ('class_names', 'preprocess', 'letterbox', 'nms', 'outputs', 'ssd'):
        assert k in meta, 'metadata_props has no ' + k
    lb = json.loads(meta['letterbox'])
    assert lb['net_h'] == t.shape.dim[2].dim_value and lb['net_w'] == t.shape.dim[3].dim_value, lb
    ops = {n.op_type for n in m.graph.node}
    assert {'Transpose', 'Reshape', 'Concat'} <= ops and ops & {'Softmax', 'Sigmoid'}, ops  # RetinaNet: Sigmoid
    print('  checker ok; outputs %s; mbox_conf/mbox_loc by Transpose/Reshape/Concat, Softmax or Sigmoid' % got)


def attr(node, name):
    import onnx
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    raise AssertionError('NMSDynamic_TRT has no attribute ' + name)


def trt(path, k, top_k, conf, iou, p, mode='softmax'):
    import onnx
    k, top_k, p, sig = int(k), int(top_k), int(p), mode == 'sigmoid'
    m = onnx.load(path)
    nodes = [n for n in m.graph.node if n.op_type == 'NMSDynamic_TRT']
    assert len(nodes) == 1 and nodes[0].name == 'NMS', 'one NMSDynamic_TRT node named NMS'
    n = nodes[0]
    assert m.graph.node[-1] == n, 'the plugin ends the graph'
    want = {'shareLocation': 1, 'varianceEncodedInTarget': 0, 'backgroundLabelId': 0, 'topK': min(2 * top_k, 4096),
            'codeType': 1, 'keepTopK': top_k, 'numClasses': k, 'inputOrder': [1, 2, 0], 'confSigmoid': int(sig),
            'isNormalized': 1}
    for a, v in want.items():
        assert attr(n, a) == v, '%s = %s, want %s' % (a, attr(n, a), v)
    assert abs(attr(n, 'confidenceThreshold') - float(conf)) < 1e-7, attr(n, 'confidenceThreshold')
    assert abs(attr(n, 'nmsThreshold') - float(iou)) < 1e-7, attr(n, 'nmsThreshold')
    attr(n, 'scoreBits')
    assert list(n.input) == ['anchor_data', 'loc_data', 'conf_data'], list(n.input)
    assert list(n.output) == ['NMS', 'NMS_1'] and [o.name for o in m.graph.output] == ['NMS', 'NMS_1']
    T = onnx.TensorProto
    for o, t, s in zip(m.graph.output, [T.FLOAT, T.INT32], [[1, top_k, 7], [1, 1, 1]]):
        dims = o.type.tensor_type.shape.dim
        assert o.type.tensor_type.elem_type == t and dims[0].dim_param == 'batch', o
        assert [d.dim_value for d in dims[1:]] == s, (o.name, dims)
    init = {i.name: i for i in m.graph.initializer}
    assert list(init['anchor_data'].dims) == [1, 2, 4 * p, 1], init['anchor_data'].dims
    inf = onnx.shape_inference.infer_shapes(m)
    shp = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim] for v in inf.graph.value_info}
    # the batch stays symbolic (onnx names it anew after a Resize, as in RetinaNet's FPN)
    sym = {n: isinstance(v[0], str) for n, v in shp.items() if v}
    assert shp.get('loc_data')[1:] == [4 * p, 1, 1] and sym['loc_data'], shp.get('loc_data')
    assert shp.get('conf_data')[1:] == [p * k, 1, 1] and sym['conf_data'], shp.get('conf_data')
    scores = 'mbox_conf' if sig else 'mbox_conf_softmax'  # RetinaNet: the plugin takes the logits
    assert shp.get(scores)[1:] == [p, k] and shp.get('mbox_loc')[1:] == [p, 4], (scores, shp.get(scores))
    cd = [x for x in m.graph.node if 'conf_data' in x.output][0]
    assert cd.op_type == 'Reshape' and cd.input[0] == scores, (cd.op_type, list(cd.input))
    assert not sig or not any(x.op_type in ('Sigmoid', 'Softmax') for x in m.graph.node), 'a sigmoid before the plugin'
    print('  NMSDynamic_TRT "NMS": %s; loc_data %s conf_data %s anchor_data %s' % (
        {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}, shp['loc_data'], shp['conf_data'],
        list(init['anchor_data'].dims)))


def cut(path, out, anchor):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    n = [x for x in m.graph.node if x.op_type == 'NMSDynamic_TRT'][0]
    inf = onnx.shape_inference.infer_shapes(m)
    vis = {v.name: v for v in inf.graph.value_info}
    np.save(anchor, numpy_helper.to_array([i for i in m.graph.initializer if i.name == 'anchor_data'][0]))
    m.graph.node.remove(n)
    del m.graph.output[:]
    m.graph.output.extend([vis['loc_data'], vis['conf_data']])
    keep = [i for i in m.graph.initializer if i.name != 'anchor_data']
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out)


def plugin_decode(cut_dir, anchor, none_dir, mode='softmax'):
    # float32 as the plugin computes, so exp() overflows (a barely trained head) where it does
    a = np.load(anchor)[0, :, :, 0].reshape(2, -1, 4).astype(np.float32)
    pri, var = a[0], a[1]
    loc = np.load(os.path.join(cut_dir, 'loc_data.npy')).astype(np.float32)
    conf = np.load(os.path.join(cut_dir, 'conf_data.npy')).astype(np.float64)
    n, p = loc.shape[0], pri.shape[0]
    loc = loc.reshape(n, p, 4)
    conf = conf.reshape(n, p, -1)
    if mode == 'sigmoid':  # confSigmoid 1: the plugin's own sigmoid of each logit
        conf = 1 / (1 + np.exp(-conf))
    pw, ph = pri[:, 2] - pri[:, 0], pri[:, 3] - pri[:, 1]
    pcx, pcy = (pri[:, 0] + pri[:, 2]) / 2, (pri[:, 1] + pri[:, 3]) / 2
    cx = var[:, 0] * loc[..., 0] * pw + pcx
    cy = var[:, 1] * loc[..., 1] * ph + pcy
    w = np.exp(var[:, 2] * loc[..., 2]) * pw
    h = np.exp(var[:, 3] * loc[..., 3]) * ph
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    ref_b = np.load(os.path.join(none_dir, 'boxes.npy'))
    ref_s = np.load(os.path.join(none_dir, 'scores.npy'))
    with np.errstate(over='ignore', invalid='ignore'):
        fin = np.isfinite(ref_b) & np.isfinite(boxes)
        odd = int((np.isfinite(ref_b) != np.isfinite(boxes)).sum())  # exp() at the float32 edge
        assert odd <= 1e-4 * boxes.size, '%d coordinates finite in one and not the other' % odd
        d = np.abs(boxes.astype(np.float64) - ref_b)[fin] / np.maximum(1.0, np.abs(ref_b[fin]))
    eb = float(d.max())
    es = float(np.abs(conf[..., 1:] - ref_s).max())
    rows = float(np.abs(conf.sum(-1) - 1).max()) if mode != 'sigmoid' else 0.0
    print('  plugin view of loc_data/conf_data/anchor_data vs --nms none: %d images x %d priors, max box diff '
          '%.3g (relative above 1; %d coordinates overflow), max |score diff| %.3g%s' % (
              n, p, eb, int((~fin).sum()), es,
              ' (sigmoid of the logits)' if mode == 'sigmoid' else ', softmax rows sum to 1 within %.3g' % rows))
    assert eb < 1e-5 and es < 1e-6 and rows < 1e-5, (eb, es, rows)


def int8(model, cal, qdq, heads=12):
    import onnx
    g = onnx.load(model).graph
    acts = ['Input'] + [o for n in g.node if not n.name.startswith('decode/') and not n.name.startswith('nms/')
                        and n.op_type != 'NMSDynamic_TRT' for o in n.output]
    lines = open(cal).read().splitlines()
    assert lines[0] == 'TRT-8601-EntropyCalibration2', lines[0]
    names = [ln.rsplit(':', 1)[0] for ln in lines[1:]]
    assert sorted(names) == sorted(acts), set(names) ^ set(acts)
    if qdq == '-':
        print('  cal.bin %d tensors == the network\'s activations' % len(names))
        return
    qg = onnx.load(qdq).graph
    prod = {o: n for n in qg.node for o in n.output}
    convs = [n for n in qg.node if n.op_type == 'Conv']
    deq = [n for n in convs if n.input[0] in prod and prod[n.input[0]].op_type == 'DequantizeLinear']
    assert len(convs) - len(deq) == int(heads) and len(deq) > 10, (len(convs), len(deq))
    print('  cal.bin %d tensors; QDQ: %d convs quantized, the %s head convs float' % (len(names), len(deq), heads))


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    {'check': check, 'trt': trt, 'int8': int8, 'cut': cut, 'plugin_decode': plugin_decode, 'stack': yec.stack,
     'dets': yec.dets}[cmd](*args)
