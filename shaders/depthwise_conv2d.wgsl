// Keras DepthwiseConv2D on NHWC tensors (depthwise_kernel [KH, KW, C, M], output channel
// co = c * M + m, so the weights of tap t for output channel co sit at t * CO + co), with TF
// padding (PT / PL top / left; the rest of the 'same' padding is at the bottom / right), and
// its gradients. dz = dy masked by the activation's derivative, read from y: relu y > 0,
// relu6 0 < y < 6 (Keras's gradients).
//
//   forward          one invocation per output element: y = act(b + sum x * w)
//   backward_input   one invocation per dx element: gathers the (oh, ow, tap) that read it, so
//                    every dx element is written (0 where no window reaches)
//   filter_partial   the dw / db sums over N*OH*OW positions, split in chunks of `rpc` output
//                    rows (r = n * OH + oh): one invocation per (chunk, slot, co) sums its chunk
//                    into part[chunk][slot][co]; slot < taps is a tap, slot == taps the bias
//   reduce           one workgroup per (slot, co): sums the chunks' partials in parallel
//                    (strided, then a tree in workgroup memory) into dw, or db for the bias slot
// Entries ending in 4 run 4 channels as a vec4: output channels (CO % 4 == 0) for forward4,
// filter_partial4 and reduce4, input channels (C % 4 == 0) for backward_input4; there the
// operands whose 4 channels are not contiguous for M > 1 (x; dy, y and w in backward_input4)
// are gathered as scalars. Entries ending in 4c are the same for M == 1 and C % 4 == 0, with
// every operand a vec4 (MobileNet's case; the gathers cost up to 2x on lavapipe).

struct Shape {
  N: u32, H: u32, W: u32, C: u32,
  OH: u32, OW: u32, KH: u32, KW: u32,
  SH: u32, SW: u32, PT: u32, PL: u32,
  M: u32, CO: u32,
  G: u32,       // channel groups per pixel in this pass (C, C/4, CO or CO/4)
  count: u32,   // invocations (workgroups for reduce) with work
  rows: u32,    // N * OH
  rpc: u32,     // output rows per chunk
  chunks: u32,
  slots: u32,   // taps, + 1 with a bias
  taps: u32,    // KH * KW
}

// 0 linear, 1 relu, 2 relu6. An override so that the linear kernels drop the y loads.
override ACT: u32 = 0u;

@group(0) @binding(0) var<uniform> s: Shape;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read> yin: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> part: array<f32>;
@group(0) @binding(9) var<storage, read_write> dw: array<f32>;
@group(0) @binding(10) var<storage, read_write> db: array<f32>;
@group(0) @binding(11) var<storage, read> w4: array<vec4f>;
@group(0) @binding(12) var<storage, read> b4: array<vec4f>;
@group(0) @binding(13) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(14) var<storage, read> dy4: array<vec4f>;
@group(0) @binding(15) var<storage, read> yin4: array<vec4f>;
@group(0) @binding(16) var<storage, read_write> dx4: array<vec4f>;
@group(0) @binding(17) var<storage, read_write> part4: array<vec4f>;
@group(0) @binding(18) var<storage, read_write> dw4: array<vec4f>;
@group(0) @binding(19) var<storage, read_write> db4: array<vec4f>;
@group(0) @binding(20) var<storage, read> x4: array<vec4f>;

const WG: u32 = 128u;
const RWG: u32 = 64u; // reduce workgroup

fn linear_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

fn activate(z: f32) -> f32 {
  if (ACT == 1u) { return max(z, 0.0); }
  if (ACT == 2u) { return clamp(z, 0.0, 6.0); }
  return z;
}

fn activate4(z: vec4f) -> vec4f {
  if (ACT == 1u) { return max(z, vec4f(0.0)); }
  if (ACT == 2u) { return clamp(z, vec4f(0.0), vec4f(6.0)); }
  return z;
}

// dz from dy and the forward output y.
fn masked(g: f32, yv: f32) -> f32 {
  if (ACT == 1u) { return select(0.0, g, yv > 0.0); }
  if (ACT == 2u) { return select(0.0, g, yv > 0.0 && yv < 6.0); }
  return g;
}

fn masked4(g: vec4f, yv: vec4f) -> vec4f {
  if (ACT == 1u) { return select(vec4f(0.0), g, yv > vec4f(0.0)); }
  if (ACT == 2u) { return select(vec4f(0.0), g, (yv > vec4f(0.0)) & (yv < vec4f(6.0))); }
  return g;
}

