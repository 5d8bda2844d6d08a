"""Reference side of the ONNX export tests (run with /usr/bin/python3).

  export_check.py perturb_bn MODEL.safetensors      random BN running stats / affine
                                                    (so folding is really exercised)
  export_check.py check MODEL.onnx                  onnx.checker full_check + strict
                                                    shape inference; input/output names
  export_check.py opencv MODEL.onnx IN.npy OUT.npy  OpenCV DNN forward
  export_check.py compare A.npy B.npy TOL [softmax] max abs diff (optionally softmax(A) vs B)
  export_check.py batch FILE                        each line OK_MSG<TAB>BAD_MSG<TAB>CMD ARGS[ ; CMD
                                                    ARGS..]: the commands above in one start
                                                    (onnx and cv2 imported once); prints
                                                    "RESULT ok OK_MSG" or "RESULT bad BAD_MSG"
  export_check.py calib_ref MODEL.onnx X.npy CALIB.json METHOD [PCT]
                                                    every tensor's range recomputed from
                                                    OpenCV DNN's activations on the same
                                                    images (NVIDIA's published algorithms)
  export_check.py calcache CAL.bin CALIB.json MODEL.onnx
                                                    header, every line, scale == amax/127,
                                                    names == the graph's activation tensors
"""
import json
import re
import struct
import sys

import numpy as np


