// onnxruntime-node inference timing on random input: one JSON line.
//   node bench/ort_infer.js MODEL.onnx [batch 1] [iters 30] [warmup 5] [threads 2] [size 224]
// Session as ../shared/peers/ort_bench.js: all graph optimizations, sequential, CPU EP.
const fs = require('fs');
const path = require('path');
let ort;
for (const p of [process.env.DEFT_NODE_MODULES, path.join(__dirname, '..', 'node_modules'),
                 path.join(__dirname, '..', '..', 'main', 'node_modules')]) {
  try { if (p) { ort = require(path.join(p, 'onnxruntime-node')); break; } } catch (e) { }
}
if (!ort) { console.error('onnxruntime-node not installed (npm install onnxruntime-node)'); process.exit(77); }

async function main() {
  const a = process.argv.slice(2);
  if (!a[0]) { console.error('usage: node ort_infer.js MODEL.onnx [batch] [iters] [warmup] [threads] [size]'); process.exit(2); }
  const batch = parseInt(a[1] || '1'), iters = parseInt(a[2] || '30'), warm = parseInt(a[3] || '5');
  const threads = parseInt(a[4] || '2'), size = parseInt(a[5] || '224');
  const t0 = process.hrtime.bigint();
  const sess = await ort.InferenceSession.create(a[0], {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const load_ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const n = batch * 3 * size * size, data = new Float32Array(n);
  let s = 12345; for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) >>> 0; data[i] = s / 4294967296 - 0.5; }
  const feeds = { [sess.inputNames[0]]: new ort.Tensor('float32', data, [batch, 3, size, size]) };
  const times = [];
  for (let i = 0; i < warm + iters; i++) {
    const t1 = process.hrtime.bigint();
    await sess.run(feeds);
    if (i >= warm) times.push(Number(process.hrtime.bigint() - t1) / 1e6);
  }
  times.sort((x, y) => x - y);
  const med = times.length % 2 ? times[(times.length - 1) / 2] : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
  const r2 = x => Math.round(x * 100) / 100;
  console.log(JSON.stringify({ tool: 'onnxruntime-node', version: (ort.env && ort.env.versions && ort.env.versions.common) || '?',
    model: path.basename(a[0], '.onnx'), batch, threads, iters, images_per_s: r2(batch * 1000 / med),
    latency_ms: r2(med), min_ms: r2(times[0]), load_ms: r2(load_ms),
    peak_rss_mib: r2(process.resourceUsage().maxRSS / 1024) }));
}
main().catch(e => { console.error(String(e)); process.exit(1); });