// Output pixel p = (n * OH + oh) * OW + ow of element i = p * G + q.
struct Pixel { n: u32, oh: u32, ow: u32, q: u32 }

fn out_pixel(i: u32) -> Pixel {
  let q = i % s.G;
  var t = i / s.G;
  let ow = t % s.OW;
  t /= s.OW;
  return Pixel(t / s.OH, t % s.OH, ow, q);
}

// Input row / column of output row / column o at tap offset k; negative or >= the size when it
// falls in the padding.
fn in_coord(o: u32, stride: u32, k: u32, pad: u32) -> i32 {
  return i32(o * stride + k) - i32(pad);
}

// ---------------------------------------------------------------- forward

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let p = out_pixel(i);
  let co = p.q;
  let c = co / s.M;
  var acc = b[co];
  for (var ky = 0u; ky < s.KH; ky++) {
    let ih = in_coord(p.oh, s.SH, ky, s.PT);
    if (ih < 0 || ih >= i32(s.H)) { continue; }
    let row = (p.n * s.H + u32(ih)) * s.W;
    for (var kx = 0u; kx < s.KW; kx++) {
      let iw = in_coord(p.ow, s.SW, kx, s.PL);
      if (iw < 0 || iw >= i32(s.W)) { continue; }
      acc += x[(row + u32(iw)) * s.C + c] * w[(ky * s.KW + kx) * s.CO + co];
    }
  }
  y[i] = activate(acc);
}

@compute @workgroup_size(WG)
fn forward4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let p = out_pixel(i);
  let co = p.q * 4u;
  // Input channel of each of the 4 output channels (all equal when M % 4 == 0).
  let c = vec4u(co, co + 1u, co + 2u, co + 3u) / s.M;
  var acc = b4[p.q];
  for (var ky = 0u; ky < s.KH; ky++) {
    let ih = in_coord(p.oh, s.SH, ky, s.PT);
    if (ih < 0 || ih >= i32(s.H)) { continue; }
    let row = (p.n * s.H + u32(ih)) * s.W;
    for (var kx = 0u; kx < s.KW; kx++) {
      let iw = in_coord(p.ow, s.SW, kx, s.PL);
      if (iw < 0 || iw >= i32(s.W)) { continue; }
      let px = (row + u32(iw)) * s.C;
      let xv = vec4f(x[px + c.x], x[px + c.y], x[px + c.z], x[px + c.w]);
      acc += xv * w4[(ky * s.KW + kx) * s.G + p.q];
    }
  }
  y4[i] = activate4(acc);
}

@compute @workgroup_size(WG)
fn forward4c(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let p = out_pixel(i);
  var acc = b4[p.q];
  for (var ky = 0u; ky < s.KH; ky++) {
    let ih = in_coord(p.oh, s.SH, ky, s.PT);
    if (ih < 0 || ih >= i32(s.H)) { continue; }
    let row = (p.n * s.H + u32(ih)) * s.W;
    for (var kx = 0u; kx < s.KW; kx++) {
      let iw = in_coord(p.ow, s.SW, kx, s.PL);
      if (iw < 0 || iw >= i32(s.W)) { continue; }
      acc += x4[(row + u32(iw)) * s.G + p.q] * w4[(ky * s.KW + kx) * s.G + p.q];
    }
  }
  y4[i] = activate4(acc);
}

// ---------------------------------------------------------------- input gradient

// Input element i = ((n * H + h) * W + w) * G + q.
struct InPixel { n: u32, h: u32, w: u32, q: u32 }

fn in_pixel(i: u32) -> InPixel {
  let q = i % s.G;
  var t = i / s.G;
  let wc = t % s.W;
  t /= s.W;
  return InPixel(t / s.H, t % s.H, wc, q);
}

// The output row / column reading input row / column `v` through tap k, or -1 if none (the
// stride skips it or it falls outside the output). Strides are 1 or 2: mask and shift, not
// an integer division.
fn out_coord(v: u32, stride: u32, k: u32, pad: u32, size: u32) -> i32 {
  let t = v + pad;
  if (t < k || ((t - k) & (stride - 1u)) != 0u) { return -1; }
  let o = (t - k) >> (stride - 1u);
  return select(-1, i32(o), o < size);
}

