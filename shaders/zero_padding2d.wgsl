// Keras ZeroPadding2D on NHWC tensors, and its gradient.
//   forward   y [N, OH, OW, C] = x where (oh - top, ow - left) lies inside x, else 0;
//             one invocation per y element, so the border is written too
//   backward  dx [N, H, W, C] = dy [N, h + top, w + left, C] (the crop); one per dx element
// OH = H + top + bottom, OW = W + left + right.
// Entries ending in 4 process 4 channels as a vec4 (channels % 4 == 0); `C` is then C / 4.

struct Shape {
  N: u32, H: u32, W: u32, C: u32,
  OH: u32, OW: u32, top: u32, left: u32,
  count: u32,   // invocations with work: N*OH*OW*C forward, N*H*W*C backward
}

@group(0) @binding(0) var<uniform> s: Shape;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(7) var<storage, read> dy4: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dx4: array<vec4f>;

const WG: u32 = 128u;

fn linear_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

// For y element i = ((n*OH + oh)*OW + ow)*C + c: whether it comes from x, and which element.
struct Source { inside: bool, at: u32 }

fn source_of(i: u32) -> Source {
  let c = i % s.C;
  var t = i / s.C;
  let ow = t % s.OW;
  t /= s.OW;
  let oh = t % s.OH;
  let n = t / s.OH;
  // u32 wraps below top/left, so one comparison per axis also rejects the leading border.
  let h = oh - s.top;
  let w = ow - s.left;
  let inside = h < s.H && w < s.W;
  return Source(inside, select(0u, ((n * s.H + h) * s.W + w) * s.C + c, inside));
}

// For dx element i = ((n*H + h)*W + w)*C + c: its dy element.
fn crop_of(i: u32) -> u32 {
  let c = i % s.C;
  var t = i / s.C;
  let w = t % s.W;
  t /= s.W;
  let h = t % s.H;
  let n = t / s.H;
  return ((n * s.OH + h + s.top) * s.OW + w + s.left) * s.C + c;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let src = source_of(i);
  // the load is in bounds either way (at = 0 outside); select keeps the border exactly 0
  y[i] = select(0.0, x[src.at], src.inside);
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  dx[i] = dy[crop_of(i)];
}

@compute @workgroup_size(WG)
fn forward4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let src = source_of(i);
  y4[i] = select(vec4f(0.0), x4[src.at], src.inside);
}

@compute @workgroup_size(WG)
fn backward4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  dx4[i] = dy4[crop_of(i)];
}
