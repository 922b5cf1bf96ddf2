// Conv2d as an implicit GEMM with workgroup-memory tiles: the portable kernel (any adapter, any
// channel count). Used for the forward pass and, on the rotated kernel, for the input gradient.
//
//   y[m, n] = act(sum_k A[m, k] * B[k, n] + bias[n])
//   m = output pixel (N*outH*outW), n = output channel, k = (ky, kx, ci).
//   A[m, k] = x[(oh * STRIDE_H + ky - padTop, ow * STRIDE_W + kx - padLeft), ci] for output
//   pixel m = (oh, ow), zero outside the input; with MASK_IN, A is multiplied by (mask > 0) on
//   load (ReLU backward: dz = dy * (y > 0)), with MASK_HI too by (mask < 6) (ReLU6).
//   B = w in HWIO [kh, kw, cin, cout] = [K, cout]; with ROTATED (input gradient: x = dz, y = dx,
//   cin and cout are the layer's Cout and Cin) B[(ky, kx, c), n] = w[kh-1-ky, kw-1-kx, n, c],
//   read in place from the layer's weights. ROTATED with strides: one dispatch per phase of dx,
//   a stride-1 GEMM with the phase's sub-kernel (see phased() in conv2d_sg.wgsl).
//
// A workgroup of 8x8 invocations computes a 32x32 tile of y, each invocation 4x4 outputs
// (rows ty + 8i, columns tx + 8j, so neighbouring invocations touch neighbouring channels).
// K advances in steps of 16: the 32x16 slice of A and the 16x32 slice of B are staged in
// workgroup memory, both loaded along the contiguous channel axis. With VEC4 (Cin % 4 == 0 and
// Cout % 4 == 0) the staging loads are vec4.

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
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> x4: array<vec4f>;
@group(0) @binding(7) var<storage, read> w4: array<vec4f>;

override MASK_IN: bool = false;
override VEC4: bool = false;
override ROTATED: bool = false;
override MASK_HI: bool = false;
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;

// The input gradient of a strided layer, one phase per dispatch.
fn phased() -> bool { return ROTATED && (STRIDE_H > 1u || STRIDE_W > 1u); }

// Where GEMM row m goes in y: row m itself, except in a phase of a strided input gradient.
fn outPixel(m: u32) -> u32 {
  if (!phased()) { return m; }
  let hw = shape.outH * shape.outW;
  let i = (m % hw) / shape.outW;
  let j = m % shape.outW;
  return ((m / hw) * shape.dxH + shape.phaseY + STRIDE_H * i) * shape.dxW + shape.phaseX + STRIDE_W * j;
}

// The layer's tap under tap t (= ky * kw + kx) of the rotated kernel (ROTATED).
fn rotatedTap(t: u32) -> u32 {
  if (phased()) {
    return (shape.tapY0 + STRIDE_H * (shape.kh - 1u - t / shape.kw)) * shape.layerKw + shape.tapX0 + STRIDE_W * (shape.kw - 1u - t % shape.kw);
  }
  return shape.kh * shape.kw - 1u - t;
}

const BM: u32 = 32u;
const BN: u32 = 32u;
const BK: u32 = 16u;
var<workgroup> As: array<f32, 512>; // [kk][mm], BK x BM
var<workgroup> Bs: array<f32, 512>; // [kk][nn], BK x BN

fn loadX(i: u32) -> f32 {
  var v = x[i];
  if (MASK_IN && !(mask[i] > 0.0 && (!MASK_HI || mask[i] < 6.0))) { v = 0.0; }
  return v;
}

