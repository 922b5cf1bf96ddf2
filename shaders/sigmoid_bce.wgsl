// Fused sigmoid + binary cross-entropy on logits z[batch] (one output unit), labels y in [0, 1].
// Keras (tf.keras >= 2.7 from_logits form):
//   loss_i = max(z, 0) - z * y + log(1 + exp(-|z|)),   batch loss = mean_i loss_i
//   dL/dz_i = (sigmoid(z_i) - y_i) / batch
//   acc    = mean_i (y_i == (z_i > 0))            (sigmoid(z) > 0.5  <=>  z > 0)
// stats[0] = batch-mean loss, stats[1] = accuracy. One workgroup walks the whole batch in a
// fixed stride and reduces in a fixed tree, so results are deterministic (no float atomics).
//
// `*_weighted` entry points take per-example weights w[batch] (Keras sample_weight, e.g. from
// class_weight), with Keras 3's reduction 'sum_over_batch_size' and weighted metric means:
//   batch loss = sum_i w_i loss_i / batch          (divided by the batch, not by sum_i w_i)
//   dL/dz_i    = w_i (sigmoid(z_i) - y_i) / batch
//   acc        = sum_i w_i correct_i / sum_i w_i   (0 when sum_i w_i = 0, Keras's divide_no_nan)
// and keep the raw sums [sum w loss, sum w correct, sum w] in `weighted_sums` for accumulate_weighted.
// The unweighted entry points are untouched by this (their arithmetic is as before).

struct Shape { batch: u32 }

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
// accumulate: this batch's stats in, the epoch's running [loss sum, correct, count] updated.
@group(0) @binding(5) var<storage, read> batch_stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> totals: array<f32>;
@group(0) @binding(7) var<storage, read> weights: array<f32>;        // *_weighted: w[batch]
@group(0) @binding(8) var<storage, read_write> weighted_sums: array<f32>;     // [sum w loss, sum w correct, sum w, 0]

// A power of two, chosen by the host: min(256, maxComputeInvocationsPerWorkgroup).
override WG: u32 = 256u;

var<workgroup> partial: array<vec2f, WG>;
var<workgroup> partial_w: array<vec4f, WG>;   // weighted: (w loss, w correct, w, 0)

// log(1 + t) for t in [0, 1] without calling log: log1p(t) = 2 atanh(s), s = t / (2 + t) <= 1/3,
// as the odd series 2 s (1 + s^2/3 + ... + s^14/15); the truncation error is below 1.5e-8
// relative. WGSL only promises log() to an absolute 2^-21 near 1, too coarse when t is tiny.
fn log1p_unit(t: f32) -> f32 {
  let s = t / (2.0 + t);
  let s2 = s * s;
  var p = 1.0 / 15.0;
  p = p * s2 + 1.0 / 13.0;
  p = p * s2 + 1.0 / 11.0;
  p = p * s2 + 1.0 / 9.0;
  p = p * s2 + 1.0 / 7.0;
  p = p * s2 + 1.0 / 5.0;
  p = p * s2 + 1.0 / 3.0;
  p = p * s2 + 1.0;
  return 2.0 * s * p;
}

// (loss, sigmoid(z) - y, correct) for one example, stable for any |z|.
fn bce(z: f32, y: f32) -> vec3f {
  let t = exp(-abs(z));             // in (0, 1]; underflows to 0 for large |z|, harmlessly
  let loss = max(z, 0.0) - z * y + log1p_unit(t);
  let q = t / (1.0 + t);            // sigmoid(-|z|), no cancellation
  // sigmoid(z) - y without forming 1 - q when z >= 0 (keeps the small gradient of a
  // confident correct prediction accurate).
  let diff = select(q - y, (1.0 - y) - q, z >= 0.0);
  let correct = select(0.0, 1.0, y == select(0.0, 1.0, z > 0.0));
  return vec3f(loss, diff, correct);
}

// Sums the per-invocation partials (fixed tree) and writes the batch means to stats.
fn reduce_to_stats(lid: u32, part: vec2f) {
  partial[lid] = part;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { partial[lid] = partial[lid] + partial[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let n = f32(shape.batch);
    stats[0] = partial[0].x / n;
    stats[1] = partial[0].y / n;
  }
}

@compute @workgroup_size(WG)
fn loss_and_gradient(@builtin(local_invocation_index) lid: u32) {
  let n = shape.batch;
  let inv = 1.0 / f32(n);
  var part = vec2f(0.0);
  for (var i = lid; i < n; i += WG) {
    let r = bce(logits[i], labels[i]);
    dlogits[i] = r.y * inv;
    part += vec2f(r.x, r.z);
  }
  reduce_to_stats(lid, part);
}

@compute @workgroup_size(WG)
fn loss_only(@builtin(local_invocation_index) lid: u32) {
  let n = shape.batch;
  var part = vec2f(0.0);
  for (var i = lid; i < n; i += WG) {
    let r = bce(logits[i], labels[i]);
    part += vec2f(r.x, r.z);
  }
  reduce_to_stats(lid, part);
}

// Weighted: the fixed-tree sums of (w loss, w correct, w) to stats and weighted_sums.
fn reduce_weighted(lid: u32, part: vec4f) {
  partial_w[lid] = part;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { partial_w[lid] = partial_w[lid] + partial_w[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let t = partial_w[0];
    stats[0] = t.x / f32(shape.batch);
    stats[1] = select(0.0, t.y / t.z, t.z > 0.0);
    weighted_sums[0] = t.x;
    weighted_sums[1] = t.y;
    weighted_sums[2] = t.z;
    weighted_sums[3] = 0.0;
  }
}

@compute @workgroup_size(WG)
fn loss_and_gradient_weighted(@builtin(local_invocation_index) lid: u32) {
  let n = shape.batch;
  let inv = 1.0 / f32(n);
  var part = vec4f(0.0);
  for (var i = lid; i < n; i += WG) {
    let r = bce(logits[i], labels[i]);
    let w = weights[i];
    dlogits[i] = r.y * (w * inv);   // w = 1 gives exactly the unweighted r.y * inv
    part += vec4f(w * r.x, w * r.z, w, 0.0);
  }
  reduce_weighted(lid, part);
}

@compute @workgroup_size(WG)
fn loss_only_weighted(@builtin(local_invocation_index) lid: u32) {
  let n = shape.batch;
  var part = vec4f(0.0);
  for (var i = lid; i < n; i += WG) {
    let r = bce(logits[i], labels[i]);
    let w = weights[i];
    part += vec4f(w * r.x, w * r.z, w, 0.0);
  }
  reduce_weighted(lid, part);
}

// One invocation: the epoch totals are a handful of floats and must be summed in a fixed order.
@compute @workgroup_size(1)
fn accumulate() {
  let n = f32(shape.batch);
  totals[0] += batch_stats[0] * n;
  totals[1] += round(batch_stats[1] * n);   // the correct count, an integer up to rounding
  totals[2] += n;
}

// After a weighted pass: totals += [sum w loss, sum w correct, sum w] of that batch, and
// totals[3] += batch where totals has a 4th float (Keras's epoch loss is totals[0] / totals[3],
// its weighted accuracy totals[1] / totals[2]).
@compute @workgroup_size(1)
fn accumulate_weighted() {
  totals[0] += weighted_sums[0];
  totals[1] += weighted_sums[1];
  totals[2] += weighted_sums[2];
  if (arrayLength(&totals) > 3u) { totals[3] += f32(shape.batch); }
}
