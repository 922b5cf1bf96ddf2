// Keras 3 BatchNormalization over the last axis of a [rows, C] tensor (NHWC flattened:
// rows = N*H*W), element (r, c) at r*C + c.
//
// Batch statistics (training) in two dispatches, never E[x^2] - E[x]^2 (it cancels in f32
// when |mean| >> std):
//   stats_partial  grid [groups, ceil(C / TC)]: workgroup (g, t) covers rows
//                  [g*chunk, min((g+1)*chunk, rows)) of channels [t*TC, t*TC + TC). Each of the
//                  TR = WG / TC lanes per channel runs Welford over every TR-th row; the lanes
//                  are merged with Chan's formula; part[g*C + c] = (mean, M2) of the chunk.
//   stats_final    grid [ceil(C / TC)]: lanes merge the chunks' (count, mean, M2) the same way;
//                  writes mean, invStd = 1/sqrt(M2/rows + eps) (biased variance, as Keras),
//                  updates the moving statistics in place and writes coef for `affine`.
// Gradient sums (sum dy and sum dy*(x - mean), per channel) use the same two-dispatch layout:
// grad_partial, grad_final. The inference-mode backward of a layer whose gamma/beta train
// (Keras's base(x, training=False) with the base unfrozen) binds the moving mean as `mean` in
// grad_partial and merges with infer_grad_final: dgamma, dbeta and coef for `scale`.
//
// Elementwise passes read per-channel coefficients coef[c] (vec4) prepared by a per-channel
// pass, so each element costs a load of x (dy) and one fma-like expression:
//   affine      y  = (x - coef.y) * coef.x + coef.z                     (forward)
//   grad_input  dx = (dy - coef.w) * coef.x + (x - coef.y) * coef.z     (training backward)
//   scale       dx = dy * coef.x                                        (inference backward)
// Entries ending in 4 process 4 channels as a vec4 (C % 4 == 0).
// Each entry point binds at most 8 storage buffers (the default per-stage limit).

