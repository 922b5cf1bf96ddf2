// Gradient clipping by L2 norm, Keras 3's rules, on the device inside the step's submit (nothing
// is read back). Two passes:
//   partial / partial4: each workgroup sums g^2 over one chunk of one gradient tensor and writes
//     partials[offset + workgroup];
//   finish_each (clipnorm): workgroup k sums tensor k's partials: norm_k, and
//     scales[k] = clipnorm / max(norm_k, clipnorm)      (Keras's _clip_by_norm: g * c / max(|g|, c))
//   finish_global (global_clipnorm): one workgroup sums every partial: the global norm, and
//     scales[*] = clipnorm / max(norm, clipnorm)        (clip_by_global_norm: c * min(1/norm, 1/c))
//     and NaN when the norm is not finite (Keras adds norm - norm for that).
// The update kernels then use g * scales[k]. A zero norm gives scale 1 (no epsilon in Keras).
// These passes write only their own scratch buffers, never a parameter or optimizer state, so
// they need not read the guard's halt flag: the update kernels do.

struct Part { n: u32, offset: u32, count: u32 }
struct Fin { clipnorm: f32, targets: u32, total: u32 }

@group(0) @binding(0) var<uniform> part: Part;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> grad4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<uniform> fin: Fin;
// per gradient tensor: index of its first partial, number of partials
@group(0) @binding(5) var<storage, read> ranges: array<vec2u>;
@group(0) @binding(6) var<storage, read_write> scales: array<f32>;

const WG: u32 = 128u; // compatibility mode guarantees 128 invocations per workgroup
// elements (vec4s in partial4) each invocation sums: a workgroup covers WG * PER of them
const PER: u32 = 8u;

var<workgroup> sums: array<f32, WG>;

// Tree sum of every invocation's `s`; the result is in sums[0] for all invocations.
fn reduce(lid: u32, s: f32) {
  sums[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { sums[lid] = sums[lid] + sums[lid + stride]; }
    workgroupBarrier();
  }
}

fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn scale_of(norm: f32, global: bool) -> f32 {
  let bits = bitcast<u32>(norm);
  if (is_nan(norm)) { return norm; }
  // +inf: per tensor c / inf = 0 as Keras; globally Keras's scale is NaN (quiet NaN from inf's bits)
  if ((bits & 0x7f800000u) == 0x7f800000u && global) { return bitcast<f32>(bits | 0x00400000u); }
  return fin.clipnorm / max(norm, fin.clipnorm);
}

@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let w = wid.y * nwg.x + wid.x;
  let base = w * WG * PER;
  var s = 0.0;
  for (var j = 0u; j < PER; j++) {
    let i = base + j * WG + lid;
    if (i < part.n) { let g = grad[i]; s = s + g * g; }
  }
  reduce(lid, s);
  if (lid == 0u && w < part.count) { partials[part.offset + w] = sums[0]; }
}

@compute @workgroup_size(WG)
fn partial4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let w = wid.y * nwg.x + wid.x;
  let base = w * WG * PER;
  var s = 0.0;
  for (var j = 0u; j < PER; j++) {
    let i = base + j * WG + lid;
    if (i < part.n) { let g = grad4[i]; s = s + dot(g, g); }
  }
  reduce(lid, s);
  if (lid == 0u && w < part.count) { partials[part.offset + w] = sums[0]; }
}

@compute @workgroup_size(WG)
fn finish_each(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = wid.x;
  let r = ranges[k];
  var s = 0.0;
  for (var j = lid; j < r.y; j += WG) { s = s + partials[r.x + j]; }
  reduce(lid, s);
  if (lid == 0u) { scales[k] = scale_of(sqrt(sums[0]), false); }
}

@compute @workgroup_size(WG)
fn finish_global(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var j = lid; j < fin.total; j += WG) { s = s + partials[j]; }
  reduce(lid, s);
  let scale = scale_of(sqrt(sums[0]), true);
  for (var k = lid; k < fin.targets; k += WG) { scales[k] = scale; }
}
