// Global average / max pooling over H*W, NHWC [N, H*W, C] -> [N, C], and its gradient.
//
// Reductions run one workgroup per (image n, block of CB channels): lane = lid % CB picks the
// channel (adjacent lanes read adjacent channels: coalesced), q = lid / CB one of PL = WG / CB
// position lanes, each striding over positions q, q + PL, ...; a tree over q in workgroup
// memory combines them. So the work spreads over positions as well as channels (7x7x1280 and
// 112x112x32 both fill workgroups). Lanes past C idle but join every barrier.
//
// The max is the FIRST maximum in row-major position order (ties go to the lowest position),
// in forward_max and backward_max alike; backward_max recomputes it from x (nothing stored).
//
//   forward_avg / forward_max  y[n, c] = mean / max over positions
//   backward_max               same workgroups: the argmax, then dx = dy at it, 0 elsewhere
//   backward_avg               one invocation per dx element: dy[n, c] / (H*W)
// Entries ending in 4 process 4 channels as a vec4 (channels % 4 == 0); `C` is then C / 4.

struct Shape {
  N: u32, HW: u32, C: u32,
  blocks: u32,  // channel blocks per image: ceil(C / CB)
  count: u32,   // workgroups with work (N * blocks), or dx elements for backward_avg
}

@group(0) @binding(0) var<uniform> s: Shape;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(7) var<storage, read> dy4: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dx4: array<vec4f>;

const WG: u32 = 128u;
// Channel lanes per workgroup: a power of two <= WG (32 scalar / 8 vec4 = 128 contiguous bytes).
override CB: u32 = 32u;
const EMPTY: u32 = 0xffffffffu; // argmax of a lane that saw no position (H*W < PL)

var<workgroup> red: array<f32, WG>;
var<workgroup> red_at: array<u32, WG>;
var<workgroup> red4: array<vec4f, WG>;
var<workgroup> red_at4: array<vec4u, WG>;

// Workgroup (n, channel block) and this invocation's lanes.
struct Lanes { n: u32, c: u32, q: u32, live: bool }

fn lanes_of(wid: vec3u, nwg: vec3u, lid: u32) -> Lanes {
  let g = wid.y * nwg.x + wid.x;
  let c = (g % s.blocks) * CB + lid % CB;
  return Lanes(g / s.blocks, c, lid / CB, c < s.C);
}

fn workgroup_index(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.y * nwg.x + wid.x;
}

// ---------------------------------------------------------------- scalar channels

// Leaves the argmax position of channel lane l in red_at[l] (its value in red[l]).
fn reduce_max(l: Lanes, lid: u32) {
  let pl = WG / CB;
  var v = 0.0;
  var at = EMPTY;
  if (l.live) {
    for (var p = l.q; p < s.HW; p += pl) {
      let u = x[(l.n * s.HW + p) * s.C + l.c];
      if (at == EMPTY || u > v) { v = u; at = p; }
    }
  }
  red[lid] = v;
  red_at[lid] = at;
  workgroupBarrier();
  for (var st = pl / 2u; st > 0u; st /= 2u) {
    if (l.q < st) {
      let ov = red[lid + st * CB];
      let oa = red_at[lid + st * CB];
      let a = red_at[lid];
      if (oa != EMPTY && (a == EMPTY || ov > red[lid] || (ov == red[lid] && oa < a))) {
        red[lid] = ov;
        red_at[lid] = oa;
      }
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn forward_avg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  if (workgroup_index(wid, nwg) >= s.count) { return; }
  let l = lanes_of(wid, nwg, lid);
  let pl = WG / CB;
  var sum = 0.0;
  if (l.live) {
    for (var p = l.q; p < s.HW; p += pl) { sum += x[(l.n * s.HW + p) * s.C + l.c]; }
  }
  red[lid] = sum;
  workgroupBarrier();
  for (var st = pl / 2u; st > 0u; st /= 2u) {
    if (l.q < st) { red[lid] += red[lid + st * CB]; }
    workgroupBarrier();
  }
  if (l.q == 0u && l.live) { y[l.n * s.C + l.c] = red[lid] / f32(s.HW); }
}

@compute @workgroup_size(WG)
fn forward_max(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  if (workgroup_index(wid, nwg) >= s.count) { return; }
  let l = lanes_of(wid, nwg, lid);
  reduce_max(l, lid);
  if (l.q == 0u && l.live) { y[l.n * s.C + l.c] = red[lid]; }
}

@compute @workgroup_size(WG)
fn backward_max(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  if (workgroup_index(wid, nwg) >= s.count) { return; }
  let l = lanes_of(wid, nwg, lid);
  reduce_max(l, lid);
  if (!l.live) { return; }
  let at = red_at[lid % CB];
  let g = dy[l.n * s.C + l.c];
  for (var p = l.q; p < s.HW; p += WG / CB) {
    dx[(l.n * s.HW + p) * s.C + l.c] = select(0.0, g, p == at);
  }
}

@compute @workgroup_size(WG)
fn backward_avg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wid, nwg) * WG + lid;
  if (i >= s.count) { return; }
  let n = i / (s.HW * s.C);
  dx[i] = dy[n * s.C + i % s.C] / f32(s.HW);
}

