// Winograd F(2x2, 3x3) for the forward pass of a 3x3 stride-1 convolution, and (ROTATED) for its input gradient (Lavin & Gray's
// transforms): each 2x2 block of output pixels comes from a 4x4 input tile, and the 9 * 4 = 36
// multiplies per channel pair and block become 16, done as 16 GEMMs over the channels.
//   filter:  U[p][ci][co] = (G g Gt)[p]          g = w[.., .., ci, co] (3x3), once per weight version
//   input:   V[p][t][ci]  = (Bt d B)[p]          d = the 4x4 input tile of block t (zeros outside)
//   gemm:    M[p][t][co]  = sum_ci V[p][t][ci] * U[p][ci][co]        (16 GEMMs, p = z)
//   output:  y[2x2 block t][co] = act((At m A) + bias)               m = M[..][t][co] (4x4)
// with Bt = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
// At = [1 1 1 0; 0 1 -1 -1]. src/kernels/conv2d-winograd.ts drives it; its accuracy is checked
// against the float64 direct convolution in test/conv2d-winograd.test.ts.

struct Shape {
  n: u32, in_h: u32, in_w: u32, cin: u32,
  cout: u32, out_h: u32, out_w: u32, pad_top: u32,
  pad_left: u32, tiles_h: u32, tiles_w: u32, tiles: u32,
  act: u32,
  tiles_pad: u32, // plane stride of V and M: tiles rounded up to 64 (256-byte binding offsets)
  uplane: u32,    // plane stride of U: cin * cout rounded up to 64
  _p2: u32,
}

@group(0) @binding(0) var<uniform> s: Shape;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> u: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> ur: array<f32>;
@group(0) @binding(6) var<storage, read> vr: array<f32>;
@group(0) @binding(7) var<storage, read_write> m: array<f32>;
@group(0) @binding(8) var<storage, read> mr: array<f32>;
@group(0) @binding(9) var<storage, read> bias: array<f32>;
@group(0) @binding(10) var<storage, read_write> y: array<f32>;

const WG: u32 = 128u; // the 1-D passes (compatibility mode guarantees 128 invocations)

fn flat(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

// Block t's image and its top-left output pixel (blocks are numbered image by image, row by row).
fn block_origin(t: u32) -> vec3u {
  let tx = t % s.tiles_w;
  let ty = (t / s.tiles_w) % s.tiles_h;
  return vec3u(t / (s.tiles_w * s.tiles_h), 2u * ty, 2u * tx);
}

// The input gradient of a 3x3 stride-1 layer is this convolution of dz with the layer's kernel
// turned 180 degrees, its channel roles swapped: with ROTATED, cin / cout are the layer's Cout /
// Cin and the filter transform reads g[ky][kx] = w[2-ky][2-kx][co][ci] in place from the layer's
// [3, 3, cout, cin] weights.
override ROTATED: bool = false;

// One invocation per (ci, co): U = G g Gt.
@compute @workgroup_size(WG)
fn transform_filter(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= s.cin * s.cout) { return; }
  let ci = i / s.cout;
  let co = i % s.cout;
  var g: array<f32, 9>;
  for (var k = 0u; k < 9u; k++) {
    if (ROTATED) {
      g[k] = w[((8u - k) * s.cout + co) * s.cin + ci];
    } else {
      g[k] = w[(k * s.cin + ci) * s.cout + co];
    }
  }
  // t = G g (4x3), then U = t Gt (4x4)
  var t: array<f32, 12>;
  for (var c = 0u; c < 3u; c++) {
    let g0 = g[c];
    let g1 = g[3u + c];
    let g2 = g[6u + c];
    t[c] = g0;
    t[3u + c] = 0.5 * (g0 + g1 + g2);
    t[6u + c] = 0.5 * (g0 - g1 + g2);
    t[9u + c] = g2;
  }
  let plane = s.uplane;
  for (var r = 0u; r < 4u; r++) {
    let a = t[3u * r];
    let b = t[3u * r + 1u];
    let c = t[3u * r + 2u];
    u[(4u * r) * plane + i] = a;
    u[(4u * r + 1u) * plane + i] = 0.5 * (a + b + c);
    u[(4u * r + 2u) * plane + i] = 0.5 * (a - b + c);
    u[(4u * r + 3u) * plane + i] = c;
  }
}

// One invocation per (tile, ci): V = Bt d B.
@compute @workgroup_size(WG)
fn transform_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= s.tiles * s.cin) { return; }
  let ci = i % s.cin;
  let o = block_origin(i / s.cin);
  let img = o.x;
  let y0 = i32(o.y) - i32(s.pad_top);
  let x0 = i32(o.z) - i32(s.pad_left);
  var d: array<f32, 16>;
  for (var r = 0; r < 4; r++) {
    for (var c = 0; c < 4; c++) {
      let yy = y0 + r;
      let xx = x0 + c;
      var val = 0.0;
      if (yy >= 0 && yy < i32(s.in_h) && xx >= 0 && xx < i32(s.in_w)) {
        val = x[((img * s.in_h + u32(yy)) * s.in_w + u32(xx)) * s.cin + ci];
      }
      d[r * 4 + c] = val;
    }
  }
  // rows: q = Bt d
  var q: array<f32, 16>;
  for (var c = 0u; c < 4u; c++) {
    q[c] = d[c] - d[8u + c];
    q[4u + c] = d[4u + c] + d[8u + c];
    q[8u + c] = d[8u + c] - d[4u + c];
    q[12u + c] = d[4u + c] - d[12u + c];
  }
  // columns: V = q B
  let plane = s.tiles_pad * s.cin;
  for (var r = 0u; r < 4u; r++) {
    let a = q[4u * r];
    let b = q[4u * r + 1u];
    let c = q[4u * r + 2u];
    let e = q[4u * r + 3u];
    v[(4u * r) * plane + i] = a - c;
    v[(4u * r + 1u) * plane + i] = b + c;
    v[(4u * r + 2u) * plane + i] = c - b;
    v[(4u * r + 3u) * plane + i] = b - e;
  }
}