fn loadX4(i: u32) -> vec4f {
  var v = x4[i];
  if (MASK_IN) {
    let mk = vec4f(mask[4u * i], mask[4u * i + 1u], mask[4u * i + 2u], mask[4u * i + 3u]);
    var keep = mk > vec4f(0.0);
    if (MASK_HI) { keep = keep & (mk < vec4f(6.0)); }
    v = select(vec4f(0.0), v, keep);
  }
  return v;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
  let m0 = (g / shape.colGroups) * BM;
  let n0 = (g % shape.colGroups) * BN;
  let tx = lid % 8u;
  let ty = lid / 8u;
  let kTotal = shape.kh * shape.kw * shape.cin;
  let hw = shape.outH * shape.outW;

  // Staging of A: scalar path, invocation lid loads (mm = lid / 16 + 4r, kk = lid % 16) for
  // r < 8; vec4 path, (mm = lid / 4 + 16r, kk = 4 * (lid % 4) .. + 3) for r < 2. The pixels
  // an invocation stages never change, so decode them once.
  var pix: array<vec3i, 8>;
  var pixOk: array<bool, 8>;
  for (var r = 0u; r < 8u; r++) {
    var mm = lid / 16u + 4u * r;
    if (VEC4) { mm = lid / 4u + 16u * (r % 2u); }
    let m = m0 + mm;
    pixOk[r] = m < shape.m;
    let mc = min(m, shape.m - 1u);
    pix[r] = vec3i(i32(mc / hw), i32((mc % hw) / shape.outW), i32(mc % shape.outW));
    // The window origin in x (phases of the input gradient are stride-1 GEMMs over dz).
    if (!ROTATED) { pix[r] *= vec3i(1, i32(STRIDE_H), i32(STRIDE_W)); }
  }

  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < kTotal; k0 += BK) {
    if (VEC4) {
      // A: 32 pixels x 4 vec4 of channels; a vec4 never straddles a tap since Cin % 4 == 0.
      let kk = 4u * (lid % 4u);
      let k = k0 + kk;
      let tap = k / shape.cin;
      let ci = k % shape.cin;
      let d = vec2i(i32(tap / shape.kw) - i32(shape.padTop), i32(tap % shape.kw) - i32(shape.padLeft));
      for (var r = 0u; r < 2u; r++) {
        let mm = lid / 4u + 16u * r;
        let q = pix[r].yz + d;
        var v = vec4f(0.0);
        if (k < kTotal && pixOk[r] && q.x >= 0 && q.x < i32(shape.inH) && q.y >= 0 && q.y < i32(shape.inW)) {
          v = loadX4((u32((pix[r].x * i32(shape.inH) + q.x) * i32(shape.inW) + q.y) * shape.cin + ci) / 4u);
        }
        As[kk * BM + mm] = v.x;
        As[(kk + 1u) * BM + mm] = v.y;
        As[(kk + 2u) * BM + mm] = v.z;
        As[(kk + 3u) * BM + mm] = v.w;
      }
      for (var r = 0u; r < 2u; r++) {
        let e = lid + 64u * r;
        if (ROTATED) {
          // B: 32 output channels x 4 vec4 along k (contiguous in the rotated layout).
          let nb = e % 32u;
          let kb = 4u * (e / 32u);
          let kr = k0 + kb;
          var v = vec4f(0.0);
          if (kr < kTotal && n0 + nb < shape.cout) {
            let tr = rotatedTap(kr / shape.cin);
            v = w4[((tr * shape.cout + n0 + nb) * shape.cin + kr % shape.cin) / 4u];
          }
          Bs[kb * BN + nb] = v.x;
          Bs[(kb + 1u) * BN + nb] = v.y;
          Bs[(kb + 2u) * BN + nb] = v.z;
          Bs[(kb + 3u) * BN + nb] = v.w;
        } else {
          // B: 16 rows x 8 vec4 of output channels.
          let kb = e / 8u;
          let nb = 4u * (e % 8u);
          var v = vec4f(0.0);
          if (k0 + kb < kTotal && n0 + nb < shape.cout) {
            v = w4[((k0 + kb) * shape.cout + n0 + nb) / 4u];
          }
          Bs[kb * BN + nb] = v.x;
          Bs[kb * BN + nb + 1u] = v.y;
          Bs[kb * BN + nb + 2u] = v.z;
          Bs[kb * BN + nb + 3u] = v.w;
        }
      }
    } else {
      let kk = lid % 16u;
      let k = k0 + kk;
      let tap = k / shape.cin;
      let ci = k % shape.cin;
      let d = vec2i(i32(tap / shape.kw) - i32(shape.padTop), i32(tap % shape.kw) - i32(shape.padLeft));
      for (var r = 0u; r < 8u; r++) {
        let mm = lid / 16u + 4u * r;
        let q = pix[r].yz + d;
        var v = 0.0;
        if (k < kTotal && pixOk[r] && q.x >= 0 && q.x < i32(shape.inH) && q.y >= 0 && q.y < i32(shape.inW)) {
          v = loadX(u32((pix[r].x * i32(shape.inH) + q.x) * i32(shape.inW) + q.y) * shape.cin + ci);
        }
        As[kk * BM + mm] = v;
      }
      for (var r = 0u; r < 8u; r++) {
        let e = lid + 64u * r;
        let kb = e / BN;
        let nb = e % BN;
        let kr = k0 + kb;
        var v = 0.0;
        if (kr < kTotal && n0 + nb < shape.cout) {
          if (ROTATED) {
            v = w[(rotatedTap(kr / shape.cin) * shape.cout + n0 + nb) * shape.cin + kr % shape.cin];
          } else {
            v = w[kr * shape.cout + n0 + nb];
          }
        }
        Bs[kb * BN + nb] = v;
      }
    }
    workgroupBarrier();
    // A runtime bound keeps this loop rolled: unrolled 16x it took LLVM (lavapipe) ~10 s to
    // compile, for no measurable gain.
    let kEnd = min(BK, kTotal - k0);
    for (var kk = 0u; kk < kEnd; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = As[kk * BM + ty + 8u * i];
        b[i] = Bs[kk * BN + tx + 8u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var j = 0u; j < 4u; j++) {
    let n = n0 + tx + 8u * j;
    if (n >= shape.cout) { continue; }
    let bn = bias[n];
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + ty + 8u * i;
      if (m < shape.m) {
        var v = acc[i * 4u + j] + bn;
        if (shape.act == 1u) { v = max(v, 0.0); } else if (shape.act == 2u) { v = clamp(v, 0.0, 6.0); }
        y[outPixel(m) * shape.cout + n] = v;
      }
    }
  }
}