@compute @workgroup_size(WG)
fn backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let p = in_pixel(i);
  let c0 = p.q * s.M; // first output channel of input channel q
  var sum = 0.0;
  for (var ky = 0u; ky < s.KH; ky++) {
    let oh = out_coord(p.h, s.SH, ky, s.PT, s.OH);
    if (oh < 0) { continue; }
    for (var kx = 0u; kx < s.KW; kx++) {
      let ow = out_coord(p.w, s.SW, kx, s.PL, s.OW);
      if (ow < 0) { continue; }
      let o = ((p.n * s.OH + u32(oh)) * s.OW + u32(ow)) * s.CO + c0;
      let t = (ky * s.KW + kx) * s.CO + c0;
      for (var m = 0u; m < s.M; m++) {
        sum += masked(dy[o + m], yin[o + m]) * w[t + m];
      }
    }
  }
  dx[i] = sum;
}

@compute @workgroup_size(WG)
fn backward_input4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let p = in_pixel(i);
  let c0 = p.q * 4u * s.M;
  // Offsets of the 4 input channels' output channels (contiguous when M == 1).
  let d = vec4u(0u, 1u, 2u, 3u) * s.M;
  var sum = vec4f(0.0);
  for (var ky = 0u; ky < s.KH; ky++) {
    let oh = out_coord(p.h, s.SH, ky, s.PT, s.OH);
    if (oh < 0) { continue; }
    for (var kx = 0u; kx < s.KW; kx++) {
      let ow = out_coord(p.w, s.SW, kx, s.PL, s.OW);
      if (ow < 0) { continue; }
      let o = ((p.n * s.OH + u32(oh)) * s.OW + u32(ow)) * s.CO + c0;
      let t = (ky * s.KW + kx) * s.CO + c0;
      for (var m = 0u; m < s.M; m++) {
        let od = o + m + d;
        let td = t + m + d;
        let g = vec4f(dy[od.x], dy[od.y], dy[od.z], dy[od.w]);
        let yv = vec4f(yin[od.x], yin[od.y], yin[od.z], yin[od.w]);
        sum += masked4(g, yv) * vec4f(w[td.x], w[td.y], w[td.z], w[td.w]);
      }
    }
  }
  dx4[i] = sum;
}

@compute @workgroup_size(WG)
fn backward_input4c(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let p = in_pixel(i);
  var sum = vec4f(0.0);
  for (var ky = 0u; ky < s.KH; ky++) {
    let oh = out_coord(p.h, s.SH, ky, s.PT, s.OH);
    if (oh < 0) { continue; }
    for (var kx = 0u; kx < s.KW; kx++) {
      let ow = out_coord(p.w, s.SW, kx, s.PL, s.OW);
      if (ow < 0) { continue; }
      let o = ((p.n * s.OH + u32(oh)) * s.OW + u32(ow)) * s.G + p.q;
      sum += masked4(dy4[o], yin4[o]) * w4[(ky * s.KW + kx) * s.G + p.q];
    }
  }
  dx4[i] = sum;
}

// ---------------------------------------------------------------- filter and bias gradients

// Element i = (chunk * slots + slot) * G + q.
struct Part { chunk: u32, slot: u32, q: u32, r0: u32, r1: u32 }

fn part_of(i: u32) -> Part {
  let q = i % s.G;
  let t = i / s.G;
  let chunk = t / s.slots;
  let r0 = chunk * s.rpc;
  return Part(chunk, t % s.slots, q, r0, min(r0 + s.rpc, s.rows));
}

@compute @workgroup_size(WG)
fn filter_partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let p = part_of(i);
  let co = p.q;
  var acc = 0.0;
  if (p.slot == s.taps) {
    for (var r = p.r0; r < p.r1; r++) {
      for (var ow = 0u; ow < s.OW; ow++) {
        let o = (r * s.OW + ow) * s.CO + co;
        acc += masked(dy[o], yin[o]);
      }
    }
  } else {
    let ky = p.slot / s.KW;
    let kx = p.slot % s.KW;
    let c = co / s.M;
    for (var r = p.r0; r < p.r1; r++) {
      let ih = in_coord(r % s.OH, s.SH, ky, s.PT);
      if (ih < 0 || ih >= i32(s.H)) { continue; }
      let row = ((r / s.OH) * s.H + u32(ih)) * s.W;
      for (var ow = 0u; ow < s.OW; ow++) {
        let iw = in_coord(ow, s.SW, kx, s.PL);
        if (iw < 0 || iw >= i32(s.W)) { continue; }
        let o = (r * s.OW + ow) * s.CO + co;
        acc += x[(row + u32(iw)) * s.C + c] * masked(dy[o], yin[o]);
      }
    }
  }
  part[i] = acc;
}

