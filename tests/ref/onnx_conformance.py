"""ONNX backend node tests (Debian's libonnx-testdata) for the ops deft's
importer claims: the case files for deft and onnxruntime, then the verdicts.

  onnx_conformance.py prep SRC/src/io NODE_DIR OUT   -> OUT/<case>/{model.onnx,in.npy,exp_<k>.npy}
                                                        and OUT/cases.txt (one case a line)
  onnx_conformance.py compare OUT                    -> the counts table; exit 1 on any deft
                                                        'wrong' or 'crash'

A case is one test_data_set of a node test whose every op is in deft's
converter tables (read from src/io/onnx_*.c, so the list follows the code).
Input 0 stays the graph input; inputs 1.. become initializers holding the
test's data, the way exporters write weights and shape operands (deft's shapes
are static), and onnxruntime runs the same rewritten model. Outputs compare as
the ONNX backend runner does: rtol 1e-3, atol 1e-7, same shape.

deft's run writes one output, so a model with several also goes to deft as
deft_<k>.onnx with output k alone. The runners leave, per case and engine E (deft, ort): E.rc (exit status; >= 128
or a signal is a crash), E.err (stderr), E_<k>.npy (output k)."""
import os, re, sys
import numpy as np
import onnx
from onnx import numpy_helper as nh

RTOL, ATOL = 1e-3, 1e-7


def claimed_ops(io_dir):
    """The names in the converter tables (const struct onnx_op X[] = {...}) of src/io/onnx_*.c."""
    ops = set()
    for f in sorted(os.listdir(io_dir)):
        if f.startswith("onnx_") and f.endswith(".c"):
            for table in re.findall(r"const struct onnx_op \w+\[\] = \{(.*?)\};", open(os.path.join(io_dir, f)).read(), re.S):
                ops |= set(re.findall(r'\{"(\w+)", \w+\}', table))
    return ops


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return nh.to_array(t)


def freeze(model, inputs):
    """Inputs 1.. of the graph become initializers with the test's values."""
    g = model.graph
    keep = [i for i in g.input if i.name not in {x.name for x in g.initializer}]
    for vi, arr in list(zip(keep, inputs))[1:]:
        g.initializer.append(nh.from_array(arr, vi.name))
    del g.input[1:]
    g.input[0].CopyFrom(keep[0])
    return model


def prep(io_dir, node_dir, out):
    ops = claimed_ops(io_dir)
    cases, skipped = [], []
    for name in sorted(os.listdir(node_dir)):
        d = os.path.join(node_dir, name)
        if not os.path.isfile(os.path.join(d, "model.onnx")):
            continue
        m = onnx.load(os.path.join(d, "model.onnx"))
        if not m.graph.node or any(n.op_type not in ops or n.domain not in ("", "ai.onnx")
                                   for n in m.graph.node):
            continue
        if any(not vi.type.HasField("tensor_type") for vi in list(m.graph.input) + list(m.graph.output)):
            skipped.append(name)  # sequences, optionals: not tensors to feed or compare
            continue
        for ds in sorted(x for x in os.listdir(d) if x.startswith("test_data_set_")):
            dd = os.path.join(d, ds)
            n_in = len([f for f in os.listdir(dd) if f.startswith("input_")])
            n_out = len([f for f in os.listdir(dd) if f.startswith("output_")])
            ins = [read_pb(os.path.join(dd, "input_%d.pb" % i)) for i in range(n_in)]
            case = name + ("" if ds == "test_data_set_0" else "/" + ds)
            cd = os.path.join(out, case)
            os.makedirs(cd, exist_ok=True)
            if n_in:
                mm = onnx.ModelProto()
                mm.CopyFrom(m)
                onnx.save(freeze(mm, ins), os.path.join(cd, "model.onnx"))
                np.save(os.path.join(cd, "in.npy"), ins[0])
            else:  # nothing to feed (Constant): deft cannot run it; write the model as is
                onnx.save(m, os.path.join(cd, "model.onnx"))
                np.save(os.path.join(cd, "in.npy"), np.zeros(1, np.float32))
            if n_in and len(m.graph.output) > 1:  # deft's run writes one output: a model per output
                for k, o in enumerate(m.graph.output):
                    mk = onnx.load(os.path.join(cd, "model.onnx"))
                    del mk.graph.output[:]
                    mk.graph.output.append(o)
                    onnx.save(mk, os.path.join(cd, "deft_%d.onnx" % k))
            for k in range(n_out):
                np.save(os.path.join(cd, "exp_%d.npy" % k), read_pb(os.path.join(dd, "output_%d.pb" % k)))
            cases.append(case)
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("".join(c + "\n" for c in cases))
    print("%d cases of the %d ops deft claims%s" % (len(cases), len(ops), "; left out (sequence or optional "
          "values, not tensors): " + " ".join(skipped) if skipped else ""))