// ---- 'large': the same implicit GEMM in 64x64 tiles for GPUs. A workgroup of 128 invocations
// (the most compatibility mode guarantees) computes 64 pixels x 64 channels, each invocation 4
// pixels x 8 channels as two vec4 (pixels ty + 16i, channels 4tx + 32j): 12 workgroup-memory
// reads per 32 FMAs, against 8 per 16 in main. Needs VEC4 (Cin % 4 == 0 and Cout % 4 == 0).
const LM: u32 = 64u;
const LN: u32 = 64u;
const LK: u32 = 16u;
var<workgroup> Al: array<f32, 1024>;  // [kk][mm], LK x LM
var<workgroup> Bl: array<vec4f, 256>; // [kk][nn / 4], LK x LN

@compute @workgroup_size(128)
fn large(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
  let m0 = (g / shape.colGroups) * LM;
  let n0 = (g % shape.colGroups) * LN;
  let tx = lid % 8u;
  let ty = lid / 8u;
  let kTotal = shape.kh * shape.kw * shape.cin;
  let hw = shape.outH * shape.outW;

  // Staging of A: invocation lid loads pixels mm = lid / 4 + 32r (r < 2), channels
  // kk = 4 * (lid % 4) .. + 3, as in main's vec4 path.
  var pix: array<vec3i, 2>;
  var pixOk: array<bool, 2>;
  for (var r = 0u; r < 2u; r++) {
    let m = m0 + lid / 4u + 32u * r;
    pixOk[r] = m < shape.m;
    let mc = min(m, shape.m - 1u);
    pix[r] = vec3i(i32(mc / hw), i32((mc % hw) / shape.outW), i32(mc % shape.outW));
    if (!ROTATED) { pix[r] *= vec3i(1, i32(STRIDE_H), i32(STRIDE_W)); }
  }

  var acc: array<vec4f, 8>; // [2i + j]
  for (var k0 = 0u; k0 < kTotal; k0 += LK) {
    let kk = 4u * (lid % 4u);
    let k = k0 + kk;
    let tap = k / shape.cin;
    let ci = k % shape.cin;
    let d = vec2i(i32(tap / shape.kw) - i32(shape.padTop), i32(tap % shape.kw) - i32(shape.padLeft));
    for (var r = 0u; r < 2u; r++) {
      let mm = lid / 4u + 32u * r;
      let q = pix[r].yz + d;
      var v = vec4f(0.0);
      if (k < kTotal && pixOk[r] && q.x >= 0 && q.x < i32(shape.inH) && q.y >= 0 && q.y < i32(shape.inW)) {
        v = loadX4((u32((pix[r].x * i32(shape.inH) + q.x) * i32(shape.inW) + q.y) * shape.cin + ci) / 4u);
      }
      Al[kk * LM + mm] = v.x;
      Al[(kk + 1u) * LM + mm] = v.y;
      Al[(kk + 2u) * LM + mm] = v.z;
      Al[(kk + 3u) * LM + mm] = v.w;
    }
    for (var r = 0u; r < 2u; r++) {
      let e = lid + 128u * r;
      if (ROTATED) {
        // 64 output channels x 4 vec4 along k (contiguous in the rotated layout)
        let nb = e % 64u;
        let kb = 4u * (e / 64u);
        let kr = k0 + kb;
        var v = vec4f(0.0);
        if (kr < kTotal && n0 + nb < shape.cout) {
          let tr = rotatedTap(kr / shape.cin);
          v = w4[((tr * shape.cout + n0 + nb) * shape.cin + kr % shape.cin) / 4u];
        }
        let q = nb / 4u;
        let c = nb % 4u;
        Bl[kb * 16u + q][c] = v.x;
        Bl[(kb + 1u) * 16u + q][c] = v.y;
        Bl[(kb + 2u) * 16u + q][c] = v.z;
        Bl[(kb + 3u) * 16u + q][c] = v.w;
      } else {
        // 16 rows x 16 vec4 of output channels
        let kb = e / 16u;
        let nb = 4u * (e % 16u);
        var v = vec4f(0.0);
        if (k0 + kb < kTotal && n0 + nb < shape.cout) {
          v = w4[((k0 + kb) * shape.cout + n0 + nb) / 4u];
        }
        Bl[kb * 16u + nb / 4u] = v;
      }
    }
    workgroupBarrier();
    let kEnd = min(LK, kTotal - k0);
    for (var kk2 = 0u; kk2 < kEnd; kk2++) {
      let b0 = Bl[kk2 * 16u + tx];
      let b1 = Bl[kk2 * 16u + tx + 8u];
      for (var i = 0u; i < 4u; i++) {
        let a = vec4f(Al[kk2 * LM + ty + 16u * i]);
        acc[2u * i] = fma(a, b0, acc[2u * i]);
        acc[2u * i + 1u] = fma(a, b1, acc[2u * i + 1u]);
      }
    }
    workgroupBarrier();
  }

  for (var j = 0u; j < 2u; j++) {
    let n = n0 + 4u * tx + 32u * j;
    if (n >= shape.cout) { continue; }
    let bn = vec4f(bias[n], bias[n + 1u], bias[n + 2u], bias[n + 3u]);
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + ty + 16u * i;
      if (m < shape.m) {
        var v = acc[2u * i + j] + bn;
        if (shape.act == 1u) { v = max(v, vec4f(0.0)); } else if (shape.act == 2u) { v = clamp(v, vec4f(0.0), vec4f(6.0)); }
        let o = outPixel(m) * shape.cout + n;
        y[o] = v.x;
        y[o + 1u] = v.y;
        y[o + 2u] = v.z;
        y[o + 3u] = v.w;
      }
    }
  }
}