@compute @workgroup_size(WG)
fn filter_partial4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let p = part_of(i);
  var acc = vec4f(0.0);
  if (p.slot == s.taps) {
    for (var r = p.r0; r < p.r1; r++) {
      for (var ow = 0u; ow < s.OW; ow++) {
        let o = (r * s.OW + ow) * s.G + p.q;
        acc += masked4(dy4[o], yin4[o]);
      }
    }
  } else {
    let ky = p.slot / s.KW;
    let kx = p.slot % s.KW;
    let co = p.q * 4u;
    let c = vec4u(co, co + 1u, co + 2u, co + 3u) / s.M;
    for (var r = p.r0; r < p.r1; r++) {
      let ih = in_coord(r % s.OH, s.SH, ky, s.PT);
      if (ih < 0 || ih >= i32(s.H)) { continue; }
      let row = ((r / s.OH) * s.H + u32(ih)) * s.W;
      for (var ow = 0u; ow < s.OW; ow++) {
        let iw = in_coord(ow, s.SW, kx, s.PL);
        if (iw < 0 || iw >= i32(s.W)) { continue; }
        let px = (row + u32(iw)) * s.C;
        let o = (r * s.OW + ow) * s.G + p.q;
        let xv = vec4f(x[px + c.x], x[px + c.y], x[px + c.z], x[px + c.w]);
        acc += xv * masked4(dy4[o], yin4[o]);
      }
    }
  }
  part4[i] = acc;
}

@compute @workgroup_size(WG)
fn filter_partial4c(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let p = part_of(i);
  var acc = vec4f(0.0);
  if (p.slot == s.taps) {
    for (var r = p.r0; r < p.r1; r++) {
      for (var ow = 0u; ow < s.OW; ow++) {
        let o = (r * s.OW + ow) * s.G + p.q;
        acc += masked4(dy4[o], yin4[o]);
      }
    }
  } else {
    let ky = p.slot / s.KW;
    let kx = p.slot % s.KW;
    for (var r = p.r0; r < p.r1; r++) {
      let ih = in_coord(r % s.OH, s.SH, ky, s.PT);
      if (ih < 0 || ih >= i32(s.H)) { continue; }
      let row = ((r / s.OH) * s.H + u32(ih)) * s.W;
      for (var ow = 0u; ow < s.OW; ow++) {
        let iw = in_coord(ow, s.SW, kx, s.PL);
        if (iw < 0 || iw >= i32(s.W)) { continue; }
        let o = (r * s.OW + ow) * s.G + p.q;
        acc += x4[(row + u32(iw)) * s.G + p.q] * masked4(dy4[o], yin4[o]);
      }
    }
  }
  part4[i] = acc;
}

var<workgroup> red: array<f32, RWG>;
var<workgroup> red4: array<vec4f, RWG>;

// Workgroup e reduces element e of [slots][G] over the chunks; slot `taps` is the bias.
@compute @workgroup_size(RWG)
fn reduce(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let e = wid.y * nwg.x + wid.x;
  if (e >= s.count) { return; } // whole workgroups: uniform
  let stride = s.slots * s.G;
  var acc = 0.0;
  for (var k = lid; k < s.chunks; k += RWG) { acc += part[k * stride + e]; }
  red[lid] = acc;
  for (var half = RWG / 2u; half > 0u; half /= 2u) {
    workgroupBarrier();
    if (lid < half) { red[lid] += red[lid + half]; }
  }
  if (lid == 0u) {
    let nw = s.taps * s.G;
    if (e < nw) { dw[e] = red[0]; } else { db[e - nw] = red[0]; }
  }
}

@compute @workgroup_size(RWG)
fn reduce4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let e = wid.y * nwg.x + wid.x;
  if (e >= s.count) { return; }
  let stride = s.slots * s.G;
  var acc = vec4f(0.0);
  for (var k = lid; k < s.chunks; k += RWG) { acc += part4[k * stride + e]; }
  red4[lid] = acc;
  for (var half = RWG / 2u; half > 0u; half /= 2u) {
    workgroupBarrier();
    if (lid < half) { red4[lid] += red4[lid + half]; }
  }
  if (lid == 0u) {
    let nw = s.taps * s.G;
    if (e < nw) { dw4[e] = red4[0]; } else { db4[e - nw] = red4[0]; }
  }
}