def verdict(cd, engine):
    """pass, refused, wrong or crash, and a one-line reason."""
    try:
        rc = int(open(os.path.join(cd, engine + ".rc")).read().strip() or "-1")
    except (OSError, ValueError):
        return "crash", "no exit status"
    err = open(os.path.join(cd, engine + ".err"), errors="replace").read().strip() \
        if os.path.exists(os.path.join(cd, engine + ".err")) else ""
    if rc < 0 or rc >= 128:
        return "crash", "exit %d %s" % (rc, err.splitlines()[-1] if err else "")
    if rc == 3:  # the runner's mark: imported, then the run failed (a wrong answer of sorts)
        return "wrong", "imported but did not run: " + (err.splitlines()[-1] if err else "")
    if rc != 0:
        return "refused", err.splitlines()[-1] if err else "exit %d, no message" % rc
    k = 0
    while os.path.exists(os.path.join(cd, "exp_%d.npy" % k)):
        exp = np.load(os.path.join(cd, "exp_%d.npy" % k), allow_pickle=False)
        p = os.path.join(cd, "%s_%d.npy" % (engine, k))
        if not os.path.exists(p):
            return "wrong", "no output %d" % k
        got = np.load(p, allow_pickle=False)
        if got.shape != exp.shape:
            return "wrong", "output %d shape %s, expected %s" % (k, list(got.shape), list(exp.shape))
        if exp.dtype.kind in "fc" or got.dtype.kind in "fc":
            a, b = got.astype(np.float64), exp.astype(np.float64)
            bad = ~(np.abs(a - b) <= ATOL + RTOL * np.abs(b)) & ~(np.isnan(a) & np.isnan(b)) & \
                ~((a == b) & np.isinf(b))
        else:
            bad = got != exp
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            return "wrong", "output %d: %d of %d differ (first at %d: %g vs %g)" % (
                k, int(bad.sum()), bad.size, i, float(got.flat[i]), float(exp.flat[i]))
        k += 1
    return "pass", ""


def compare(out):
    cases = open(os.path.join(out, "cases.txt")).read().split()
    kinds = ["pass", "refused", "wrong", "crash"]
    counts = {e: dict.fromkeys(kinds, 0) for e in ("deft", "ort")}
    have_ort = os.path.exists(os.path.join(out, "ort.ran"))
    bad_msgs = 0
    lines = []
    for c in cases:
        cd = os.path.join(out, c)
        v, why = verdict(cd, "deft")
        counts["deft"][v] += 1
        vo = verdict(cd, "ort") if have_ort else ("-", "")
        if have_ort:
            counts["ort"][vo[0]] += 1
        # a refusal is one line naming what is not supported
        if v == "refused" and (not why or "\n" in open(os.path.join(cd, "deft.err")).read().strip()):
            bad_msgs += 1
            v = "refused (unclear message)"
        lines.append("%-56s deft %-8s ort %-8s %s" % (c, v, vo[0], why))
    print("\n".join(lines))
    print()
    print("ONNX backend node tests (libonnx-testdata, onnx %s) for the ops deft imports: %d cases"
          % (onnx.__version__, len(cases)))
    print("%-24s %8s %8s %8s %8s" % ("", *kinds))
    for e, label in (("deft", "deft"), ("ort", "onnxruntime-node")):
        if e == "ort" and not have_ort:
            print("%-24s (not installed)" % label)
            continue
        print("%-24s %8d %8d %8d %8d" % (label, *(counts[e][k] for k in kinds)))
    fail = counts["deft"]["wrong"] + counts["deft"]["crash"] + bad_msgs
    return 1 if fail else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "prep":
        prep(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2]))
    else:
        sys.exit(__doc__)
