// Dense-layer GEMMs for devices with subgroups of at least 8 invocations:
//   c[M,N] = opA(a)[M,K] · opB(b)[K,N]   (row-major f32, N, K (and M when A_T) multiples of 4)
// Same roles, operands, epilogue and split-K layout as `gemm` in matmul.wgsl (see there); this
// variant keeps the shared operand in registers and distributes it with subgroupBroadcast
// instead of workgroup memory.
//
// Why: on lavapipe (Mesa 25.0) every load whose address is not a compile-time constant runs
// as a per-invocation scalar loop (~6 instructions per float), including workgroup-memory loads,
// and barriers switch coroutines. Broadcasting a register from another lane is 2 instructions.
// So each invocation loads a different row of the a tile (one vec4 per 4 k), and the 8 lanes
// of the subgroup broadcast them to each other; b is loaded as vec4s (4 output columns per
// invocation). Measured on lavapipe (2 cores shared with other work), 39424 -> 256 at batch
// 32: forward ~9-11 GFLOP/s, both backward products ~7-12 GFLOP/s, against ~1-2.5 GFLOP/s for
// the workgroup-memory tiling of matmul.wgsl. On GPUs it is a register-tiled GEMM with
// shuffle broadcasts.
//
// Tile: WG invocations x 4 columns, TM rows:
//   A_T = false: TM = 8*G rows; invocation (lane) l of the subgroup holds rows 8g + l.
//   A_T = true:  TM = 32 rows; lane l holds rows 4l .. 4l+3 (a is contiguous along m).
// Only lanes 0..7 are read from, so any subgroup size >= 8 works.

enable subgroups;

struct Dims {
  M: u32,
  N: u32,
  K: u32,
  kChunk: u32,  // K range per split (a multiple of 4); = K when not split
  splits: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(4) var<storage, read> bias: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> c: array<vec4f>;

override WG: u32 = 64u;          // invocations per workgroup; 4 output columns each
override G: u32 = 4u;            // row groups of 8 (A_T = false); TM = 8*G
override A_T: bool = false;      // a is stored [K, M]
override B_T: bool = false;      // b is stored [N, K]
override ACT: u32 = 0u;          // 0 linear, 1 relu, 2 sigmoid
override EPILOGUE: u32 = 0u;     // 0: raw store; 1: + bias, activation

var<private> acc: array<vec4f, 32>;   // acc[row in tile] = 4 columns

fn activate(z: vec4f) -> vec4f {
  if (ACT == 1u) { return max(z, vec4f(0.0)); }
  if (ACT == 2u) { return 1.0 / (1.0 + exp(-z)); }
  return z;
}

fn load_a(i: u32) -> vec4f { return a[i]; }
fn load_b(i: u32) -> vec4f { return b[i]; }

// acc[base + stride*l] += (lane l's av) * bv  for the 8 lanes l: rows held by lanes.
fn fma_lanes(av: f32, bv: vec4f, base: u32, stride: u32) {
  acc[base + 0u * stride] = fma(vec4f(subgroupBroadcast(av, 0u)), bv, acc[base + 0u * stride]);
  acc[base + 1u * stride] = fma(vec4f(subgroupBroadcast(av, 1u)), bv, acc[base + 1u * stride]);
  acc[base + 2u * stride] = fma(vec4f(subgroupBroadcast(av, 2u)), bv, acc[base + 2u * stride]);
  acc[base + 3u * stride] = fma(vec4f(subgroupBroadcast(av, 3u)), bv, acc[base + 3u * stride]);
  acc[base + 4u * stride] = fma(vec4f(subgroupBroadcast(av, 4u)), bv, acc[base + 4u * stride]);
  acc[base + 5u * stride] = fma(vec4f(subgroupBroadcast(av, 5u)), bv, acc[base + 5u * stride]);
  acc[base + 6u * stride] = fma(vec4f(subgroupBroadcast(av, 6u)), bv, acc[base + 6u * stride]);
  acc[base + 7u * stride] = fma(vec4f(subgroupBroadcast(av, 7u)), bv, acc[base + 7u * stride]);
}

@compute @workgroup_size(WG)
fn gemm(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
  let M = dims.M;
  let N4 = dims.N / 4u;
  let K4 = dims.K / 4u;
  let M4 = M / 4u;
  let TM = select(8u * G, 32u, A_T);
  let m0 = wid.y * TM;
  let n4 = wid.x * WG + lid;
  let n4c = min(n4, N4 - 1u);          // clamped: loads stay in bounds, stores are masked
  let k4Begin = wid.z * (dims.kChunk / 4u);
  let k4End = min(K4, k4Begin + dims.kChunk / 4u);

  // Every invocation of the subgroup runs the same loop trip counts (uniform control flow),
  // as subgroupBroadcast requires.
  for (var k4 = k4Begin; k4 < k4End; k4++) {
    // The 4x4 block of b: bv[j] = b[4*k4 + j, 4*n4c .. 4*n4c + 3].
    var bv: array<vec4f, 4>;
    if (B_T) {
      var col: array<vec4f, 4>;   // col[i] = b[4*k4 .. 4*k4+3, 4*n4c + i]
      for (var i = 0u; i < 4u; i++) { col[i] = load_b((4u * n4c + i) * K4 + k4); }
      for (var j = 0u; j < 4u; j++) { bv[j] = vec4f(col[0][j], col[1][j], col[2][j], col[3][j]); }
    } else {
      for (var j = 0u; j < 4u; j++) { bv[j] = load_b((4u * k4 + j) * N4 + n4c); }
    }
    if (A_T) {
      // Lane l holds a[4l .. 4l+3] of the tile's 32 rows for each of the 4 k.
      let r4 = min(m0 / 4u + (lane % 8u), M4 - 1u);
      for (var j = 0u; j < 4u; j++) {
        let av = load_a((4u * k4 + j) * M4 + r4);
        for (var q = 0u; q < 4u; q++) { fma_lanes(av[q], bv[j], q, 4u); }
      }
    } else {
      // Lane l holds a[8g + l, 4*k4 .. 4*k4+3] for each row group g.
      var av: array<vec4f, 4>;
      for (var g = 0u; g < G; g++) { av[g] = load_a(min(m0 + 8u * g + (lane % 8u), M - 1u) * K4 + k4); }
      for (var j = 0u; j < 4u; j++) {
        for (var g = 0u; g < G; g++) { fma_lanes(av[g][j], bv[j], 8u * g, 1u); }
      }
    }
  }

  if (n4 >= N4) { return; }
  var bias4 = vec4f(0.0);
  if (EPILOGUE == 1u) { bias4 = bias[n4]; }
  let out = wid.z * M * N4;
  for (var r = 0u; r < TM; r++) {
    let m = m0 + r;
    if (m < M) {
      var v = acc[r];
      if (EPILOGUE == 1u) { v = activate(v + bias4); }
      c[out + m * N4 + n4] = v;
    }
  }
}
