// Dense layers as GEMMs:  c[M,N] = opA(a)[M,K] · opB(b)[K,N]   (row-major, f32)
//
//   forward          y  = act(x · w + bias)   a = x [B,in],           b = w [in,out]
//   backward input   dx = dz · wᵀ             a = dz [B,out],         b = w read transposed
//   backward weights dw = xᵀ · dz             a = x read transposed,  b = dz [B,out]
//   bias gradient    db = column sums of dz   (column_sum)
// where dz = dy * act'(y) comes from `activation_backward` (a [B,out] pass; skipped for linear).
//
// This file is the portable implementation (workgroup memory, any device, any sizes);
// matmul_subgroup.wgsl is the faster one where subgroups of >= 8 lanes exist (see there).
//
// Tiling. Dense layers are skinny: M is the batch (8..32) in the forward and input-gradient
// products, K is the batch in the weight gradient. A workgroup owns a BM x WG tile of c: one
// output column per invocation and ALL BM rows of the tile in registers (BM/4 vec4
// accumulators). Each step of BK along K stages the BM x BK tile of a in workgroup memory;
// every invocation then reads the same a values (a broadcast on GPUs) and only its own b
// column, straight from global memory: a b value is used by one invocation only, so staging
// it would buy nothing. Per k an invocation does 1 load of b and BM/4 vec4 loads of a for BM
// multiply-adds.
//
// Split-K: workgroup z handles K range [z*kChunk, min(K, (z+1)*kChunk)). With one split the
// epilogue adds the bias and applies the activation; with several, raw partial sums go to
// c[z*M*N + m*N + n] and `splitk_reduce` sums them, adds the bias and applies the activation.
//
// Edges: rows past M read as 0 and are not stored; columns past N load a clamped (valid)
// address and are not stored; K chunks end exactly at kEnd.

struct Dims {
  M: u32,
  N: u32,
  K: u32,
  kChunk: u32,  // K range per split (a multiple of BK); = K when not split
  splits: u32,  // number of partial sums (splitk_reduce)
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;
@group(0) @binding(6) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(7) var<storage, read> yact: array<f32>;
@group(0) @binding(8) var<storage, read_write> dz: array<f32>;
@group(0) @binding(9) var<storage, read> dzin: array<f32>;
@group(0) @binding(10) var<storage, read_write> db: array<f32>;

override WG: u32 = 64u;          // invocations per workgroup = output columns per tile
override BM4: u32 = 4u;          // rows per tile / 4 (at most MAX_BM4)
override BK: u32 = 64u;          // K step per staged tile of a
override A_T: bool = false;      // a is stored [K, M] (read transposed)
override B_T: bool = false;      // b is stored [N, K] (read transposed)
override ACT: u32 = 0u;          // 0 linear, 1 relu, 2 sigmoid
override EPILOGUE: u32 = 0u;     // 0: raw store (partials / gradients); 1: + bias, activation
const MAX_BM4: u32 = 8u;         // accumulator capacity: 32 rows
const RED_WG: u32 = 128u;        // workgroup size of the 1-D passes (compatibility mode guarantees 128)

var<workgroup> As: array<vec4f, BK * BM4>;  // As[k * BM4 + r] = a rows 4r..4r+3 of the tile at k

fn activate(z: f32) -> f32 {
  if (ACT == 1u) { return max(z, 0.0); }
  if (ACT == 2u) { return 1.0 / (1.0 + exp(-z)); }
  return z;
}

// act'(z) expressed through y = act(z), so the backward pass needs only y.
fn activation_grad(y: f32) -> f32 {
  if (ACT == 1u) { return select(0.0, 1.0, y > 0.0); }
  if (ACT == 2u) { return y * (1.0 - y); }
  return 1.0;
}

// opA(a)[m, k] for m < M, k < K.
fn load_a(m: u32, k: u32) -> f32 {
  let idx = select(m * dims.K + k, k * dims.M + m, A_T);
  return a[idx];
}

// opB(b)[k, n] for n < N, k < K.
fn load_b(k: u32, n: u32) -> f32 {
  let idx = select(k * dims.N + n, n * dims.K + k, B_T);
  return b[idx];
}

@compute @workgroup_size(WG)
fn gemm(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let M = dims.M;
  let N = dims.N;
  let BM = 4u * BM4;
  let m0 = wid.y * BM;
  let n = wid.x * WG + lid;
  let nc = min(n, N - 1u);          // clamped column: loads stay in bounds, stores are masked
  let kBegin = wid.z * dims.kChunk;
  let kEnd = min(dims.K, kBegin + dims.kChunk);

  var acc: array<vec4f, MAX_BM4>;
  for (var k0 = kBegin; k0 < kEnd; k0 += BK) {
    let kn = min(BK, kEnd - k0);
    // Stage a[m0 .. m0+BM, k0 .. k0+kn]; consecutive invocations take consecutive addresses.
    for (var i = lid; i < BM * BK; i += WG) {
      var m: u32; var kk: u32;
      if (A_T) { m = i % BM; kk = i / BM; } else { kk = i % BK; m = i / BK; }
      var v = 0.0;
      if (m0 + m < M && kk < kn) { v = load_a(m0 + m, k0 + kk); }
      As[kk * BM4 + m / 4u][m % 4u] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < kn; kk++) {
      let bv = vec4f(load_b(k0 + kk, nc));
      for (var r = 0u; r < BM4; r++) {
        acc[r] = fma(As[kk * BM4 + r], bv, acc[r]);
      }
    }
    workgroupBarrier();
  }

  if (n >= N) { return; }
  let out = wid.z * M * N;
  for (var r = 0u; r < BM4; r++) {
    for (var j = 0u; j < 4u; j++) {
      let m = m0 + 4u * r + j;
      if (m < M) {
        var v = acc[r][j];
        if (EPILOGUE == 1u) { v = activate(v + bias[n]); }
        c[out + m * N + n] = v;
      }
    }
  }
}

fn linear_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * RED_WG + lid;
}

// y[m, n] = act(bias[n] + sum_z partials[z, m, n])
@compute @workgroup_size(RED_WG)
fn splitk_reduce(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  let MN = dims.M * dims.N;
  if (i >= MN) { return; }
  var s = 0.0;
  for (var z = 0u; z < dims.splits; z++) { s += partials[z * MN + i]; }
  c[i] = activate(s + bias[i % dims.N]);
}

// dz = dy * act'(y), elementwise over the M*N elements (M = batch, N = out).
@compute @workgroup_size(RED_WG)
fn activation_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= dims.M * dims.N) { return; }
  dz[i] = dy[i] * activation_grad(yact[i]);
}

// db[n] = sum_m dz[m, n]: the bias gradient (column sums of dz; M = batch).
@compute @workgroup_size(RED_WG)
fn column_sum(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let n = linear_index(wid, nwg, lid);
  let N = dims.N;
  if (n >= N) { return; }
  var s = 0.0;
  for (var m = 0u; m < dims.M; m++) { s += dzin[m * N + n]; }
  db[n] = s;
}
