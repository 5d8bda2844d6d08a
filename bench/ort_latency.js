// Latency of an ONNX model in onnxruntime-node on one real input (a detector's NMS
// cost depends on what it sees, so random data would mislead): median ms per run.
//   node bench/ort_latency.js MODEL.onnx INPUT.npy [iters 20] [warmup 3] [threads 2]
// INPUT.npy: float32 NCHW, e.g. from `deft <net> inference --dump_input DIR`.
// Session as ../shared/peers/ort_bench.js: all graph optimizations, sequential, CPU EP.
const fs = require('fs');
const path = require('path');
let ort;
for (const p of [process.env.DEFT_NODE_MODULES, path.join(__dirname, '..', 'node_modules')]) {
  try { if (p) { ort = require(path.join(p, 'onnxruntime-node')); break; } } catch (e) { }
}
if (!ort) { console.error('onnxruntime-node not installed (npm install onnxruntime-node)'); process.exit(77); }

function readNpyF32(file) {
  const b = fs.readFileSync(file);
  const hl = b[6] === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8), off = b[6] === 1 ? 10 : 12;
  const header = b.toString('latin1', off, off + hl);
  if (!/'descr': '<f4'/.test(header)) throw new Error(file + ': need float32 .npy');
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  return { shape, data: new Float32Array(b.buffer.slice(b.byteOffset + off + hl, b.byteOffset + b.length)) };
}

async function main() {
  const [model, input, itersS, warmS, thrS] = process.argv.slice(2);
  if (!model || !input) { console.error('usage: node ort_latency.js MODEL.onnx INPUT.npy [iters] [warmup] [threads]'); process.exit(2); }
  const iters = parseInt(itersS || '20'), warm = parseInt(warmS || '3'), threads = parseInt(thrS || '2');
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const x = readNpyF32(input);
  const feeds = { [sess.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) };
  const times = [];
  for (let i = 0; i < warm + iters; i++) {
    const t0 = process.hrtime.bigint();
    await sess.run(feeds);
    if (i >= warm) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const n = times.length, med = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  console.log(JSON.stringify({ model: path.basename(model), shape: x.shape, threads, iters,
    latency_ms: Math.round(med * 100) / 100, min_ms: Math.round(times[0] * 100) / 100 }));
}
main().catch(e => { console.error(String(e)); process.exit(1); });