def perturb_bn(path):
    # safetensors: u64 header size, JSON header, data; BN tensors rewritten in place
    with open(path, 'rb') as f:
        raw = bytearray(f.read())
    n = struct.unpack('<Q', raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    rng = np.random.default_rng(7)
    base = 8 + n
    for name, info in hdr.items():
        if name == '__metadata__' or info['dtype'] != 'F32':
            continue
        b, e = info['data_offsets']
        k = (e - b) // 4
        if name.endswith('running_mean'):
            v = rng.uniform(-0.3, 0.3, k)
        elif name.endswith('running_var'):
            v = rng.uniform(0.5, 2.0, k)
        elif re.search(r'(bn\d?|norm|\.1|bn)\.weight$', name) and len(info['shape']) == 1 and \
                name.replace('.weight', '.running_var') in hdr:
            v = rng.uniform(0.5, 1.5, k)
        elif name.endswith('.bias') and name.replace('.bias', '.running_var') in hdr:
            v = rng.uniform(-0.2, 0.2, k)
        else:
            continue
        raw[base + b:base + e] = v.astype('<f4').tobytes()
    with open(path, 'wb') as f:
        f.write(raw)


def check(path):
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    onnx.shape_inference.infer_shapes(m, strict_mode=True)
    ins = [i.name for i in m.graph.input]
    outs = [o.name for o in m.graph.output]
    assert ins == ['input_1'], ins
    assert len(outs) == 1 and outs[0] in ('logits', 'predictions', 'class_map'), outs
    assert m.opset_import[0].version >= 11 and m.graph.initializer, 'opset / initializers'
    assert not any(n.op_type == 'BatchNormalization' for n in m.graph.node) or \
        not any(n.op_type == 'Conv' for n in m.graph.node if n.output[0] in
                [b.input[0] for b in m.graph.node if b.op_type == 'BatchNormalization']), 'BN not folded'


def opencv(path, inp, out):
    import cv2
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(np.load(inp))
    np.save(out, net.forward().astype(np.float32))


def compare(a, b, tol, softmax=False):
    x, y = np.load(a).astype(np.float64), np.load(b).astype(np.float64)
    if softmax:
        x = np.exp(x - x.max(1, keepdims=True))
        x /= x.sum(1, keepdims=True)
    if x.size != y.size:
        print('  size %s vs %s' % (x.shape, y.shape))
        sys.exit(1)
    x = x.reshape(y.shape)
    d = float(np.abs(x - y).max())
    # random-weight deep nets can have logits in the hundreds: the bound is
    # tol relative to the output's magnitude (at least 1)
    mag = max(1.0, float(np.abs(x).max()))
    # argmax must agree wherever the reference's top two are not a float tie
    top2 = np.sort(x, -1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 10 * float(tol) * mag
    same = bool((x.argmax(-1) == y.argmax(-1))[clear].all())
    print('  max abs diff %.3g (max |output| %.3g), argmax %s (%d of %d rows without a tie)' %
          (d, mag, 'identical' if same else 'DIFFERS', int(clear.sum()), clear.size))
    sys.exit(0 if d <= float(tol) * mag and same else 1)


def calcache(cal, js, onnx_path):
    import onnx
    m = onnx.load(onnx_path)
    inits = {i.name for i in m.graph.initializer}
    acts = [i.name for i in m.graph.input] + [o for n in m.graph.node for o in n.output if o not in inits]
    amax = json.load(open(js))['tensor_scales']
    lines = open(cal).read().split('\n')
    assert re.fullmatch(r'TRT-\d{4,6}-(EntropyCalibration2|MinMaxCalibration)', lines[0]), lines[0]
    assert lines[-1] == '', 'no final newline'
    names = []
    for ln in lines[1:-1]:
        i = ln.rindex(':')  # names may contain ':'; the hex never does
        name, hx = ln[:i], ln[i + 1:]
        assert hx[0] == ' ' and re.fullmatch(r'[0-9a-f]{1,8}', hx[1:]), ln
        scale = struct.unpack('>f', int(hx[1:], 16).to_bytes(4, 'big'))[0]
        want = np.float32(np.float32(amax[name]) / np.float32(127))
        assert scale == want, '%s: scale %r, amax/127 = %r' % (name, scale, want)
        assert np.isfinite(scale) and scale >= 0, ln
        names.append(name)
    assert names == acts, 'cal.bin names differ from the graph: %s' % (set(names) ^ set(acts))
    print('  %d tensors, header %s' % (len(names), lines[0]))


def kl_curve(h):
    """KL(P||Q) for keeping i = 128..2048 bins (formats.md 2.3), vectorized."""
    h = h.astype(np.float64).copy()
    h[0] = h[1]
    cs, nzs = np.concatenate([[0], np.cumsum(h)]), np.concatenate([[0], np.cumsum(h != 0)])
    kl = np.full(2049, np.inf)
    for i in range(128, 2049):
        lo = (np.arange(129) * i) // 128
        g = np.searchsorted(lo, np.arange(i), side='right') - 1
        gsum, gnz = cs[lo[1:]] - cs[lo[:-1]], nzs[lo[1:]] - nzs[lo[:-1]]
        q = np.where(h[:i] != 0, gsum[g] / np.maximum(gnz[g], 1), 0.0)
        p = h[:i].copy()
        p[i - 1] += h[i:].sum()
        m = p > 0
        if q.sum() == 0 or (q[m] == 0).any():
            continue
        p, q = p / p.sum(), q / q.sum()
        kl[i] = float((p[m] * np.log(p[m] / q[m])).sum())
    return kl


def ref_amax(a, method, pct):
    """The calibrators as formats.md 2.3 describes them, on |a|: (amax, bin
    width, KL curve or None)."""
    a = np.abs(a.astype(np.float64)).ravel()
    mx = float(a.max())
    if mx == 0 or method == 'minmax':
        return mx, mx / 2048, None
    h, _ = np.histogram(a, bins=2048, range=(0, mx))
    if method == 'percentile':
        c = np.cumsum(h) / h.sum()
        return (int(np.argmax(c >= pct / 100.0)) + 1) * mx / 2048, mx / 2048, None
    kl = kl_curve(h)
    best = int(np.flatnonzero(kl == kl.min())[-1])  # ties: the larger range
    return best * mx / 2048, mx / 2048, kl


def calib_ref(onnx_path, xs, js, method, pct=99.99):
    import cv2
    import onnx
    m = onnx.load(onnx_path)
    amax = json.load(open(js))['tensor_scales']
    # Softmax/Sigmoid outputs have the fixed range [0, 1] (DEFT_ONNX_RANGE_UNIT)
    nodes = [n for n in m.graph.node if n.op_type not in ('Softmax', 'Sigmoid', 'HardSigmoid')]
    outs = [n.output[0] for n in nodes]
    net = cv2.dnn.readNetFromONNX(onnx_path)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    x = np.load(xs)
    net.setInput(x)
    have = set(net.getLayerNames())  # OpenCV names a layer 'onnx_node!<node name>'
    sel = [n for n in nodes if n.output[0] in amax and 'onnx_node!' + n.name in have]
    acts = dict(zip([n.output[0] for n in sel], net.forward(['onnx_node!' + n.name for n in sel])))
    acts['input_1'] = x
    worst, n, flat = 0.0, 0, 0
    for name, a in acts.items():
        ref, bin_w, kl = ref_amax(a, method, float(pct))
        got = amax[name]
        # deft's and OpenCV's activations differ by float rounding: a value
        # may land in the next bin, so allow two bins (and 1e-4 relative);
        # the KL curve can be flat, so for entropy deft's choice may also be
        # anywhere its divergence is within 1% of the minimum
        tol = 2 * bin_w + 1e-4 * max(ref, 1e-6)
        near_min = kl is not None and 128 <= round(got / bin_w) <= 2048 and \
            kl[int(round(got / bin_w))] <= kl.min() * 1.01 + 1e-12
        if abs(got - ref) > tol and not near_min:
            print('  %s: amax %.6g, reference %.6g (bin %.3g)' % (name, got, ref, bin_w))
            sys.exit(1)
        worst = max(worst, abs(got - ref) / max(bin_w, 1e-12))
        flat += abs(got - ref) > tol
        n += 1
    for n_ in m.graph.node:
        if n_.op_type in ('Softmax', 'Sigmoid', 'HardSigmoid') and amax[n_.output[0]] != 1.0:
            print('  %s: amax %r, [0, 1] expected' % (n_.output[0], amax[n_.output[0]]))
            sys.exit(1)
    if n < len(outs) // 2:
        print('  only %d of %d tensors compared' % (n, len(outs)))
        sys.exit(1)
    print('  %s: %d tensors recomputed, %d within 2 bins, %d elsewhere on a flat KL minimum '
          '(largest difference %.0f bins)' % (method, n, n - flat, flat, worst))


def batch(path):
    for line in open(path):
        if not line.strip():
            continue
        ok_msg, bad_msg, chain = line.rstrip('\n').split('\t')
        good = True
        for cmd in chain.split(' ; '):
            try:
                main(cmd.split())
            except SystemExit as e:
                good = e.code in (None, 0)
            except Exception:
                import traceback
                traceback.print_exc(file=sys.stdout)
                good = False
            if not good:
                break
        sys.stdout.flush()
        print('RESULT ok ' + ok_msg if good else 'RESULT bad ' + bad_msg, flush=True)


def main(argv):
    c = argv[0]
    if c == 'perturb_bn':
        perturb_bn(argv[1])
    elif c == 'check':
        check(argv[1])
    elif c == 'opencv':
        opencv(*argv[1:4])
    elif c == 'compare':
        compare(argv[1], argv[2], argv[3], len(argv) > 4)
    elif c == 'calib_ref':
        calib_ref(*argv[1:])
    elif c == 'batch':
        batch(argv[1])
    elif c == 'calcache':
        calcache(*argv[1:4])
    else:
        sys.exit('unknown command ' + c)


if __name__ == '__main__':
    main(sys.argv[1:])
