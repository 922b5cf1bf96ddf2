// Elementwise logistic sigmoid, y = 1 / (1 + exp(-x)), evaluated without overflow for large |x|.
struct Shape { n: u32 }
@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG: u32 = 128u; // compatibility mode guarantees 128 invocations per workgroup

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= shape.n) { return; }
  let v = x[i];
  let e = exp(-abs(v));           // in (0, 1]: never overflows
  let s = 1.0 / (1.0 + e);        // sigmoid(|v|)
  y[i] = select(1.0 - s, s, v >= 0.0);
}
