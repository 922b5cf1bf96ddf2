// Keras 3's stateful classification metrics, accumulated on the GPU from the head's logits.
// Every entry point adds this batch's sums into `counts`, which the kernel never clears.
// Sums run in a fixed stride and a fixed tree (no float atomics), so results are deterministic.
//
// Confusion counts (Precision, Recall, AUC; keras/src/metrics/metrics_utils.py), one workgroup
// per threshold j, counts[4 j .. 4 j + 3] += weighted [tp, fp, tn, fn], where
//   p = sigmoid(z) formed as sigmoid_bce.wgsl forms it; label positive iff y != 0 (cast to bool)
//   predicted positive at j:
//     shape.mode 0 (update_confusion_matrix_variables):  p > thresholds[j]
//     shape.mode 1 (its evenly spaced path, Keras's AUC): the bucket ceil(x) - 1 of
//       x = clip(p, 0, 1) * (T - 1), raised to 0 when the end thresholds carry epsilon
//       (shape.eps), is >= j; that is  x > j,  or j == 0 with epsilon.
//
// Top-k categorical accuracy (keras/src/metrics/accuracy_metrics.py, ops.in_top_k on the TF
// backend): p = softmax(z) formed as softmax_ce.wgsl's `probabilities` forms it, target t = the
// sparse label (truncated, as Keras's int32 cast) or the first argmax of the one-hot row;
// hit iff every p_k is finite, t is in [0, classes) and #{k : p_k > p_t} < k  (classes tied
// with the target count as in the top k; k >= classes always hits).
// counts[0] += sum w_i hit_i, counts[1] += sum w_i   (w_i = 1 without weights).

struct Shape {
  batch: u32,
  n: u32,     // confusion: thresholds; top-k: classes
  k: u32,     // confusion: mode (0 compare, 1 evenly spaced buckets); top-k: k
  eps: u32,   // confusion, mode 1: 1 when thresholds[0] < 0 or thresholds[T - 1] > 1
}

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read> thresholds: array<f32>;
@group(0) @binding(5) var<storage, read_write> counts: array<f32>;

// A power of two, chosen by the host.
override WG: u32 = 256u;
override SPARSE: bool = false;

var<workgroup> partial: array<vec4f, WG>;

// Fixed-order tree sum of the invocations' partials; every invocation gets the total.
fn reduce(lid: u32, part: vec4f) -> vec4f {
  partial[lid] = part;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { partial[lid] = partial[lid] + partial[lid + s]; }
    workgroupBarrier();
  }
  return partial[0];
}

// ---------------------------------------------------------------- confusion counts

// sigmoid(z) exactly as sigmoid_bce.wgsl's bce() implies it: q = sigmoid(-|z|), p = 1 - q for z >= 0.
fn sigmoid_prob(z: f32) -> f32 {
  let t = exp(-abs(z));
  let q = t / (1.0 + t);
  return select(q, 1.0 - q, z >= 0.0);
}

fn predicted_positive(p: f32, j: u32) -> bool {
  if (shape.k == 0u) { return p > thresholds[j]; }
  if (j == 0u && shape.eps != 0u) { return true; }
  let x = clamp(p, 0.0, 1.0) * f32(shape.n - 1u);
  return x > f32(j);
}

// [tp, fp, tn, fn] indicators of example i at threshold j.
fn confusion_term(i: u32, j: u32) -> vec4f {
  let pos = predicted_positive(sigmoid_prob(logits[i]), j);
  let y = labels[i] != 0.0;
  return vec4f(f32(y && pos), f32(!y && pos), f32(!y && !pos), f32(y && !pos));
}

fn add_confusion(lid: u32, j: u32, part: vec4f) {
  let total = reduce(lid, part);
  if (lid == 0u) {
    let o = 4u * j;
    counts[o] += total.x;
    counts[o + 1u] += total.y;
    counts[o + 2u] += total.z;
    counts[o + 3u] += total.w;
  }
}

@compute @workgroup_size(WG)
fn confusion(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let j = wid.x;
  var part = vec4f(0.0);
  for (var i = lid; i < shape.batch; i += WG) { part += confusion_term(i, j); }
  add_confusion(lid, j, part);
}

@compute @workgroup_size(WG)
fn confusion_weighted(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let j = wid.x;
  var part = vec4f(0.0);
  // w * indicator, as Keras multiplies: a weight of inf times a 0 indicator is NaN there too
  for (var i = lid; i < shape.batch; i += WG) { part += weights[i] * confusion_term(i, j); }
  add_confusion(lid, j, part);
}

// ---------------------------------------------------------------- top-k

fn finite(v: f32) -> bool {
  // by the bits: comparisons with NaN may be folded away by the compiler
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// 1 when the row's target is in its top k, else 0.
fn topk_hit(row: u32) -> f32 {
  let c = shape.n;
  let base = row * c;
  var m = logits[base];
  var a = 0u;
  for (var k = 1u; k < c; k++) {
    let v = logits[base + k];
    if (v > m) { m = v; a = k; }
  }
  var t = 0.0;
  for (var k = 0u; k < c; k++) {
    if (k != a) { t += exp(logits[base + k] - m); }
  }
  let denom = 1.0 + t;
  var tgt = 0u;
  if (SPARSE) {
    let l = trunc(labels[row]);
    if (!(l >= 0.0 && l < f32(c))) { return 0.0; }
    tgt = u32(l);
  } else {
    var best = labels[base];
    for (var k = 1u; k < c; k++) {
      let v = labels[base + k];
      if (v > best) { best = v; tgt = k; }
    }
  }
  let pt = exp(logits[base + tgt] - m) / denom;
  if (!finite(pt)) { return 0.0; }
  var greater = 0u;
  for (var k = 0u; k < c; k++) {
    let pk = exp(logits[base + k] - m) / denom;
    if (!finite(pk)) { return 0.0; }
    if (pk > pt) { greater++; }
  }
  return select(0.0, 1.0, greater < shape.k);
}

fn add_topk(lid: u32, part: vec4f) {
  let total = reduce(lid, part);
  if (lid == 0u) {
    counts[0] += total.x;
    counts[1] += total.y;
  }
}

@compute @workgroup_size(WG)
fn topk(@builtin(local_invocation_index) lid: u32) {
  var part = vec4f(0.0);
  for (var i = lid; i < shape.batch; i += WG) { part += vec4f(topk_hit(i), 1.0, 0.0, 0.0); }
  add_topk(lid, part);
}

@compute @workgroup_size(WG)
fn topk_weighted(@builtin(local_invocation_index) lid: u32) {
  var part = vec4f(0.0);
  for (var i = lid; i < shape.batch; i += WG) {
    let w = weights[i];
    part += vec4f(w * topk_hit(i), w, 0.0, 0.0);
  }
  add_topk(lid, part);
}
