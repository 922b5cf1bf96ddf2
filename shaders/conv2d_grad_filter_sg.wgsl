// Conv2d filter and bias gradients for adapters that run a workgroup of 8 invocations as one
// SIMD subgroup (lavapipe); same GEMM, split and output layout as conv2d_grad_filter.wgsl's
// `main` (whose `reduce` adds the splits up), strides included. Needs Cin % 4 == 0 and
// Cout % 4 == 0. With ReLU (or ReLU6), dz = dy * (y > 0) (* (y < 6)) comes from a pass of its
// own (conv2d_grad_input.wgsl), as in conv2d_sg.wgsl.
//
//   dW[k, n] = sum_m A[m, k] * dz[m, n],  db[n] = sum_m dz[m, n]
//
// A workgroup computes a 32 (k) x 32 (n) tile: k = 32 consecutive input channels of one tap, n =
// 32 output channels. For each pixel m, lane l loads input channels 4l..4l+3 of the tile
// (shifted by the tap) and dz for its own 4 output channels; the lanes share the input values
// through subgroupBroadcast, and each lane accumulates its 4 channels for all 32 k (8 mat4x4,
// column c of acc_s = k row 4s + c). On llvmpipe a load that all lanes need costs as much as
// 8 separate ones, so sharing values through the subgroup instead of memory is what makes this
// fast (see conv2d_sg.wgsl). Four pixels per step, all loads before the arithmetic.
enable subgroups;

