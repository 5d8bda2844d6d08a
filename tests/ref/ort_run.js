// Reference side of the ONNX tests: run MODEL.onnx in onnxruntime-node on a
// float32 .npy (the model's first input) and save its first output as .npy,
// or, when the last argument ends with '/', every output as DIR/<name>.npy
// (float32, int32 and int64 outputs keep their type).
//   node ort_run.js MODEL.onnx IN.npy OUT.npy
//   node ort_run.js MODEL.onnx IN.npy OUTDIR/
// ORT_SPLIT=1 runs the samples of IN one at a time (a model exported with batch 1)
// and stacks the outputs.
// ORT_OPT=disabled runs the graph as written (no fusion of QuantizeLinear/
// DequantizeLinear into integer kernels: the QDQ arithmetic in float).
const fs = require('fs');
const path = require('path');
let ort;
for (const p of [process.env.DEFT_NODE_MODULES, path.join(__dirname, '..', '..', 'node_modules')]) {
  try { if (p) { ort = require(path.join(p, 'onnxruntime-node')); break; } } catch (e) { }
}
if (!ort) { console.error('onnxruntime-node not installed'); process.exit(77); }

function readNpy(file) {
  const b = fs.readFileSync(file);
  const major = b[6];
  const hl = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const off = major === 1 ? 10 : 12;
  const header = b.toString('latin1', off, off + hl);
  if (!/'descr': '<f4'/.test(header) || /'fortran_order': True/.test(header)) throw new Error('need C-order <f4');
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const data = new Float32Array(b.buffer.slice(b.byteOffset + off + hl, b.byteOffset + b.length));
  return { shape, data };
}

function writeNpy(file, shape, data) {
  const descr = data instanceof Int32Array ? '<i4' : data instanceof BigInt64Array ? '<i8' :
    data instanceof Uint8Array ? '|b1' : '<f4';
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + h.length + 1) % 64) h += ' ';
  h += '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1'); head[6] = 1; head[7] = 0; head.writeUInt16LE(h.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(h, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

(async () => {
  const [model, inp, out] = process.argv.slice(2);
  const opts = process.env.ORT_OPT ? { graphOptimizationLevel: process.env.ORT_OPT } : {};
  const s = await ort.InferenceSession.create(model, opts);
  const x = readNpy(inp);
  if (process.env.ORT_SPLIT && !out.endsWith('/')) { // one sample a run (a fixed batch-1 model), outputs stacked
    const per = x.data.length / x.shape[0], parts = [];
    let dims;
    for (let i = 0; i < x.shape[0]; i++) {
      const xi = new ort.Tensor('float32', x.data.subarray(i * per, (i + 1) * per), [1, ...x.shape.slice(1)]);
      const yi = (await s.run({ [s.inputNames[0]]: xi }))[s.outputNames[0]];
      dims = yi.dims;
      parts.push(yi.data);
    }
    const all = new parts[0].constructor(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((o, p) => (all.set(p, o), o + p.length), 0);
    writeNpy(out, [x.shape[0], ...dims.slice(1)], all);
    return;
  }
  const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) });
  if (out.endsWith('/')) {
    fs.mkdirSync(out, { recursive: true });
    for (const n of s.outputNames) { // a '/' in a name (TAO's output_cov/Sigmoid) is a sub-folder
      fs.mkdirSync(path.dirname(path.join(out, n + '.npy')), { recursive: true });
      writeNpy(path.join(out, n + '.npy'), r[n].dims, r[n].data);
    }
    return;
  }
  const y = r[s.outputNames[0]];
  writeNpy(out, y.dims, y.data);
})().catch(e => { console.error(e.message); process.exit(1); });
