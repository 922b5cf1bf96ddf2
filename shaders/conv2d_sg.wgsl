// Conv2d as an implicit GEMM for adapters that run a workgroup of 8 invocations as one SIMD
// subgroup (lavapipe / llvmpipe on AVX2). Used for the forward pass and, on the rotated kernel,
// for the input gradient. Needs cout % 4 == 0; cin % 4 == 0 too for vec4 loads of x (CIN_VEC4),
// else x is read as scalars, 4 channels at a time with the missing ones zero (Cin = 3 of
// block1_conv1).
//
//   y[m, n] = act(sum_k A[m, k] * B[k, n] + bias[n])
//   m = output pixel (N*outH*outW), n = output channel, k = (ky, kx, ci).
//   A[m, k] = x[(oh * STRIDE_H + ky - padTop, ow * STRIDE_W + kx - padLeft), ci] for output
//   pixel m = (oh, ow), zero outside the input.
//   B = w in HWIO [kh, kw, cin, cout]; with ROTATED (input gradient: x = dz, y = dx, cin and
//   cout are the layer's Cout and Cin) B[(ky, kx, c), n] = w[kh-1-ky, kw-1-kx, n, c], read in
//   place from the layer's weights (4 vec4 along c, transposed in registers).
//   ROTATED with strides (see phased()): one dispatch per phase of dx, i.e. the input pixels
//   (phaseY + STRIDE_H * i, phaseX + STRIDE_W * j); the windows over such a pixel all use the
//   layer taps tapY0 + STRIDE_H * t (likewise in x), so a phase is a stride-1 GEMM over dz with
//   that sub-kernel (kh x kw here), and no multiply-add is spent on taps that miss the pixel.
//   A phase no tap reaches has kh or kw = 0 and writes zeros.
//
// Why this shape: on llvmpipe every storage load whose offset is not a compile-time constant
// is executed lane by lane, so a value that all lanes need ("uniform" weights in a classic
// GEMM) costs as much as 8 separate loads, and shared memory is no cheaper. Here each of the 8
// lanes loads different data and the lanes share it with subgroupBroadcast (a register
// shuffle): lane l loads 4 input channels of pixel (8i + l) and the weights of its own 4
// output channels; every lane then computes its 4 channels for all P = 8 * PI pixels of the
// tile. All loads of one k-step come first and the arithmetic after, so the accumulators stay
// in one straight-line block (interleaving the per-lane load loops with the FMAs made LLVM
// spill them around every load: 2x slower). For the same reason the ReLU backward mask is not
// applied here on load (it doubled the A loads: 1.3-2x slower) but by a pass of its own
// (conv2d_grad_input.wgsl).
//
// Measured with bench/conv2d-tune.ts (VGG16 at 60x90, batch 8; lavapipe on 2 cores shared with
// other work, so absolute figures swing 2-3x with the load): blocks 2-4 at 9-19 GFLOP/s, 5-10x
// TF.js's WebGPU conv2d timed in the same runs and 10-20x the workgroup-memory tiling of
// conv2d.wgsl; 24-pixel tiles (PI = 3) were the best or close to it on every layer.
// A workgroup is 8 invocations and must be one subgroup: subgroups of at least 8 (create()
// checks subgroupMinSize); lanes are numbered by subgroup_invocation_id, the index
// subgroupBroadcast reads.
enable subgroups;

struct Shape {
  inH: u32, inW: u32, cin: u32, cout: u32,
  outH: u32, outW: u32, kh: u32, kw: u32,
  padTop: u32, padLeft: u32, m: u32, colGroups: u32,
  act: u32,  // 1: y = max(0, ...), 2: min(max(0, ...), 6) (a uniform: only the epilogue reads it)
  // Input gradient with strides only (phased()): the layer's kernel width, this phase's first
  // layer tap and first dx pixel, and dx's height and width.
  layerKw: u32, tapY0: u32, tapX0: u32, phaseY: u32, phaseX: u32, dxH: u32, dxW: u32,
}

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(2) var<storage, read> x: array<f32>;      // the same buffer as x4
@group(0) @binding(3) var<storage, read> w4: array<vec4f>;   // [kh, kw, cin, cout], or the layer's [kh, kw, cout, cin] when ROTATED
@group(0) @binding(4) var<storage, read> bias4: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> y4: array<vec4f>;

