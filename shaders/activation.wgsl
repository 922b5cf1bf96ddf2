// Elementwise Keras activations and their gradients, from the INPUT x:
//   forward   y  = f(x)
//   backward  dx = dy * f'(x)
// The activation is the override KIND (one pipeline per kind, branches folded at compile time):
//   0 linear   f = x
//   1 relu     Keras 3 relu(x, negative_slope, max_value, threshold) as its TensorFlow ops
//              compute it (see src/kernels/activation.ts for the derivation):
//                main = x > t ? x : 0;  clipped to [0, max] when has_max
//                f    = main - a * max(t - x, 0)          (the second term only when a != 0)
//                f'   = [x > t and (no max, or x <= max, or x < max when max_open)]
//                       + a * [x < t, or x <= t when neg_closed]
//   2 sigmoid  1 / (1 + exp(-x))
//   3 tanh
//   4 swish    x * sigmoid(x)
// sigmoid, tanh and swish never overflow: exp only ever sees -|x| (or a clamped argument).
// Entries ending in 4 process 4 elements as a vec4 (size % 4 == 0); `n` then counts vec4s.

struct Params {
  n: u32,            // invocations with work
  has_max: u32,      // relu: max_value given
  max_open: u32,     // relu: f' is 0 at x == max (TF's native Relu6 op) instead of 1 (clip)
  neg_closed: u32,   // relu: the slope applies at x == t too (TF's native LeakyRelu op)
  slope: f32,        // relu: negative_slope a
  threshold: f32,    // relu: t
  max_value: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(7) var<storage, read> dy4: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dx4: array<vec4f>;

override KIND: u32 = 0u;
const WG: u32 = 128u;

fn linear_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

// sigmoid(v) and sigmoid(-v) = 1 - sigmoid(v), both without cancellation or overflow.
struct Sig { s: f32, sc: f32 }

fn sig(v: f32) -> Sig {
  let e = exp(-abs(v));         // in (0, 1]
  let big = 1.0 / (1.0 + e);    // sigmoid(|v|)
  let small = e / (1.0 + e);    // sigmoid(-|v|), accurate even when tiny
  if (v >= 0.0) { return Sig(big, small); }
  return Sig(small, big);
}

fn relu(v: f32) -> f32 {
  var main = select(0.0, v, v > p.threshold);
  if (p.has_max != 0u) { main = max(min(main, p.max_value), 0.0); }
  // select, not a multiply by a == 0: 0 * inf would be NaN for v = -inf.
  return main - select(0.0, p.slope * max(p.threshold - v, 0.0), p.slope != 0.0);
}

fn relu_grad(v: f32) -> f32 {
  var up = v > p.threshold;
  if (p.has_max != 0u) {
    up = up && select(v <= p.max_value, v < p.max_value, p.max_open != 0u);
  }
  let down = v < p.threshold || (p.neg_closed != 0u && v == p.threshold);
  return select(0.0, 1.0, up) + select(0.0, p.slope, down);
}

fn act(v: f32) -> f32 {
  switch KIND {
    case 1u: { return relu(v); }
    case 2u: { return sig(v).s; }
    // Clamped: some tanh implementations compute (e^2v - 1) / (e^2v + 1), NaN once e^2v
    // overflows; tanh(10) is 1 in f32 already.
    case 3u: { return tanh(clamp(v, -10.0, 10.0)); }
    case 4u: { return v * sig(v).s; }
    default: { return v; }
  }
}

fn act_grad(v: f32) -> f32 {
  switch KIND {
    case 1u: { return relu_grad(v); }
    case 2u: { let q = sig(v); return q.s * q.sc; }
    case 3u: { let t = tanh(clamp(v, -10.0, 10.0)); return 1.0 - t * t; }
    // d/dv v*s(v) = s + v*s*(1 - s) = s * (1 + v * s(-v)); v * s(-v) stays finite.
    case 4u: { let q = sig(v); return q.s * (1.0 + v * q.sc); }
    default: { return 1.0; }
  }
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y[i] = act(x[i]);
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  dx[i] = dy[i] * act_grad(x[i]);
}

// The vec4 entries widen the loads and stores only; the math stays per component.
@compute @workgroup_size(WG)
fn forward4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  let v = x4[i];
  y4[i] = vec4f(act(v.x), act(v.y), act(v.z), act(v.w));
}

@compute @workgroup_size(WG)
fn backward4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  let v = x4[i];
  dx4[i] = dy4[i] * vec4f(act_grad(v.x), act_grad(v.y), act_grad(v.z), act_grad(v.w));
}