struct Params {
  rows: u32, C: u32, chunk: u32, groups: u32,   // chunk: rows per stats workgroup
  n: u32, n4: u32, C4: u32, _pad0: u32,        // n = rows*C elements, n4 = n / 4, C4 = C / 4
  eps: f32, momentum: f32, _pad1: f32, _pad2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<vec4f>;
@group(0) @binding(6) var<storage, read> dy4: array<vec4f>;
@group(0) @binding(7) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dx4: array<vec4f>;
@group(0) @binding(9) var<storage, read_write> part: array<vec2f>;
@group(0) @binding(10) var<storage, read> gamma: array<f32>;
@group(0) @binding(11) var<storage, read> beta: array<f32>;
@group(0) @binding(12) var<storage, read_write> mean: array<f32>;
@group(0) @binding(13) var<storage, read_write> invStd: array<f32>;
@group(0) @binding(14) var<storage, read_write> movingMean: array<f32>;
@group(0) @binding(15) var<storage, read_write> movingVar: array<f32>;
@group(0) @binding(16) var<storage, read_write> coef: array<vec4f>;
@group(0) @binding(17) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(18) var<storage, read_write> dbeta: array<f32>;

const WG: u32 = 128u;
// Channels per reduction workgroup (a power of two <= 32, chosen from C by the host);
// consecutive invocations read consecutive channels of a row.
override TC: u32 = 32u;
override TR: u32 = WG / TC;

var<workgroup> wn: array<f32, WG>;
var<workgroup> wa: array<f32, WG>;
var<workgroup> wb: array<f32, WG>;

fn linear_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

// Chan et al.: (count, mean, M2) of the union of two disjoint sets. Exact in real arithmetic
// and stable in f32 (no difference of large sums); an empty side returns the other.
fn chan(na: f32, ma: f32, qa: f32, nb: f32, mb: f32, qb: f32) -> vec3f {
  if (nb == 0.0) { return vec3f(na, ma, qa); }
  let n = na + nb;
  let d = mb - ma;
  let f = nb / n;
  return vec3f(n, ma + d * f, qa + qb + d * d * na * f);
}

// Tree-merges the TR lanes of each channel (wn/wa/wb) into lane 0. Call from uniform control.
fn merge_lanes(lid: u32, lane: u32) {
  workgroupBarrier();
  for (var s = TR / 2u; s > 0u; s /= 2u) {
    if (lane < s) {
      let o = lid + s * TC;
      let r = chan(wn[lid], wa[lid], wb[lid], wn[o], wa[o], wb[o]);
      wn[lid] = r.x;
      wa[lid] = r.y;
      wb[lid] = r.z;
    }
    workgroupBarrier();
  }
}

// Tree-sums wa and wb over the TR lanes of each channel into lane 0.
fn sum_lanes(lid: u32, lane: u32) {
  workgroupBarrier();
  for (var s = TR / 2u; s > 0u; s /= 2u) {
    if (lane < s) {
      let o = lid + s * TC;
      wa[lid] += wa[o];
      wb[lid] += wb[o];
    }
    workgroupBarrier();
  }
}

// ---------------------------------------------------------------- batch statistics

@compute @workgroup_size(WG)
fn stats_partial(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid / TC;
  let c = wid.y * TC + lid % TC;
  let r0 = wid.x * p.chunk;
  let r1 = min(r0 + p.chunk, p.rows);
  var n = 0.0;
  var m = 0.0;
  var q = 0.0;
  if (c < p.C) {
    for (var r = r0 + lane; r < r1; r += TR) {
      let v = x[r * p.C + c];
      n += 1.0;
      let d = v - m;
      m += d / n;
      q += d * (v - m);
    }
  }
  wn[lid] = n;
  wa[lid] = m;
  wb[lid] = q;
  merge_lanes(lid, lane);
  if (lane == 0u && c < p.C) {
    part[wid.x * p.C + c] = vec2f(wa[lid], wb[lid]);
  }
}

@compute @workgroup_size(WG)
fn stats_final(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid / TC;
  let c = wid.x * TC + lid % TC;
  var acc = vec3f(0.0);
  if (c < p.C) {
    for (var g = lane; g < p.groups; g += TR) {
      let count = f32(min(p.chunk, p.rows - g * p.chunk));
      let v = part[g * p.C + c];
      acc = chan(acc.x, acc.y, acc.z, count, v.x, v.y);
    }
  }
  wn[lid] = acc.x;
  wa[lid] = acc.y;
  wb[lid] = acc.z;
  merge_lanes(lid, lane);
  if (lane == 0u && c < p.C) {
    let mu = wa[lid];
    let variance = wb[lid] / f32(p.rows);
    let inv = 1.0 / sqrt(variance + p.eps);
    mean[c] = mu;
    invStd[c] = inv;
    movingMean[c] = movingMean[c] * p.momentum + mu * (1.0 - p.momentum);
    movingVar[c] = movingVar[c] * p.momentum + variance * (1.0 - p.momentum);
    coef[c] = vec4f(gamma[c] * inv, mu, beta[c], 0.0);
  }
}

// ---------------------------------------------------------------- gradient sums

@compute @workgroup_size(WG)
fn grad_partial(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid / TC;
  let c = wid.y * TC + lid % TC;
  let r0 = wid.x * p.chunk;
  let r1 = min(r0 + p.chunk, p.rows);
  var s1 = 0.0;
  var s2 = 0.0;
  if (c < p.C) {
    let mu = mean[c];
    for (var r = r0 + lane; r < r1; r += TR) {
      let i = r * p.C + c;
      s1 += dy[i];
      s2 += dy[i] * (x[i] - mu);
    }
  }
  wa[lid] = s1;
  wb[lid] = s2;
  sum_lanes(lid, lane);
  if (lane == 0u && c < p.C) {
    part[wid.x * p.C + c] = vec2f(wa[lid], wb[lid]);
  }
}

@compute @workgroup_size(WG)
fn grad_final(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid / TC;
  let c = wid.x * TC + lid % TC;
  var s = vec2f(0.0);
  if (c < p.C) {
    for (var g = lane; g < p.groups; g += TR) { s += part[g * p.C + c]; }
  }
  wa[lid] = s.x;
  wb[lid] = s.y;
  sum_lanes(lid, lane);
  if (lane == 0u && c < p.C) {
    let inv = invStd[c];
    let db = wa[lid];
    let dg = wb[lid] * inv;   // sum dy * xhat
    dbeta[c] = db;
    dgamma[c] = dg;
    // dx = gamma*invStd * (dy - db/N - xhat*dg/N), with xhat = (x - mean)*invStd
    let k = gamma[c] * inv;
    let rn = 1.0 / f32(p.rows);
    coef[c] = vec4f(k, mean[c], -k * inv * dg * rn, db * rn);
  }
}

// Merges grad_partial's chunks taken around the moving mean: dbeta = sum dy,
// dgamma = sum dy*(x - movingMean) / sqrt(movingVar + eps); coef as infer_grad_prep writes it
// (same expression, so dx matches the plain inference backward bit for bit).
@compute @workgroup_size(WG)
fn infer_grad_final(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid / TC;
  let c = wid.x * TC + lid % TC;
  var s = vec2f(0.0);
  if (c < p.C) {
    for (var g = lane; g < p.groups; g += TR) { s += part[g * p.C + c]; }
  }
  wa[lid] = s.x;
  wb[lid] = s.y;
  sum_lanes(lid, lane);
  if (lane == 0u && c < p.C) {
    let sd = sqrt(movingVar[c] + p.eps);
    dbeta[c] = wa[lid];
    dgamma[c] = wb[lid] / sd;
    coef[c] = vec4f(gamma[c] / sd, 0.0, 0.0, 0.0);
  }
}

// ---------------------------------------------------------------- inference coefficients

@compute @workgroup_size(WG)
fn infer_prep(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let c = linear_index(wid, nwg, lid);
  if (c >= p.C) { return; }
  let k = gamma[c] / sqrt(movingVar[c] + p.eps);
  coef[c] = vec4f(k, movingMean[c], beta[c], 0.0);
}

@compute @workgroup_size(WG)
fn infer_grad_prep(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let c = linear_index(wid, nwg, lid);
  if (c >= p.C) { return; }
  coef[c] = vec4f(gamma[c] / sqrt(movingVar[c] + p.eps), 0.0, 0.0, 0.0);
}

// ---------------------------------------------------------------- elementwise, scalar channels

@compute @workgroup_size(WG)
fn affine(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  let k = coef[i % p.C];
  y[i] = (x[i] - k.y) * k.x + k.z;
}

@compute @workgroup_size(WG)
fn grad_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  let k = coef[i % p.C];
  dx[i] = (dy[i] - k.w) * k.x + (x[i] - k.y) * k.z;
}

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  dx[i] = dy[i] * coef[i % p.C].x;
}

// ---------------------------------------------------------------- elementwise, 4 channels

// The coefficients of channels 4*c4 .. 4*c4+3, transposed: field j of the result holds
// component j (scale, center, shift, extra) of the four channels.
fn coef4(c4: u32) -> mat4x4f {
  return transpose(mat4x4f(coef[4u * c4], coef[4u * c4 + 1u], coef[4u * c4 + 2u], coef[4u * c4 + 3u]));
}

@compute @workgroup_size(WG)
fn affine4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n4) { return; }
  let k = coef4(i % p.C4);
  y4[i] = (x4[i] - k[1]) * k[0] + k[2];
}

@compute @workgroup_size(WG)
fn grad_input4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n4) { return; }
  let k = coef4(i % p.C4);
  dx4[i] = (dy4[i] - k[3]) * k[0] + (x4[i] - k[1]) * k[2];
}

@compute @workgroup_size(WG)
fn scale4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n4) { return; }
  let c = 4u * (i % p.C4);
  dx4[i] = dy4[i] * vec4f(coef[c].x, coef[c + 1u].x, coef[c + 2u].x, coef[c + 3u].x);
}