const SG: u32 = 8u;          // lanes per workgroup = subgroup
override PI: u32 = 4u;       // pixel groups of 8 per tile (1..6): tile = 8*PI pixels x 32 channels
override ROTATED: bool = false;
override CIN_VEC4: bool = true;  // cin % 4 == 0 (required with ROTATED)
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;

// The input gradient of a strided layer, one phase per dispatch.
fn phased() -> bool { return ROTATED && (STRIDE_H > 1u || STRIDE_W > 1u); }

// Output pixel m's window origin in x (image, row, column), before the padding shift.
fn pixelOf(m: u32) -> vec3i {
  let mm = min(m, shape.m - 1u);
  let hw = shape.outH * shape.outW;
  let p = vec3i(i32(mm / hw), i32((mm % hw) / shape.outW), i32(mm % shape.outW));
  if (ROTATED) { return p; }  // phases are stride-1 GEMMs over dz
  return p * vec3i(1, i32(STRIDE_H), i32(STRIDE_W));
}

// Where GEMM row m goes in y: row m itself, except in a phase of a strided input gradient.
fn outPixel(m: u32) -> u32 {
  if (!phased()) { return m; }
  let hw = shape.outH * shape.outW;
  let i = (m % hw) / shape.outW;
  let j = m % shape.outW;
  return ((m / hw) * shape.dxH + shape.phaseY + STRIDE_H * i) * shape.dxW + shape.phaseX + STRIDE_W * j;
}

// The layer's tap under the rotated kernel's tap (ky, kx) (ROTATED).
fn rotatedTap(ky: u32, kx: u32) -> u32 {
  if (phased()) {
    return (shape.tapY0 + STRIDE_H * (shape.kh - 1u - ky)) * shape.layerKw + shape.tapX0 + STRIDE_W * (shape.kw - 1u - kx);
  }
  return (shape.kh - 1u - ky) * shape.kw + shape.kw - 1u - kx;
}

// Index of the input pixel under tap offset d for output pixel p, and 1 if inside the input.
fn tapBase(p: vec3i, d: vec3i) -> vec2u {
  let q = p + d;
  let ok = q.y >= 0 && q.y < i32(shape.inH) && q.z >= 0 && q.z < i32(shape.inW);
  return select(vec2u(0u, 0u), vec2u(u32((q.x * i32(shape.inH) + q.y) * i32(shape.inW) + q.z), 1u), ok);
}

// Input channels 4c .. 4c+3 of tap t (zero outside the input and past cin).
fn loadA(t: vec2u, c: u32) -> vec4f {
  if (CIN_VEC4) {
    return select(vec4f(0.0), x4[t.x * (shape.cin / 4u) + c], t.y == 1u);
  }
  let at = t.x * shape.cin + 4u * c;
  let n = select(0u, shape.cin - 4u * c, t.y == 1u);
  return vec4f(select(0.0, x[at], n > 0u), select(0.0, x[at + 1u], n > 1u),
               select(0.0, x[at + 2u], n > 2u), select(0.0, x[at + 3u], n > 3u));
}

fn fma4(a: vec4f, xb: vec4f, w0: vec4f, w1: vec4f, w2: vec4f, w3: vec4f) -> vec4f {
  return fma(vec4f(xb.w), w3, fma(vec4f(xb.z), w2, fma(vec4f(xb.y), w1, fma(vec4f(xb.x), w0, a))));
}

