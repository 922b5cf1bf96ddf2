// Fused softmax + categorical cross-entropy on logits z[batch, classes] (row-major), Keras's
// categorical_crossentropy (labels 'onehot': y[batch, classes], any rows of weights, usually a
// distribution) and sparse_categorical_crossentropy (labels 'sparse': y[batch] = class index).
//
// Computed from the logits, like tf.keras with from_logits=True (tf.nn.softmax_cross_entropy_
// with_logits): the probabilities are never formed and never clipped. Keras's from-probabilities
// path clips softmax outputs to [1e-7, 1 - 1e-7], which caps a single example's loss at
// -log(1e-7) = 16.1 and zeroes the gradient of a saturated wrong prediction; we deliberately
// do not reproduce that cap.
//
// With m = max_k z_k (first index a), t = sum_{k != a} exp(z_k - m) and lse = m + log(1 + t):
//   loss_i  = sum_k y_k (lse - z_k) = sum(y) log1p(t) - sum_k y_k (z_k - m)   (sparse: y = e_label)
//   dL/dz_k = (sum(y) softmax_k - y_k) / batch                                (= (p - y) / batch
//             for rows that sum to 1; the exact gradient of loss_i for any other row)
//   correct = argmax(z) == argmax(y) (sparse: == label), ties to the first index as numpy / TF.
// A sparse label that is not an integer in [0, classes) (or is NaN) makes that row's loss and
// dlogits row NaN, and the batch loss NaN, so training stops at the model's NaN guard (TF on a
// GPU also answers NaN for out-of-range sparse labels, rather than reading another row).
//
// Passes: `rows_*` run one workgroup per example (rows may exceed 65535: 2-D grid) and reduce
// over the classes in a fixed tree; they write the per-example (loss, correct, bad) to a
// scratch buffer, which `reduce_stats` (one workgroup, fixed stride and tree) sums into the
// batch means. Deterministic: no atomics anywhere.
//
// Per-example weights w[batch] (Keras sample_weight, e.g. from class_weight), Keras 3's
// 'sum_over_batch_size' reduction and weighted metric means:
//   batch loss = sum_i w_i loss_i / batch        (divided by the batch, not by sum_i w_i)
//   dL/dz_k    = w_i (sum(y) softmax_k - y_k) / batch
//   acc        = sum_i w_i correct_i / sum_i w_i (0 when sum_i w_i = 0, Keras's divide_no_nan)
// come from `rows_loss_and_gradient_weighted` (training; evaluation reuses rows_loss) followed by
// `reduce_stats_weighted`, which also keeps [sum w loss, sum w correct, sum w] in `weighted_sums` for
// `accumulate_weighted`. A bad sparse label still makes the loss NaN whatever its weight.

struct Shape {
  batch: u32,
  classes: u32,
  // The bits of a quiet NaN, from the host: a NaN literal in WGSL is a shader-creation error,
  // and a runtime value cannot be folded away by a compiler that assumes NaN never occurs.
  nan_bits: u32,
}

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> rows: array<vec4f>;     // (loss, correct, bad, 0) per example
@group(0) @binding(5) var<storage, read> row_stats: array<vec4f>;      // the same buffer, read by reduce_stats
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;      // [mean loss, accuracy]
@group(0) @binding(7) var<storage, read> batch_stats: array<f32>;      // accumulate: this batch's stats
@group(0) @binding(8) var<storage, read_write> totals: array<f32>;     // [loss sum, correct, count]
@group(0) @binding(9) var<storage, read_write> probs: array<f32>;      // probabilities: softmax rows
@group(0) @binding(10) var<storage, read> weights: array<f32>;         // weighted passes: w[batch]
@group(0) @binding(11) var<storage, read_write> weighted_sums: array<f32>;      // [sum w loss, sum w correct, sum w, 0]

// Invocations per workgroup, a power of two <= 256 chosen by the host (for the rows passes
// about the number of classes, so small heads do not idle 256 lanes per example).
override WG: u32 = 256u;
// Label format: true = class indices [batch], false = rows of weights [batch, classes].
override SPARSE: bool = false;

var<workgroup> red: array<vec4f, WG>;