// The 16 GEMMs: M[p] (tiles x cout) = V[p] (tiles x cin) . U[p] (cin x cout), for adapters
// without usable subgroups or channels not multiples of 4 (otherwise conv2d-winograd.ts runs
// matmul_subgroup.wgsl on each plane, far faster on lavapipe). A 64-invocation
// workgroup computes a 32 x 32 block of M[p], 4 x 4 per invocation, over K steps of 8 staged in
// workgroup memory. z of the grid is p.
const BT: u32 = 32u;
const BK: u32 = 8u;
var<workgroup> vs: array<f32, 256>; // [k][row]  BK x BT
var<workgroup> us: array<f32, 256>; // [k][col]  BK x BT

@compute @workgroup_size(64)
fn gemm(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = wid.z;
  let row0 = wid.y * BT;
  let col0 = wid.x * BT;
  let tr = (lid / 8u) * 4u; // this invocation's 4 rows and 4 columns within the block
  let tc = (lid % 8u) * 4u;
  let vbase = p * s.tiles_pad * s.cin;
  let ubase = p * s.uplane;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < s.cin; k0 += BK) {
    // 256 values of each operand per step: 4 per invocation
    for (var j = 0u; j < 4u; j++) {
      let e = lid * 4u + j;
      let kk = e / BT;
      let rr = e % BT;
      let k = k0 + kk;
      let row = row0 + rr;
      var a = 0.0;
      if (k < s.cin && row < s.tiles) { a = vr[vbase + row * s.cin + k]; }
      vs[kk * BT + rr] = a;
      let col = col0 + rr;
      var b = 0.0;
      if (k < s.cin && col < s.cout) { b = ur[ubase + k * s.cout + col]; }
      us[kk * BT + rr] = b;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let a = vec4f(vs[kk * BT + tr], vs[kk * BT + tr + 1u], vs[kk * BT + tr + 2u], vs[kk * BT + tr + 3u]);
      let b = vec4f(us[kk * BT + tc], us[kk * BT + tc + 1u], us[kk * BT + tc + 2u], us[kk * BT + tc + 3u]);
      for (var r = 0u; r < 4u; r++) {
        acc[r * 4u] = fma(a[r], b.x, acc[r * 4u]);
        acc[r * 4u + 1u] = fma(a[r], b.y, acc[r * 4u + 1u]);
        acc[r * 4u + 2u] = fma(a[r], b.z, acc[r * 4u + 2u]);
        acc[r * 4u + 3u] = fma(a[r], b.w, acc[r * 4u + 3u]);
      }
    }
    workgroupBarrier();
  }
  let mbase = p * s.tiles_pad * s.cout;
  for (var r = 0u; r < 4u; r++) {
    let row = row0 + tr + r;
    if (row >= s.tiles) { continue; }
    for (var c = 0u; c < 4u; c++) {
      let col = col0 + tc + c;
      if (col < s.cout) { m[mbase + row * s.cout + col] = acc[r * 4u + c]; }
    }
  }
}

fn activate(z: f32) -> f32 {
  if (s.act == 1u) { return max(z, 0.0); }
  if (s.act == 2u) { return clamp(z, 0.0, 6.0); }
  return z;
}

// One invocation per (tile, co): the 2x2 outputs At m A + bias, activated, where inside the image.
@compute @workgroup_size(WG)
fn transform_output(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= s.tiles * s.cout) { return; }
  let co = i % s.cout;
  let t = i / s.cout;
  let plane = s.tiles_pad * s.cout;
  var q: array<f32, 16>;
  for (var k = 0u; k < 16u; k++) { q[k] = mr[k * plane + i]; }
  // rows: r = At q (2x4)
  var r0: array<f32, 4>;
  var r1: array<f32, 4>;
  for (var c = 0u; c < 4u; c++) {
    r0[c] = q[c] + q[4u + c] + q[8u + c];
    r1[c] = q[4u + c] - q[8u + c] - q[12u + c];
  }
  let b = bias[co];
  let o00 = r0[0] + r0[1] + r0[2] + b;
  let o01 = r0[1] - r0[2] - r0[3] + b;
  let o10 = r1[0] + r1[1] + r1[2] + b;
  let o11 = r1[1] - r1[2] - r1[3] + b;
  let o = block_origin(t);
  let oy = o.y;
  let ox = o.z;
  let base = (o.x * s.out_h + oy) * s.out_w;
  y[(base + ox) * s.cout + co] = activate(o00);
  if (ox + 1u < s.out_w) { y[(base + ox + 1u) * s.cout + co] = activate(o01); }
  if (oy + 1u < s.out_h) {
    y[(base + s.out_w + ox) * s.cout + co] = activate(o10);
    if (ox + 1u < s.out_w) { y[(base + s.out_w + ox + 1u) * s.cout + co] = activate(o11); }
  }
}
