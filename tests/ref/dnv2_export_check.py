"""Reference side of the DetectNet_v2 export test (run with /usr/bin/python3).

  dnv2_export_check.py check MODEL.onnx K BATCH   onnx.checker full_check; input 'input_1' NCHW float;
                                                  outputs output_cov/Sigmoid [B,K,h,w] and
                                                  output_bbox/BiasAdd [B,4K,h,w] (BATCH 'dyn': symbolic);
                                                  metadata_props; the last op of each output
  dnv2_export_check.py stack DUMP LIST OUT.npy     the dumped inputs of LIST's stems, one batch
  dnv2_export_check.py raw ORT_DIR RAW_DIR LIST TOL  onnxruntime's output_cov/Sigmoid and output_bbox/BiasAdd
                                                  == deft inference --dump_raw, max |diff| <= TOL
  dnv2_export_check.py int8 MODEL.onnx CAL.bin     cal.bin: one line per activation tensor of the ONNX
"""
import json
import os
import sys

import numpy as np

COV, BBOX = 'output_cov/Sigmoid', 'output_bbox/BiasAdd'


def stems(list_file):
    return [s.strip() for s in open(list_file) if s.strip()]


def dims(v):
    return [d.dim_param if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]


def check(path, k, batch):
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    k = int(k)
    assert [i.name for i in m.graph.input] == ['input_1'], [i.name for i in m.graph.input]
    di = dims(m.graph.input[0])
    assert len(di) == 4 and di[1] == 3, di
    got = {o.name: dims(o) for o in m.graph.output}
    assert list(got) == [COV, BBOX], list(got)
    h, w = di[2] // 16, di[3] // 16
    for name, c in ((COV, k), (BBOX, 4 * k)):
        d = got[name]
        assert d[1:] == [c, h, w], (name, d)
        if batch == 'dyn':
            assert isinstance(d[0], str) and isinstance(di[0], str), (d, di)
        else:
            assert d[0] == int(batch) and di[0] == int(batch), (d, di)
    prod = {o: n for n in m.graph.node for o in n.output}
    assert prod[COV].op_type == 'Sigmoid' and prod[BBOX].op_type in ('Conv', 'Add'), (prod[COV], prod[BBOX])
    meta = {p.key: p.value for p in m.metadata_props}
    for key in ('class_names', 'preprocess', 'letterbox', 'outputs', 'detectnet_v2'):
        assert key in meta, 'metadata_props has no ' + key
    pre = json.loads(meta['preprocess'])
    assert pre['channel_order'] == 'RGB' and pre['offsets'] == [0, 0, 0], pre
    print('  checker ok; input_1 %s; %s %s; %s %s' % (di, COV, got[COV], BBOX, got[BBOX]))


def stack(dump, list_file, out):
    np.save(out, np.concatenate([np.load(os.path.join(dump, s + '.npy')) for s in stems(list_file)]))


def raw(ort_dir, raw_dir, list_file, tol):
    names = stems(list_file)
    worst = 0.0
    for tensor, suffix in ((COV, 'cov'), (BBOX, 'bbox')):
        o = np.load(os.path.join(ort_dir, tensor + '.npy'))  # ort_run.js: DIR/output_cov/Sigmoid.npy
        d = np.concatenate([np.load(os.path.join(raw_dir, '%s_%s.npy' % (s, suffix))) for s in names])
        assert o.shape == d.shape, (tensor, o.shape, d.shape)
        diff = float(np.abs(o - d).max())
        print('  %s %s: max |onnxruntime - deft| = %.3g (values up to %.3g)' % (tensor, o.shape, diff,
                                                                                  float(np.abs(d).max())))
        worst = max(worst, diff)
    assert worst <= float(tol), worst


def int8(model, cal):
    import onnx
    g = onnx.load(model).graph
    acts = ['input_1'] + [o for n in g.node for o in n.output]
    lines = open(cal).read().splitlines()
    assert lines[0] == 'TRT-8601-EntropyCalibration2', lines[0]
    names = [ln.rsplit(':', 1)[0] for ln in lines[1:]]
    assert sorted(names) == sorted(acts), set(names) ^ set(acts)
    scales = [int(ln.rsplit(':', 1)[1].strip(), 16) for ln in lines[1:]]
    assert all(s > 0 for s in scales), 'zero scales'
    print('  cal.bin: %d tensors, every activation of the ONNX' % len(names))


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    {'check': check, 'stack': stack, 'raw': raw, 'int8': int8}[cmd](*args)