// a_s += sum_j xv(lane s)[j] * w_j for the 8 pixels whose inputs lanes 0..7 loaded into xv.
fn rank4(a0: ptr<function, vec4f>, a1: ptr<function, vec4f>, a2: ptr<function, vec4f>, a3: ptr<function, vec4f>,
         a4: ptr<function, vec4f>, a5: ptr<function, vec4f>, a6: ptr<function, vec4f>, a7: ptr<function, vec4f>,
         xv: vec4f, w0: vec4f, w1: vec4f, w2: vec4f, w3: vec4f) {
  *a0 = fma4(*a0, subgroupBroadcast(xv, 0u), w0, w1, w2, w3);
  *a1 = fma4(*a1, subgroupBroadcast(xv, 1u), w0, w1, w2, w3);
  *a2 = fma4(*a2, subgroupBroadcast(xv, 2u), w0, w1, w2, w3);
  *a3 = fma4(*a3, subgroupBroadcast(xv, 3u), w0, w1, w2, w3);
  *a4 = fma4(*a4, subgroupBroadcast(xv, 4u), w0, w1, w2, w3);
  *a5 = fma4(*a5, subgroupBroadcast(xv, 5u), w0, w1, w2, w3);
  *a6 = fma4(*a6, subgroupBroadcast(xv, 6u), w0, w1, w2, w3);
  *a7 = fma4(*a7, subgroupBroadcast(xv, 7u), w0, w1, w2, w3);
}

fn store1(m: u32, n4: u32, v: vec4f, mine: bool) {
  if (mine && m < shape.m) {
    var r = v;
    if (shape.act == 1u) { r = max(r, vec4f(0.0)); } else if (shape.act == 2u) { r = clamp(r, vec4f(0.0), vec4f(6.0)); }
    y4[outPixel(m) * (shape.cout / 4u) + n4] = r;
  }
}

fn store8(a0: vec4f, a1: vec4f, a2: vec4f, a3: vec4f, a4: vec4f, a5: vec4f, a6: vec4f, a7: vec4f,
          m: u32, n4: u32, bias: vec4f, mine: bool) {
  store1(m, n4, a0 + bias, mine);
  store1(m + 1u, n4, a1 + bias, mine);
  store1(m + 2u, n4, a2 + bias, mine);
  store1(m + 3u, n4, a3 + bias, mine);
  store1(m + 4u, n4, a4 + bias, mine);
  store1(m + 5u, n4, a5 + bias, mine);
  store1(m + 6u, n4, a6 + bias, mine);
  store1(m + 7u, n4, a7 + bias, mine);
}

