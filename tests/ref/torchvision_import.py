"""Reference side of test_import_torchvision.sh.

prep DIR OUT.npy            torchvision-preprocessed images of DIR (resize 256,
                            center crop 224, ImageNet mean/std), one batch
squeezenet PTH IN.npy OUT   torchvision squeezenet1_0 logits with the .pth weights
random ARCH[,ARCH..] OUTDIR torchvision ARCH with random weights: ARCH.pth,
                            ARCH_in.npy (2 random images), ARCH_ref.npy (logits);
                            several archs in one start (each seeded alike)
random_onnx ARCH[,..] OUTDIR  the same, exported with torch.onnx (opset 13, dynamic
                            batch) as ARCH.onnx instead of ARCH.pth
cifar_prep DIR OUT.npy      images of DIR resized to 32x32, ImageNet mean/std (the
                            cifar10_resnet20 recipe)
opencv MODEL.onnx IN OUT    OpenCV DNN's output for the model on IN.npy
unsupported OUT.onnx        a valid ONNX model with an op deft does not convert (Hardmax)
compare A.npy B.npy TOL     max abs diff and top-1 agreement; exit 1 if over TOL

CMD ARGS + CMD ARGS ...     several commands in one start (one torch import), in order
"""
import os, sys
import numpy as np
CMDS = [[]]
for w in sys.argv[1:]:
    if w == "+":
        CMDS.append([])
    else:
        CMDS[-1].append(w)
if any(c[0] not in ("opencv", "unsupported", "compare") for c in CMDS):  # those need no torch (2 CPU-s)
    import torch, torchvision
    from PIL import Image
    import torchvision.transforms as T
    torch.set_num_threads(2)


def random_model(cmd, arch, out):
    torch.manual_seed(0)
    kw = {"aux_logits": False, "init_weights": True} if arch == "googlenet" else {}
    m = getattr(torchvision.models, arch)(**kw)
    m.eval()
    # non-trivial BN statistics so eval-mode BN is really exercised
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 224, 224)
    if cmd == "random":
        torch.save(m.state_dict(), os.path.join(out, arch + ".pth"))
    else:
        torch.onnx.export(m, x[:1], os.path.join(out, arch + ".onnx"), input_names=["input"],
                          output_names=["logits"], opset_version=13,
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    with torch.no_grad():
        y = m(x)
    np.save(os.path.join(out, arch + "_in.npy"), x.numpy())
    np.save(os.path.join(out, arch + "_ref.npy"), y.numpy())


def run(argv):  # argv[1]: the command
    cmd = argv[1]
    if cmd == "prep":
        tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        names = sorted(f for f in os.listdir(argv[2]) if f.lower().endswith((".jpg", ".png")))
        x = torch.stack([tf(Image.open(os.path.join(argv[2], f)).convert("RGB")) for f in names])
        np.save(argv[3], x.numpy().astype(np.float32))
        print("prepared %d images" % len(names))
    elif cmd == "squeezenet":
        m = torchvision.models.squeezenet1_0()
        m.load_state_dict(torch.load(argv[2]))
        m.eval()
        with torch.no_grad():
            y = m(torch.from_numpy(np.load(argv[3])))
        np.save(argv[4], y.numpy())
    elif cmd in ("random", "random_onnx"):
        for arch in argv[2].split(","):
            random_model(cmd, arch, argv[3])
    elif cmd == "cifar_prep":
        tf = T.Compose([T.Resize((32, 32)), T.ToTensor(),
                        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        names = sorted(f for f in os.listdir(argv[2]) if f.lower().endswith((".jpg", ".png")))
        x = torch.stack([tf(Image.open(os.path.join(argv[2], f)).convert("RGB")) for f in names])
        np.save(argv[3], x.numpy().astype(np.float32))
    elif cmd == "opencv":
        import cv2
        net = cv2.dnn.readNetFromONNX(argv[2])
        net.setInput(np.load(argv[3]))
        np.save(argv[4], net.forward().astype(np.float32))
    elif cmd == "unsupported":
        import onnx
        from onnx import helper, TensorProto
        w = helper.make_tensor("conv.weight", TensorProto.FLOAT, [4, 3, 1, 1], [0.1] * 12)
        g = helper.make_graph(
            [helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="/conv/Conv"),
             helper.make_node("Hardmax", ["c"], ["y"], name="/act/Hardmax")],
            "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        onnx.checker.check_model(m)
        onnx.save(m, argv[2])
    elif cmd == "compare":
        a, b, tol = np.load(argv[2]), np.load(argv[3]), float(argv[4])
        a = a.reshape(a.shape[0], -1); b = b.reshape(b.shape[0], -1)
        if a.shape != b.shape:
            print("shape mismatch", a.shape, b.shape); sys.exit(1)
        d = float(np.abs(a - b).max())
        same = int((a.argmax(1) == b.argmax(1)).sum())
        print("max abs diff %.3g, top-1 identical %d/%d" % (d, same, a.shape[0]))
        sys.exit(0 if d <= tol and same == a.shape[0] else 1)


for c in CMDS:
    run([sys.argv[0]] + c)
