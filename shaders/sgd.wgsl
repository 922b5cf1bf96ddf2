// SGD update in place, Keras's rule:
//   plain:     p -= lr * g
//   momentum:  v = m * v - lr * g;  p += v
//   nesterov:  v = m * v - lr * g;  p += m * v - lr * g
// lr already includes decay (lr / (1 + decay * iterations)), written by the host per step.

struct Shape { n: u32 }
struct Hyper { lr: f32, momentum: f32 }

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<uniform> hyper: Hyper;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> velocity: array<f32>;

override NESTEROV: bool = false;
const WG: u32 = 256u;

fn index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn plain(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n) { return; }
  param[i] = param[i] - hyper.lr * grad[i];
}

@compute @workgroup_size(WG)
fn momentum(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= shape.n) { return; }
  let g = grad[i];
  let v = hyper.momentum * velocity[i] - hyper.lr * g;
  velocity[i] = v;
  if (NESTEROV) {
    param[i] = param[i] + hyper.momentum * v - hyper.lr * g;
  } else {
    param[i] = param[i] + v;
  }
}
