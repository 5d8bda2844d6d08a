// onnxruntime-node over the conformance cases that tests/ref/onnx_conformance.py
// prepared, all in one process: for each line of OUT/cases.txt, run
// OUT/<case>/model.onnx on in.npy and write ort_<k>.npy (output k), ort.rc
// (0 ran, 2 the session was refused, 3 the run failed) and ort.err.
//   node ort_conformance.js OUT
const fs = require('fs');
const path = require('path');
let ort;
for (const p of [process.env.DEFT_NODE_MODULES, path.join(__dirname, '..', '..', 'node_modules')]) {
  try { if (p) { ort = require(path.join(p, 'onnxruntime-node')); break; } } catch (e) { }
}
if (!ort) { console.error('onnxruntime-node not installed'); process.exit(77); }

// numpy descr -> [ort type, typed array]
const TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<i8': ['int64', BigInt64Array],
  '<i4': ['int32', Int32Array], '<i2': ['int16', Int16Array], '|i1': ['int8', Int8Array],
  '|u1': ['uint8', Uint8Array], '<u2': ['uint16', Uint16Array], '<u4': ['uint32', Uint32Array],
  '<u8': ['uint64', BigUint64Array], '|b1': ['bool', Uint8Array], '<f2': ['float16', Uint16Array],
};

function readNpy(file) {
  const b = fs.readFileSync(file);
  const major = b[6];
  const hl = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const off = major === 1 ? 10 : 12;
  const header = b.toString('latin1', off, off + hl);
  const descr = header.match(/'descr': '([^']*)'/)[1];
  if (!TYPES[descr] || /'fortran_order': True/.test(header)) throw new Error('npy type ' + descr);
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const [type, Arr] = TYPES[descr];
  const bytes = b.buffer.slice(b.byteOffset + off + hl, b.byteOffset + b.length);
  const data = type === 'bool' ? new Uint8Array(bytes).map(v => v !== 0) : new Arr(bytes);
  return new ort.Tensor(type, type === 'bool' ? Array.from(data) : data, shape);
}

function writeNpy(file, t) {
  const descr = Object.keys(TYPES).find(k => TYPES[k][0] === t.type);
  if (!descr) throw new Error('output type ' + t.type);
  let data = t.data;
  if (t.type === 'bool') data = Uint8Array.from(data, v => (v ? 1 : 0));
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${t.dims.join(', ')}${t.dims.length === 1 ? ',' : ''}), }`;
  while ((10 + h.length + 1) % 64) h += ' ';
  h += '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1'); head[6] = 1; head[7] = 0; head.writeUInt16LE(h.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(h, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

(async () => {
  const out = process.argv[2];
  const cases = fs.readFileSync(path.join(out, 'cases.txt'), 'utf8').split('\n').filter(s => s);
  for (const c of cases) {
    const d = path.join(out, c);
    let rc = 0, err = '';
    let s;
    try {
      s = await ort.InferenceSession.create(path.join(d, 'model.onnx'), { logSeverityLevel: 3 });
    } catch (e) { rc = 2; err = e.message; }
    if (!rc) {
      try {
        const feeds = s.inputNames.length ? { [s.inputNames[0]]: readNpy(path.join(d, 'in.npy')) } : {};
        const r = await s.run(feeds);
        s.outputNames.forEach((n, k) => writeNpy(path.join(d, `ort_${k}.npy`), r[n]));
      } catch (e) { rc = 3; err = e.message; }
    }
    fs.writeFileSync(path.join(d, 'ort.err'), err.split('\n')[0] + '\n');
    fs.writeFileSync(path.join(d, 'ort.rc'), rc + '\n');
  }
  fs.writeFileSync(path.join(out, 'ort.ran'), '');
})().catch(e => { console.error(e.message); process.exit(1); });