// The example this workgroup handles (the grid is folded into x and y by Gpu.grid()).
fn row_index(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// log(1 + t) for t in [0, 1] without log(): 2 atanh(s), s = t / (2 + t) <= 1/3, as the odd
// series 2 s (1 + s^2/3 + ... + s^14/15), within 1.5e-8 relative. WGSL promises log() only to
// an absolute 2^-21 near 1, too coarse for the tiny loss of a confident correct prediction.
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

fn log1p_pos(t: f32) -> f32 {
  return select(log(1.0 + t), log1p_unit(t), t <= 1.0);
}

// (max, index of its first occurrence) of v[base + k] over this invocation's classes
// k = lid, lid + WG, ...; (lowest f32, classes) when it has none, which loses every comparison.
fn local_argmax_logits(base: u32, lid: u32) -> vec2f {
  var best = vec2f(-0x1.fffffep+127f, f32(shape.classes));
  for (var k = lid; k < shape.classes; k += WG) {
    let v = logits[base + k];
    if (v > best.x || k == lid) { best = vec2f(v, f32(k)); }   // increasing k: first index kept
  }
  return best;
}

fn local_argmax_labels(base: u32, lid: u32) -> vec2f {
  var best = vec2f(-0x1.fffffep+127f, f32(shape.classes));
  for (var k = lid; k < shape.classes; k += WG) {
    let v = labels[base + k];
    if (v > best.x || k == lid) { best = vec2f(v, f32(k)); }
  }
  return best;
}

// b wins over a if larger, or equal with a smaller index (indices are exact in f32 below 2^24).
fn argmax_pair(a: vec2f, b: vec2f) -> vec2f {
  return select(a, b, b.x > a.x || (b.x == a.x && b.y < a.y));
}

// Workgroup-wide argmax of two (value, index) pairs at once (logits in xy, labels in zw).
fn reduce_argmax(lid: u32, v: vec4f) -> vec4f {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      let a = red[lid];
      let b = red[lid + s];
      red[lid] = vec4f(argmax_pair(a.xy, b.xy), argmax_pair(a.zw, b.zw));
    }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();   // everyone has read red[0] before the next reduction overwrites it
  return r;
}