// ---------------------------------------------------------------- 4 channels at a time

fn reduce_max4(l: Lanes, lid: u32) {
  let pl = WG / CB;
  var v = vec4f(0.0);
  var at = vec4u(EMPTY);
  if (l.live) {
    for (var p = l.q; p < s.HW; p += pl) {
      let u = x4[(l.n * s.HW + p) * s.C + l.c];
      let take = (at == vec4u(EMPTY)) | (u > v);
      v = select(v, u, take);
      at = select(at, vec4u(p), take);
    }
  }
  red4[lid] = v;
  red_at4[lid] = at;
  workgroupBarrier();
  for (var st = pl / 2u; st > 0u; st /= 2u) {
    if (l.q < st) {
      let ov = red4[lid + st * CB];
      let oa = red_at4[lid + st * CB];
      let mv = red4[lid];
      let a = red_at4[lid];
      let take = (oa != vec4u(EMPTY)) & ((a == vec4u(EMPTY)) | (ov > mv) | ((ov == mv) & (oa < a)));
      red4[lid] = select(mv, ov, take);
      red_at4[lid] = select(a, oa, take);
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn forward_avg4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  if (workgroup_index(wid, nwg) >= s.count) { return; }
  let l = lanes_of(wid, nwg, lid);
  let pl = WG / CB;
  var sum = vec4f(0.0);
  if (l.live) {
    for (var p = l.q; p < s.HW; p += pl) { sum += x4[(l.n * s.HW + p) * s.C + l.c]; }
  }
  red4[lid] = sum;
  workgroupBarrier();
  for (var st = pl / 2u; st > 0u; st /= 2u) {
    if (l.q < st) { red4[lid] += red4[lid + st * CB]; }
    workgroupBarrier();
  }
  if (l.q == 0u && l.live) { y4[l.n * s.C + l.c] = red4[lid] / f32(s.HW); }
}

@compute @workgroup_size(WG)
fn forward_max4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  if (workgroup_index(wid, nwg) >= s.count) { return; }
  let l = lanes_of(wid, nwg, lid);
  reduce_max4(l, lid);
  if (l.q == 0u && l.live) { y4[l.n * s.C + l.c] = red4[lid]; }
}

@compute @workgroup_size(WG)
fn backward_max4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  if (workgroup_index(wid, nwg) >= s.count) { return; }
  let l = lanes_of(wid, nwg, lid);
  reduce_max4(l, lid);
  if (!l.live) { return; }
  let at = red_at4[lid % CB];
  let g = dy4[l.n * s.C + l.c];
  for (var p = l.q; p < s.HW; p += WG / CB) {
    dx4[(l.n * s.HW + p) * s.C + l.c] = select(vec4f(0.0), g, at == vec4u(p));
  }
}

@compute @workgroup_size(WG)
fn backward_avg4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wid, nwg) * WG + lid;
  if (i >= s.count) { return; }
  let n = i / (s.HW * s.C);
  dx4[i] = dy4[n * s.C + i % s.C] / f32(s.HW);
}
