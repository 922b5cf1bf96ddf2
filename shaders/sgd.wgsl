// SGD update in place, Keras's rule:
//   plain:     p -= lr * g
//   momentum:  v = m * v - lr * g;  p += v
//   nesterov:  v = m * v - lr * g;  p += m * v - lr * g
// lr already includes any schedule or legacy decay (lr / (1 + decay * iterations)), written by
// the host per step. Before the update, as Keras's apply(): g is clipped (CLIP 1: g * gscale[k],
// the scale clip_gradients.wgsl wrote for clipnorm / global_clipnorm; CLIP 2: clamp to
// +-clipvalue), then with DECAY the weight decays: p -= p * wd * lr (wdlr = wd * lr, host-side).
// `halt` is a sticky flag set by guard.wgsl when a step's loss is not finite: from then on updates
// are skipped, so training stopped on a NaN keeps the weights of the last good step even though
// the host learns of the NaN only after later steps were submitted.

struct Shape { n: u32, k: u32 }
struct Hyper { lr: f32, momentum: f32, wdlr: f32, clipvalue: f32 }

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<uniform> hyper: Hyper;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(5) var<storage, read_write> halt: array<u32>;
@group(0) @binding(6) var<storage, read> gscale: array<f32>;
// The same tensors seen as vec4s (sizes divisible by 4: nearly every weight). On CPU adapters
// (lavapipe) each lane's load is a separate gather, so one 16-byte load beats four 4-byte ones.
@group(0) @binding(7) var<storage, read_write> param4: array<vec4f>;
@group(0) @binding(8) var<storage, read> grad4: array<vec4f>;
@group(0) @binding(9) var<storage, read_write> velocity4: array<vec4f>;

override NESTEROV: bool = false;
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
fn plain(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n || halt[0] != 0u) { return; }
  param[i] = decayed(param[i]) - hyper.lr * clipped(grad[i]);
}

@compute @workgroup_size(WG)
fn momentum(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n || halt[0] != 0u) { return; }
  let g = clipped(grad[i]);
  let p = decayed(param[i]);
  let v = hyper.momentum * velocity[i] - hyper.lr * g;
  velocity[i] = v;
  if (NESTEROV) {
    param[i] = p + (hyper.momentum * v - hyper.lr * g);
  } else {
    param[i] = p + v;
  }
}

// vec4 twins of plain and momentum; shape.n counts vec4s here.
@compute @workgroup_size(WG)
fn plain4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n || halt[0] != 0u) { return; }
  param4[i] = decayed4(param4[i]) - hyper.lr * clipped4(grad4[i]);
}

@compute @workgroup_size(WG)
fn momentum4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n || halt[0] != 0u) { return; }
  let g = clipped4(grad4[i]);
  let p = decayed4(param4[i]);
  let v = hyper.momentum * velocity4[i] - hyper.lr * g;
  velocity4[i] = v;
  if (NESTEROV) {
    param4[i] = p + (hyper.momentum * v - hyper.lr * g);
  } else {
    param4[i] = p + v;
  }
}