fn reduce_sum(lid: u32, v: vec4f) -> vec4f {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// Everything one example needs, identical in every invocation of its workgroup.
struct Row {
  m: f32,        // max logit
  a: u32,        // its first index (the predicted class)
  t: f32,        // sum of exp(z_k - m) over k != a, so the softmax denominator is 1 + t
  sum_y: f32,    // sum of the label row (1 for sparse)
  label: u32,    // sparse: the class; onehot: first argmax of the label row
  loss: f32,
  bad: bool,     // sparse label not an integer in [0, classes)
}

fn row_loss(row: u32, lid: u32) -> Row {
  let k_n = shape.classes;
  let base = row * k_n;
  var yl = vec2f(0.0);
  if (!SPARSE) { yl = local_argmax_labels(base, lid); }
  let mx = reduce_argmax(lid, vec4f(local_argmax_logits(base, lid), yl));
  var r: Row;
  r.m = mx.x;
  r.a = u32(mx.y);
  // t, and for label rows sum(y) and sum(y (z - m)) (relative to m: no cancellation of large z)
  var part = vec4f(0.0);
  for (var k = lid; k < k_n; k += WG) {
    let d = logits[base + k] - r.m;
    if (k != r.a) { part.x += exp(d); }
    if (!SPARSE) {
      let y = labels[base + k];
      part.y += y;
      part.z += y * d;
    }
  }
  let sums = reduce_sum(lid, part);
  r.t = sums.x;
  let lp = log1p_pos(r.t);
  if (SPARSE) {
    let y = labels[row];
    r.bad = !(y >= 0.0 && y < f32(k_n) && floor(y) == y);   // NaN fails every comparison
    r.label = select(u32(y), 0u, r.bad);
    r.sum_y = 1.0;
    r.loss = lp - (logits[base + r.label] - r.m);            // exactly lp when label == a
  } else {
    r.bad = false;
    r.label = u32(mx.w);
    r.sum_y = sums.y;
    r.loss = sums.y * lp - sums.z;
  }
  return r;
}

fn row_result(r: Row) -> vec4f {
  let correct = select(0.0, 1.0, r.a == r.label && !r.bad);
  return vec4f(select(r.loss, 0.0, r.bad), correct, select(0.0, 1.0, r.bad), 0.0);
}

// dlogits of one row, (sum(y) softmax - y) * scale (scale = 1 / batch, times w_i when weighted).
fn write_gradient(row: u32, lid: u32, r: Row, scale: f32) {
  let k_n = shape.classes;
  let base = row * k_n;
  let denom = 1.0 + r.t;
  let nan = bitcast<f32>(shape.nan_bits);
  for (var k = lid; k < k_n; k += WG) {
    var y: f32;
    if (SPARSE) { y = select(0.0, 1.0, k == r.label); } else { y = labels[base + k]; }
    var g: f32;
    if (k == r.a) {
      // sum(y) / (1 + t) - y without the cancellation of p - 1 when the prediction is confident
      g = (r.sum_y - y - y * r.t) / denom;
    } else {
      g = r.sum_y * exp(logits[base + k] - r.m) / denom - y;
    }
    dlogits[base + k] = select(g * scale, nan, r.bad);
  }
}

@compute @workgroup_size(WG)
fn rows_loss_and_gradient(@builtin(local_invocation_index) lid: u32,
                          @builtin(workgroup_id) wid: vec3u,
                          @builtin(num_workgroups) nwg: vec3u) {
  let row = row_index(wid, nwg);
  if (row >= shape.batch) { return; }   // workgroup-uniform
  let r = row_loss(row, lid);
  write_gradient(row, lid, r, 1.0 / f32(shape.batch));
  if (lid == 0u) { rows[row] = row_result(r); }
}

@compute @workgroup_size(WG)
fn rows_loss_and_gradient_weighted(@builtin(local_invocation_index) lid: u32,
                                   @builtin(workgroup_id) wid: vec3u,
                                   @builtin(num_workgroups) nwg: vec3u) {
  let row = row_index(wid, nwg);
  if (row >= shape.batch) { return; }
  let r = row_loss(row, lid);
  write_gradient(row, lid, r, weights[row] * (1.0 / f32(shape.batch)));   // w = 1: the unweighted scale
  if (lid == 0u) { rows[row] = row_result(r); }
}

@compute @workgroup_size(WG)
fn rows_loss(@builtin(local_invocation_index) lid: u32,
             @builtin(workgroup_id) wid: vec3u,
             @builtin(num_workgroups) nwg: vec3u) {
  let row = row_index(wid, nwg);
  if (row >= shape.batch) { return; }
  let r = row_loss(row, lid);
  if (lid == 0u) { rows[row] = row_result(r); }
}

// Batch means of the per-example results, in a fixed order; any bad label makes the loss NaN.
@compute @workgroup_size(WG)
fn reduce_stats(@builtin(local_invocation_index) lid: u32) {
  let n = shape.batch;
  var part = vec4f(0.0);
  for (var i = lid; i < n; i += WG) { part += row_stats[i]; }
  let s = reduce_sum(lid, part);
  if (lid == 0u) {
    let nf = f32(n);
    stats[0] = select(s.x / nf, bitcast<f32>(shape.nan_bits), s.z > 0.0);
    stats[1] = s.y / nf;
  }
}

// Weighted batch stats from the per-example results (rows pass unchanged: weights applied here).
@compute @workgroup_size(WG)
fn reduce_stats_weighted(@builtin(local_invocation_index) lid: u32) {
  let n = shape.batch;
  var part = vec4f(0.0);
  for (var i = lid; i < n; i += WG) {
    let r = row_stats[i];
    let w = weights[i];
    part += vec4f(w * r.x, w * r.y, r.z, w);
  }
  let s = reduce_sum(lid, part);
  if (lid == 0u) {
    let nan = bitcast<f32>(shape.nan_bits);
    let loss_sum = select(s.x, nan, s.z > 0.0);
    stats[0] = loss_sum / f32(n);
    stats[1] = select(0.0, s.y / s.w, s.w > 0.0);
    weighted_sums[0] = loss_sum;
    weighted_sums[1] = s.y;
    weighted_sums[2] = s.w;
    weighted_sums[3] = 0.0;
  }
}

// Softmax rows for prediction: p_k = exp(z_k - m) / (1 + t).
@compute @workgroup_size(WG)
fn probabilities(@builtin(local_invocation_index) lid: u32,
                 @builtin(workgroup_id) wid: vec3u,
                 @builtin(num_workgroups) nwg: vec3u) {
  let row = row_index(wid, nwg);
  if (row >= shape.batch) { return; }
  let k_n = shape.classes;
  let base = row * k_n;
  let mx = reduce_argmax(lid, vec4f(local_argmax_logits(base, lid), 0.0, 0.0));
  let a = u32(mx.y);
  var part = vec4f(0.0);
  for (var k = lid; k < k_n; k += WG) {
    if (k != a) { part.x += exp(logits[base + k] - mx.x); }
  }
  let denom = 1.0 + reduce_sum(lid, part).x;
  for (var k = lid; k < k_n; k += WG) {
    probs[base + k] = exp(logits[base + k] - mx.x) / denom;
  }
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
