// Conv2d filter and bias gradients as a GEMM over the output pixels, split along them:
//
//   dW[k, n] = sum_m A[m, k] * dz[m, n]     (k = (ky, kx, ci), n = output channel)
//   db[n]    = sum_m dz[m, n]
//   A[m, k] = x[(oh * STRIDE_H + ky - padTop, ow * STRIDE_W + kx - padLeft), ci] for output
//   pixel m = (oh, ow) (zero outside the input),
//   dz = dy, or dy * (y > 0) with RELU (Keras: the gradient passes where the output is > 0),
//   dy * (0 < y < 6) with RELU6 too (TF's Relu6Grad).
//
// `main` is the portable kernel (any adapter, any channel count): a workgroup of 8x8
// invocations computes a 32 (k) x 32 (n) tile of dW, 4x4 per invocation, stepping through its
// range of m 16 at a time with both slices staged in workgroup memory. Split s of `splits`
// covers m in [s * mPerSplit, (s + 1) * mPerSplit) and writes its partial sums to
// out[s][K][Cout] and outBias[s][Cout] (with one split these are dW and db themselves); the
// bias is summed by the workgroups of k-tile 0. `reduce` then adds the splits up.

struct Shape {
  inH: u32, inW: u32, cin: u32, cout: u32,
  outH: u32, outW: u32, kh: u32, kw: u32,
  padTop: u32, padLeft: u32, m: u32, colGroups: u32,
  kTiles: u32, mPerSplit: u32, splits: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> outBias: array<f32>;

override RELU: bool = false;
override RELU6: bool = false;  // with RELU
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;

var<workgroup> As: array<f32, 512>; // [mm][kk], 16 x 32
var<workgroup> Ds: array<f32, 512>; // [mm][nn], 16 x 32

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
  let n0 = (g % shape.colGroups) * 32u;
  let rest = g / shape.colGroups;
  let kTile = rest % shape.kTiles;
  let split = rest / shape.kTiles;
  if (split >= shape.splits) { return; }
  let k0 = kTile * 32u;
  let kTotal = shape.kh * shape.kw * shape.cin;
  let mBegin = split * shape.mPerSplit;
  let mEnd = min(shape.m, mBegin + shape.mPerSplit);
  let tx = lid % 8u;
  let ty = lid / 8u;
  let hw = shape.outH * shape.outW;

  // The k this invocation stages never changes: decode its tap once.
  let kk = lid % 32u;
  let k = k0 + kk;
  let tap = min(k, kTotal - 1u) / shape.cin;
  let ci = k % shape.cin;
  let d = vec2i(i32(tap / shape.kw) - i32(shape.padTop), i32(tap % shape.kw) - i32(shape.padLeft));

  var acc: array<f32, 16>;
  var bsum: array<f32, 4>;
  for (var mc = mBegin; mc < mEnd; mc += 16u) {
    for (var r = 0u; r < 8u; r++) {
      let mm = lid / 32u + 2u * r;
      let m = mc + mm;
      var v = 0.0;
      if (m < mEnd && k < kTotal) {
        let p = vec3i(i32(m / hw), i32((m % hw) / shape.outW), i32(m % shape.outW));
        let q = p.yz * vec2i(i32(STRIDE_H), i32(STRIDE_W)) + d;
        if (q.x >= 0 && q.x < i32(shape.inH) && q.y >= 0 && q.y < i32(shape.inW)) {
          v = x[u32((p.x * i32(shape.inH) + q.x) * i32(shape.inW) + q.y) * shape.cin + ci];
        }
      }
      As[mm * 32u + kk] = v;
      let n = n0 + kk;
      var dz = 0.0;
      if (m < mEnd && n < shape.cout) {
        dz = dy[m * shape.cout + n];
        if (RELU) {
          let yv = y[m * shape.cout + n];
          if (!(yv > 0.0 && (!RELU6 || yv < 6.0))) { dz = 0.0; }
        }
      }
      Ds[mm * 32u + kk] = dz;
    }
    workgroupBarrier();
    // A runtime bound keeps this loop rolled (much faster to compile on lavapipe).
    let mmEnd = min(16u, mEnd - mc);
    for (var mm = 0u; mm < mmEnd; mm++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = As[mm * 32u + ty + 8u * i];
        b[i] = Ds[mm * 32u + tx + 8u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
        }
      }
      for (var j = 0u; j < 4u; j++) { bsum[j] += b[j]; }
    }
    workgroupBarrier();
  }

  let base = split * kTotal * shape.cout;
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + tx + 8u * j;
    if (n >= shape.cout) { continue; }
    for (var i = 0u; i < 4u; i++) {
      let kr = k0 + ty + 8u * i;
      if (kr < kTotal) { out[base + kr * shape.cout + n] = acc[i * 4u + j]; }
    }
    if (kTile == 0u && ty == 0u) { outBias[split * shape.cout + n] = bsum[j]; }
  }
}

struct ReduceShape { kc: u32, cout: u32, splits: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> rshape: ReduceShape;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> partBias: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<f32>;

// dw[i] = sum over splits of part[s][i]; db likewise from partBias. One invocation per output.
@compute @workgroup_size(128) // compatibility mode guarantees 128 invocations
fn reduce(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 128u + lid;
  if (i < rshape.kc) {
    var s = 0.0;
    for (var p = 0u; p < rshape.splits; p++) { s += part[p * rshape.kc + i]; }
    dw[i] = s;
  } else if (i < rshape.kc + rshape.cout) {
    let j = i - rshape.kc;
    var s = 0.0;
    for (var p = 0u; p < rshape.splits; p++) { s += partBias[p * rshape.cout + j]; }
    db[j] = s;
  }
}