struct Shape {
  inH: u32, inW: u32, cin: u32, cout: u32,
  outH: u32, outW: u32, kh: u32, kw: u32,
  padTop: u32, padLeft: u32, m: u32, colGroups: u32,
  kTiles: u32, mPerSplit: u32, splits: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(2) var<storage, read> dz4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> outBias4: array<vec4f>;

const SG: u32 = 8u;
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;

// Output pixel (image, row, column) and, in w, whether it is inside this split.
struct Pix { b: i32, h: i32, w: i32, ok: bool }

fn nextPix(p: Pix, m: u32, mEnd: u32) -> Pix {
  var q = p;
  q.w += 1;
  if (q.w == i32(shape.outW)) { q.w = 0; q.h += 1; }
  if (q.h == i32(shape.outH)) { q.h = 0; q.b += 1; }
  q.ok = m + 1u < mEnd;
  return q;
}

fn loadX(p: Pix, d: vec2i, ci4: u32, ciOk: bool) -> vec4f {
  let ih = p.h * i32(STRIDE_H) + d.x;
  let iw = p.w * i32(STRIDE_W) + d.y;
  let ok = p.ok && ciOk && ih >= 0 && ih < i32(shape.inH) && iw >= 0 && iw < i32(shape.inW);
  let at = select(0u, u32((p.b * i32(shape.inH) + ih) * i32(shape.inW) + iw) * (shape.cin / 4u) + ci4, ok);
  return select(vec4f(0.0), x4[at], ok);
}

fn loadDz(m: u32, ok: bool, n4: u32) -> vec4f {
  return select(vec4f(0.0), dz4[select(0u, m * (shape.cout / 4u) + n4, ok)], ok);
}

fn outer(xb: vec4f, dz: vec4f) -> mat4x4f {
  return mat4x4f(dz * xb.x, dz * xb.y, dz * xb.z, dz * xb.w);
}

fn rank(a0: ptr<function, mat4x4f>, a1: ptr<function, mat4x4f>, a2: ptr<function, mat4x4f>, a3: ptr<function, mat4x4f>,
        a4: ptr<function, mat4x4f>, a5: ptr<function, mat4x4f>, a6: ptr<function, mat4x4f>, a7: ptr<function, mat4x4f>,
        xv: vec4f, dz: vec4f) {
  *a0 += outer(subgroupBroadcast(xv, 0u), dz);
  *a1 += outer(subgroupBroadcast(xv, 1u), dz);
  *a2 += outer(subgroupBroadcast(xv, 2u), dz);
  *a3 += outer(subgroupBroadcast(xv, 3u), dz);
  *a4 += outer(subgroupBroadcast(xv, 4u), dz);
  *a5 += outer(subgroupBroadcast(xv, 5u), dz);
  *a6 += outer(subgroupBroadcast(xv, 6u), dz);
  *a7 += outer(subgroupBroadcast(xv, 7u), dz);
}

// Rows k0 + 4s .. + 3 of the tile, this lane's 4 channels.
fn store(a: mat4x4f, s: u32, base: u32, ci4: u32, n4: u32, ok: bool) {
  if (ok && ci4 + s < shape.cin / 4u) {
    let cout4 = shape.cout / 4u;
    let r = base + 4u * s;
    out4[r * cout4 + n4] = a[0];
    out4[(r + 1u) * cout4 + n4] = a[1];
    out4[(r + 2u) * cout4 + n4] = a[2];
    out4[(r + 3u) * cout4 + n4] = a[3];
  }
}

@compute @workgroup_size(SG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(subgroup_invocation_id) lane: u32) {
  let g = wid.y * nwg.x + wid.x;
  let colGroup = g % shape.colGroups;
  let rest = g / shape.colGroups;
  let kTile = rest % shape.kTiles;
  let split = rest / shape.kTiles;
  if (split >= shape.splits) { return; }
  let cin4 = shape.cin / 4u;
  let cout4 = shape.cout / 4u;
  let ciTiles = (cin4 + SG - 1u) / SG;
  let tap = kTile / ciTiles;
  let ciBase = (kTile % ciTiles) * SG;       // first vec4 of input channels in this tile
  let ci4 = ciBase + lane;
  let ciOk = ci4 < cin4;
  let d = vec2i(i32(tap / shape.kw) - i32(shape.padTop), i32(tap % shape.kw) - i32(shape.padLeft));
  let n4 = min(colGroup * SG + lane, cout4 - 1u);
  let mBegin = split * shape.mPerSplit;
  let mEnd = min(shape.m, mBegin + shape.mPerSplit);
  let hw = shape.outH * shape.outW;
  var p = Pix(i32(mBegin / hw), i32((mBegin % hw) / shape.outW), i32(mBegin % shape.outW), mBegin < mEnd);

  var a0: mat4x4f; var a1: mat4x4f; var a2: mat4x4f; var a3: mat4x4f;
  var a4: mat4x4f; var a5: mat4x4f; var a6: mat4x4f; var a7: mat4x4f;
  var bsum = vec4f(0.0);
  for (var m = mBegin; m < mEnd; m += 4u) {
    let p1 = nextPix(p, m, mEnd);
    let p2 = nextPix(p1, m + 1u, mEnd);
    let p3 = nextPix(p2, m + 2u, mEnd);
    let x0 = loadX(p, d, ci4, ciOk);
    let x1 = loadX(p1, d, ci4, ciOk);
    let x2 = loadX(p2, d, ci4, ciOk);
    let x3 = loadX(p3, d, ci4, ciOk);
    let z0 = loadDz(m, p.ok, n4);
    let z1 = loadDz(m + 1u, p1.ok, n4);
    let z2 = loadDz(m + 2u, p2.ok, n4);
    let z3 = loadDz(m + 3u, p3.ok, n4);
    rank(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7, x0, z0);
    rank(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7, x1, z1);
    rank(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7, x2, z2);
    rank(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7, x3, z3);
    bsum += (z0 + z1) + (z2 + z3);
    p = nextPix(p3, m + 3u, mEnd);
  }

  let mine = colGroup * SG + lane < cout4;
  let base = split * shape.kh * shape.kw * shape.cin + tap * shape.cin + 4u * ciBase;
  store(a0, 0u, base, ciBase, n4, mine);
  store(a1, 1u, base, ciBase, n4, mine);
  store(a2, 2u, base, ciBase, n4, mine);
  store(a3, 3u, base, ciBase, n4, mine);
  store(a4, 4u, base, ciBase, n4, mine);
  store(a5, 5u, base, ciBase, n4, mine);
  store(a6, 6u, base, ciBase, n4, mine);
  store(a7, 7u, base, ciBase, n4, mine);
  if (kTile == 0u && mine) { outBias4[split * cout4 + n4] = bsum; }
}
