// Adam / AdamW update in place, Keras 3's rule (t = iterations + 1):
//   m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2)
//   amsgrad: v_hat = max(v_hat, v), used instead of v
//   p -= m * alpha / (sqrt(v) + epsilon),  alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
// epsilon is added to sqrt(v) without bias correction, as Keras (TF.js differs for tiny
// gradients). alpha and the other per-step scalars come from the host (float64) per step.
// Before the update, as Keras's apply(): g is clipped (CLIP 1: g * gscale[k] from
// clip_gradients.wgsl; CLIP 2: clamp to +-clipvalue), then with DECAY p -= p * wd * lr (AdamW).
// Nothing changes while the guard's sticky `halt` flag is set (no parameter, no moment).

struct Shape { n: u32, k: u32 }
struct Hyper { alpha: f32, one_minus_beta1: f32, one_minus_beta2: f32, epsilon: f32, wdlr: f32, clipvalue: f32 }

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<uniform> hyper: Hyper;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> momentum: array<f32>;
@group(0) @binding(5) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(6) var<storage, read_write> velocity_hat: array<f32>;
@group(0) @binding(7) var<storage, read_write> halt: array<u32>;
@group(0) @binding(8) var<storage, read> gscale: array<f32>;
// vec4 views of the same buffers (sizes divisible by 4), as in sgd.wgsl
@group(0) @binding(9) var<storage, read_write> param4: array<vec4f>;
@group(0) @binding(10) var<storage, read> grad4: array<vec4f>;
@group(0) @binding(11) var<storage, read_write> momentum4: array<vec4f>;
@group(0) @binding(12) var<storage, read_write> velocity4: array<vec4f>;
@group(0) @binding(13) var<storage, read_write> velocity_hat4: array<vec4f>;

override CLIP: u32 = 0u;
override DECAY: bool = false;
const WG: u32 = 128u; // compatibility mode guarantees 128 invocations per workgroup

fn index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

fn clipped(g: f32) -> f32 {
  if (CLIP == 1u) { return g * gscale[shape.k]; }
  if (CLIP == 2u) { return clamp(g, -hyper.clipvalue, hyper.clipvalue); }
  return g;
}

fn clipped4(g: vec4f) -> vec4f {
  if (CLIP == 1u) { return g * gscale[shape.k]; }
  if (CLIP == 2u) { return clamp(g, vec4f(-hyper.clipvalue), vec4f(hyper.clipvalue)); }
  return g;
}

fn decayed(p: f32) -> f32 {
  if (DECAY) { return p - p * hyper.wdlr; }
  return p;
}

fn decayed4(p: vec4f) -> vec4f {
  if (DECAY) { return p - p * hyper.wdlr; }
  return p;
}

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n || halt[0] != 0u) { return; }
  let g = clipped(grad[i]);
  let p = decayed(param[i]);
  let m = momentum[i] + (g - momentum[i]) * hyper.one_minus_beta1;
  let v = velocity[i] + (g * g - velocity[i]) * hyper.one_minus_beta2;
  momentum[i] = m;
  velocity[i] = v;
  param[i] = p - (m * hyper.alpha) / (sqrt(v) + hyper.epsilon);
}

@compute @workgroup_size(WG)
fn amsgrad(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n || halt[0] != 0u) { return; }
  let g = clipped(grad[i]);
  let p = decayed(param[i]);
  let m = momentum[i] + (g - momentum[i]) * hyper.one_minus_beta1;
  let v = velocity[i] + (g * g - velocity[i]) * hyper.one_minus_beta2;
  let vh = max(velocity_hat[i], v);
  momentum[i] = m;
  velocity[i] = v;
  velocity_hat[i] = vh;
  param[i] = p - (m * hyper.alpha) / (sqrt(vh) + hyper.epsilon);
}

@compute @workgroup_size(WG)
fn adam4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n || halt[0] != 0u) { return; }
  let g = clipped4(grad4[i]);
  let p = decayed4(param4[i]);
  let m = momentum4[i] + (g - momentum4[i]) * hyper.one_minus_beta1;
  let v = velocity4[i] + (g * g - velocity4[i]) * hyper.one_minus_beta2;
  momentum4[i] = m;
  velocity4[i] = v;
  param4[i] = p - (m * hyper.alpha) / (sqrt(v) + hyper.epsilon);
}

@compute @workgroup_size(WG)
fn amsgrad4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n || halt[0] != 0u) { return; }
  let g = clipped4(grad4[i]);
  let p = decayed4(param4[i]);
  let m = momentum4[i] + (g - momentum4[i]) * hyper.one_minus_beta1;
  let v = velocity4[i] + (g * g - velocity4[i]) * hyper.one_minus_beta2;
  let vh = max(velocity_hat4[i], v);
  momentum4[i] = m;
  velocity4[i] = v;
  velocity_hat4[i] = vh;
  param4[i] = p - (m * hyper.alpha) / (sqrt(vh) + hyper.epsilon);
}
