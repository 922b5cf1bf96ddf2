// 2-D max pooling, NHWC, padding 'valid' (rows/columns past the last full window are dropped,
// like Keras), and its gradient.
//
// The argmax of a window is the FIRST maximum in row-major window order (strict >), in the
// forward pass and in both backward variants, so ties send the gradient to one element only.
// The backward pass recomputes the argmax from x: nothing is stored by the forward pass.
//
//   forward         one invocation per output element (per 4 channels in the *4 entries)
//   backward_owned  strides >= pool (windows do not overlap; 2x2/2 is this case): one
//                   invocation per window writes every dx element it owns (its window plus
//                   any gap and, in the last window row/column, the rows/columns that pooling
//                   drops): dy at the argmax, 0 elsewhere. Each window is scanned once.
//   backward_gather any strides: one invocation per dx element sums dy over the windows that
//                   contain it and whose argmax it is.
// Entries ending in 4 process 4 channels as a vec4 (channels % 4 == 0); `C` is then C / 4.

struct Shape {
  N: u32, H: u32, W: u32, C: u32,
  OH: u32, OW: u32, PH: u32, PW: u32,
  SH: u32, SW: u32,
  count: u32,   // invocations with work: N*OH*OW*C, or N*H*W*C for backward_gather
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

// Output element i = ((n*OH + oh)*OW + ow)*C + c.
struct Window { n: u32, oh: u32, ow: u32, c: u32, base: u32 }

fn window_of(i: u32) -> Window {
  let c = i % s.C;
  var t = i / s.C;
  let ow = t % s.OW;
  t /= s.OW;
  let oh = t % s.OH;
  let n = t / s.OH;
  // x index of the window's top-left element
  let base = ((n * s.H + oh * s.SH) * s.W + ow * s.SW) * s.C + c;
  return Window(n, oh, ow, c, base);
}

// ---------------------------------------------------------------- scalar channels

struct Best { v: f32, at: u32 }   // at = ph * PW + pw

fn window_max(base: u32) -> Best {
  var best = Best(x[base], 0u);
  for (var ph = 0u; ph < s.PH; ph++) {
    for (var pw = 0u; pw < s.PW; pw++) {
      let v = x[base + (ph * s.W + pw) * s.C];
      if (v > best.v) { best = Best(v, ph * s.PW + pw); }
    }
  }
  return best;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  y[i] = window_max(window_of(i).base).v;
}

@compute @workgroup_size(WG)
fn backward_owned(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let win = window_of(i);
  let at = window_max(win.base).at;
  let g = dy[i];
  // Owned rows: the window's stride band; the last band extends to H (dropped rows). Same
  // for columns.
  let hn = select(s.SH, s.H - win.oh * s.SH, win.oh + 1u == s.OH);
  let wn = select(s.SW, s.W - win.ow * s.SW, win.ow + 1u == s.OW);
  for (var r = 0u; r < hn; r++) {
    for (var q = 0u; q < wn; q++) {
      let mine = r < s.PH && q < s.PW && r * s.PW + q == at;
      dx[win.base + (r * s.W + q) * s.C] = select(0.0, g, mine);
    }
  }
}

@compute @workgroup_size(WG)
fn backward_gather(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let c = i % s.C;
  var t = i / s.C;
  let w = t % s.W;
  t /= s.W;
  let h = t % s.H;
  let n = t / s.H;
  // Windows containing (h, w): oh*SH <= h < oh*SH + PH, within [0, OH).
  let ohLo = select(0u, (h - s.PH) / s.SH + 1u, h >= s.PH);
  let ohHi = min(h / s.SH + 1u, s.OH);
  let owLo = select(0u, (w - s.PW) / s.SW + 1u, w >= s.PW);
  let owHi = min(w / s.SW + 1u, s.OW);
  var sum = 0.0;
  for (var oh = ohLo; oh < ohHi; oh++) {
    for (var ow = owLo; ow < owHi; ow++) {
      let at = window_max(((n * s.H + oh * s.SH) * s.W + ow * s.SW) * s.C + c).at;
      if ((h - oh * s.SH) * s.PW + (w - ow * s.SW) == at) {
        sum += dy[((n * s.OH + oh) * s.OW + ow) * s.C + c];
      }
    }
  }
  dx[i] = sum;
}

// ---------------------------------------------------------------- 4 channels at a time

struct Best4 { v: vec4f, at: vec4u }

fn window_max4(base: u32) -> Best4 {
  var best = Best4(x4[base], vec4u(0u));
  for (var ph = 0u; ph < s.PH; ph++) {
    for (var pw = 0u; pw < s.PW; pw++) {
      let v = x4[base + (ph * s.W + pw) * s.C];
      let better = v > best.v;
      best = Best4(select(best.v, v, better), select(best.at, vec4u(ph * s.PW + pw), better));
    }
  }
  return best;
}

@compute @workgroup_size(WG)
fn forward4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  y4[i] = window_max4(window_of(i).base).v;
}

@compute @workgroup_size(WG)
fn backward_owned4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let win = window_of(i);
  let at = window_max4(win.base).at;
  let g = dy4[i];
  let hn = select(s.SH, s.H - win.oh * s.SH, win.oh + 1u == s.OH);
  let wn = select(s.SW, s.W - win.ow * s.SW, win.ow + 1u == s.OW);
  for (var r = 0u; r < hn; r++) {
    for (var q = 0u; q < wn; q++) {
      let inside = r < s.PH && q < s.PW;
      let mine = vec4<bool>(inside) & (at == vec4u(r * s.PW + q));
      dx4[win.base + (r * s.W + q) * s.C] = select(vec4f(0.0), g, mine);
    }
  }
}

@compute @workgroup_size(WG)
fn backward_gather4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let c = i % s.C;
  var t = i / s.C;
  let w = t % s.W;
  t /= s.W;
  let h = t % s.H;
  let n = t / s.H;
  let ohLo = select(0u, (h - s.PH) / s.SH + 1u, h >= s.PH);
  let ohHi = min(h / s.SH + 1u, s.OH);
  let owLo = select(0u, (w - s.PW) / s.SW + 1u, w >= s.PW);
  let owHi = min(w / s.SW + 1u, s.OW);
  var sum = vec4f(0.0);
  for (var oh = ohLo; oh < ohHi; oh++) {
    for (var ow = owLo; ow < owHi; ow++) {
      let at = window_max4(((n * s.H + oh * s.SH) * s.W + ow * s.SW) * s.C + c).at;
      let me = vec4u((h - oh * s.SH) * s.PW + (w - ow * s.SW));
      sum += select(vec4f(0.0), dy4[((n * s.OH + oh) * s.OW + ow) * s.C + c], at == me);
    }
  }
  dx4[i] = sum;
}