@compute @workgroup_size(SG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(subgroup_invocation_id) lane: u32) {
  let g = wid.y * nwg.x + wid.x;
  let colGroup = g % shape.colGroups;
  let m0 = (g / shape.colGroups) * (SG * PI);
  let cout4 = shape.cout / 4u;
  let cin4 = (shape.cin + 3u) / 4u;
  let n4 = min(colGroup * SG + lane, cout4 - 1u);
  // Lane l loads pixel m0 + 8i + l of group i; group i's results are pixels m0 + 8i .. + 7.
  let pa = pixelOf(m0 + lane);
  let pb = pixelOf(m0 + 8u + lane);
  let pc = pixelOf(m0 + 16u + lane);
  let pd = pixelOf(m0 + 24u + lane);
  let pe = pixelOf(m0 + 32u + lane);
  let pf = pixelOf(m0 + 40u + lane);
  var a0: vec4f; var a1: vec4f; var a2: vec4f; var a3: vec4f; var a4: vec4f; var a5: vec4f; var a6: vec4f; var a7: vec4f;
  var b0: vec4f; var b1: vec4f; var b2: vec4f; var b3: vec4f; var b4: vec4f; var b5: vec4f; var b6: vec4f; var b7: vec4f;
  var c0: vec4f; var c1: vec4f; var c2: vec4f; var c3: vec4f; var c4: vec4f; var c5: vec4f; var c6: vec4f; var c7: vec4f;
  var d0: vec4f; var d1: vec4f; var d2: vec4f; var d3: vec4f; var d4: vec4f; var d5: vec4f; var d6: vec4f; var d7: vec4f;
  var e0: vec4f; var e1: vec4f; var e2: vec4f; var e3: vec4f; var e4: vec4f; var e5: vec4f; var e6: vec4f; var e7: vec4f;
  var f0: vec4f; var f1: vec4f; var f2: vec4f; var f3: vec4f; var f4: vec4f; var f5: vec4f; var f6: vec4f; var f7: vec4f;
  for (var ky = 0u; ky < shape.kh; ky++) {
    for (var kx = 0u; kx < shape.kw; kx++) {
      let d = vec3i(0, i32(ky) - i32(shape.padTop), i32(kx) - i32(shape.padLeft));
      let ta = tapBase(pa, d);
      let tb = tapBase(pb, d);
      let tc = tapBase(pc, d);
      let td = tapBase(pd, d);
      let te = tapBase(pe, d);
      let tf = tapBase(pf, d);
      var row = (ky * shape.kw + kx) * shape.cin * cout4 + n4;
      if (ROTATED) { row = (rotatedTap(ky, kx) * shape.cout + 4u * n4) * cin4; }
      for (var ci = 0u; ci < cin4; ci++) {
        let xa = loadA(ta, ci);
        var xb = vec4f(0.0); var xc = vec4f(0.0); var xd = vec4f(0.0); var xe = vec4f(0.0); var xf = vec4f(0.0);
        if (PI > 1u) { xb = loadA(tb, ci); }
        if (PI > 2u) { xc = loadA(tc, ci); }
        if (PI > 3u) { xd = loadA(td, ci); }
        if (PI > 4u) { xe = loadA(te, ci); }
        if (PI > 5u) { xf = loadA(tf, ci); }
        var w0: vec4f; var w1: vec4f; var w2: vec4f; var w3: vec4f;
        if (ROTATED) {
          // 4 input rows of w (this lane's 4 n) along c; transpose to 4 rows of B along n.
          let t = transpose(mat4x4f(w4[row + ci], w4[row + cin4 + ci], w4[row + 2u * cin4 + ci], w4[row + 3u * cin4 + ci]));
          w0 = t[0]; w1 = t[1]; w2 = t[2]; w3 = t[3];
        } else if (CIN_VEC4) {
          w0 = w4[row];
          w1 = w4[row + cout4];
          w2 = w4[row + 2u * cout4];
          w3 = w4[row + 3u * cout4];
        } else {
          // Rows past cin belong to the next tap: zero (x is zero there too, but keep w finite).
          let n = shape.cin - 4u * ci;
          w0 = w4[row];
          w1 = select(vec4f(0.0), w4[row + cout4], n > 1u);
          w2 = select(vec4f(0.0), w4[row + 2u * cout4], n > 2u);
          w3 = select(vec4f(0.0), w4[row + 3u * cout4], n > 3u);
        }
        rank4(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7, xa, w0, w1, w2, w3);
        if (PI > 1u) { rank4(&b0, &b1, &b2, &b3, &b4, &b5, &b6, &b7, xb, w0, w1, w2, w3); }
        if (PI > 2u) { rank4(&c0, &c1, &c2, &c3, &c4, &c5, &c6, &c7, xc, w0, w1, w2, w3); }
        if (PI > 3u) { rank4(&d0, &d1, &d2, &d3, &d4, &d5, &d6, &d7, xd, w0, w1, w2, w3); }
        if (PI > 4u) { rank4(&e0, &e1, &e2, &e3, &e4, &e5, &e6, &e7, xe, w0, w1, w2, w3); }
        if (PI > 5u) { rank4(&f0, &f1, &f2, &f3, &f4, &f5, &f6, &f7, xf, w0, w1, w2, w3); }
        if (!ROTATED) { row += 4u * cout4; }
      }
    }
  }
  let bias = bias4[n4];
  let mine = colGroup * SG + lane < cout4;
  store8(a0, a1, a2, a3, a4, a5, a6, a7, m0, n4, bias, mine);
  if (PI > 1u) { store8(b0, b1, b2, b3, b4, b5, b6, b7, m0 + 8u, n4, bias, mine); }
  if (PI > 2u) { store8(c0, c1, c2, c3, c4, c5, c6, c7, m0 + 16u, n4, bias, mine); }
  if (PI > 3u) { store8(d0, d1, d2, d3, d4, d5, d6, d7, m0 + 24u, n4, bias, mine); }
  if (PI > 4u) { store8(e0, e1, e2, e3, e4, e5, e6, e7, m0 + 32u, n4, bias, mine); }
  if (PI > 5u) { store8(f0, f1, f2, f3, f4, f5, f6, f7, m0 + 40u, n4, bias, mine); }
}
