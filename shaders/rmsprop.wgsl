// RMSprop update in place, Keras 3's rule:
//   v = rho * v + (1 - rho) * g^2
//   CENTERED: a = rho * a + (1 - rho) * g;  denominator = v - a^2 + epsilon;  else v + epsilon
//   increment = lr * g / sqrt(denominator)
//   MOMENTUM: mom = momentum * mom + increment;  p -= mom;   else p -= increment
// (epsilon inside the square root, unlike Adam). Before the update, as Keras's apply(): g is
// clipped (CLIP 1: g * gscale[k] from clip_gradients.wgsl; CLIP 2: clamp to +-clipvalue), then
// with DECAY p -= p * wd * lr. Without MOMENTUM / CENTERED the host binds small placeholders to
// those state buffers, which are then never touched. Nothing changes while `halt` is set.

struct Shape { n: u32, k: u32 }
struct Hyper { lr: f32, rho: f32, one_minus_rho: f32, momentum: f32, epsilon: f32, wdlr: f32, clipvalue: f32 }

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<uniform> hyper: Hyper;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(5) var<storage, read_write> momentum: array<f32>;
@group(0) @binding(6) var<storage, read_write> average_gradient: array<f32>;
@group(0) @binding(7) var<storage, read_write> halt: array<u32>;
@group(0) @binding(8) var<storage, read> gscale: array<f32>;
// vec4 views of the same buffers (sizes divisible by 4), as in sgd.wgsl
@group(0) @binding(9) var<storage, read_write> param4: array<vec4f>;
@group(0) @binding(10) var<storage, read> grad4: array<vec4f>;
@group(0) @binding(11) var<storage, read_write> velocity4: array<vec4f>;
@group(0) @binding(12) var<storage, read_write> momentum4: array<vec4f>;
@group(0) @binding(13) var<storage, read_write> average_gradient4: array<vec4f>;

override CLIP: u32 = 0u;
override DECAY: bool = false;
override MOMENTUM: bool = false;
override CENTERED: bool = false;
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
fn rmsprop(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n || halt[0] != 0u) { return; }
  let g = clipped(grad[i]);
  let p = decayed(param[i]);
  let v = hyper.rho * velocity[i] + hyper.one_minus_rho * (g * g);
  velocity[i] = v;
  var denominator = v + hyper.epsilon;
  if (CENTERED) {
    let a = hyper.rho * average_gradient[i] + hyper.one_minus_rho * g;
    average_gradient[i] = a;
    denominator = v - a * a + hyper.epsilon;
  }
  let increment = (hyper.lr * g) / sqrt(denominator);
  if (MOMENTUM) {
    let mom = hyper.momentum * momentum[i] + increment;
    momentum[i] = mom;
    param[i] = p - mom;
  } else {
    param[i] = p - increment;
  }
}

@compute @workgroup_size(WG)
fn rmsprop4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n || halt[0] != 0u) { return; }
  let g = clipped4(grad4[i]);
  let p = decayed4(param4[i]);
  let v = hyper.rho * velocity4[i] + hyper.one_minus_rho * (g * g);
  velocity4[i] = v;
  var denominator = v + hyper.epsilon;
  if (CENTERED) {
    let a = hyper.rho * average_gradient4[i] + hyper.one_minus_rho * g;
    average_gradient4[i] = a;
    denominator = v - a * a + hyper.epsilon;
  }
  let increment = (hyper.lr * g) / sqrt(denominator);
  if (MOMENTUM) {
    let mom = hyper.momentum * momentum4[i] + increment;
    momentum4[i] = mom;
    param4[i] = p - mom;
  } else {
    param4[i] = p - increment;
  }
}
