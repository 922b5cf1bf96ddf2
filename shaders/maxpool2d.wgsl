// 2-D max pooling, NHWC, padding 'valid' (rows/columns past the last full window are dropped,
// like Keras) or 'same' (PT rows / PL columns of padding above / left, the rest below / right,
// as TF), and its gradient. Padded positions never win: windows are clipped to the image.
//
// The argmax of a window is the FIRST maximum in row-major window order (strict >), in the
// forward pass and in both backward variants, so ties send the gradient to one element only.
// The backward pass recomputes the argmax from x: nothing is stored by the forward pass.
//
//   forward         one invocation per output element (per 4 channels in the *4 entries)
//   backward_owned  strides >= pool (windows do not overlap; 2x2/2 is this case): one
//                   invocation per window writes every dx element it owns (its stride band of
//                   rows and columns, the last band extended to the image edge, so gaps and
//                   the rows/columns 'valid' pooling drops are included): dy at the argmax, 0
//                   elsewhere. Each window is scanned once.
//   backward_gather any strides: one invocation per dx element sums dy over the windows that
//                   contain it and whose argmax it is.
// Entries ending in 4 process 4 channels as a vec4 (channels % 4 == 0); `C` is then C / 4.

struct Shape {
  N: u32, H: u32, W: u32, C: u32,
  OH: u32, OW: u32, PH: u32, PW: u32,
  SH: u32, SW: u32,
  PT: u32, PL: u32, // 'same' padding above / left (0 for 'valid')
  count: u32,       // invocations with work: N*OH*OW*C, or N*H*W*C for backward_gather
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

// The part of window (oh, ow) inside the image: window rows r0 <= r < r1 and columns
// q0 <= q < q1 (window coordinates, 0 at the padded top-left corner); base = x index of
// window element (r0, q0). 'same' padding is < pool, so every window holds a real element.
struct Clip { base: u32, r0: u32, r1: u32, q0: u32, q1: u32 }

fn clip(n: u32, oh: u32, ow: u32, c: u32) -> Clip {
  let h0 = i32(oh * s.SH) - i32(s.PT);
  let w0 = i32(ow * s.SW) - i32(s.PL);
  let r0 = u32(max(-h0, 0));
  let q0 = u32(max(-w0, 0));
  let r1 = u32(min(i32(s.PH), i32(s.H) - h0));
  let q1 = u32(min(i32(s.PW), i32(s.W) - w0));
  let base = ((n * s.H + u32(h0 + i32(r0))) * s.W + u32(w0 + i32(q0))) * s.C + c;
  return Clip(base, r0, r1, q0, q1);
}

// Output element i = ((n*OH + oh)*OW + ow)*C + c.
struct Window { n: u32, oh: u32, ow: u32, c: u32 }

fn window_of(i: u32) -> Window {
  let c = i % s.C;
  var t = i / s.C;
  let ow = t % s.OW;
  t /= s.OW;
  let oh = t % s.OH;
  let n = t / s.OH;
  return Window(n, oh, ow, c);
}

// dx element i = ((n*H + h)*W + w)*C + c, and the windows containing it: with hp = h + PT,
// oh*SH <= hp < oh*SH + PH within [0, OH) (columns alike).
struct Cover { n: u32, c: u32, hp: u32, wp: u32, ohLo: u32, ohHi: u32, owLo: u32, owHi: u32 }

fn cover_of(i: u32) -> Cover {
  let c = i % s.C;
  var t = i / s.C;
  let wp = t % s.W + s.PL;
  t /= s.W;
  let hp = t % s.H + s.PT;
  let n = t / s.H;
  let ohLo = select(0u, (hp - s.PH) / s.SH + 1u, hp >= s.PH);
  let ohHi = min(hp / s.SH + 1u, s.OH);
  let owLo = select(0u, (wp - s.PW) / s.SW + 1u, wp >= s.PW);
  let owHi = min(wp / s.SW + 1u, s.OW);
  return Cover(n, c, hp, wp, ohLo, ohHi, owLo, owHi);
}

// Rows r0 <= r < end(window) that window oh owns in backward_owned: its stride band, the last
// one extended to the bottom edge (columns alike).
fn owned_rows(oh: u32) -> u32 {
  return select(s.SH, u32(i32(s.H) - (i32(oh * s.SH) - i32(s.PT))), oh + 1u == s.OH);
}

fn owned_cols(ow: u32) -> u32 {
  return select(s.SW, u32(i32(s.W) - (i32(ow * s.SW) - i32(s.PL))), ow + 1u == s.OW);
}

// ---------------------------------------------------------------- scalar channels

struct Best { v: f32, at: u32 }   // at = r * PW + q (window coordinates)

fn window_max(k: Clip) -> Best {
  var best = Best(x[k.base], k.r0 * s.PW + k.q0);
  for (var r = k.r0; r < k.r1; r++) {
    for (var q = k.q0; q < k.q1; q++) {
      let v = x[k.base + ((r - k.r0) * s.W + (q - k.q0)) * s.C];
      if (v > best.v) { best = Best(v, r * s.PW + q); }
    }
  }
  return best;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let win = window_of(i);
  y[i] = window_max(clip(win.n, win.oh, win.ow, win.c)).v;
}

@compute @workgroup_size(WG)
fn backward_owned(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let win = window_of(i);
  let k = clip(win.n, win.oh, win.ow, win.c);
  let at = window_max(k).at;
  let g = dy[i];
  let hn = owned_rows(win.oh);
  let wn = owned_cols(win.ow);
  for (var r = k.r0; r < hn; r++) {
    for (var q = k.q0; q < wn; q++) {
      let mine = r < s.PH && q < s.PW && r * s.PW + q == at;
      dx[k.base + ((r - k.r0) * s.W + (q - k.q0)) * s.C] = select(0.0, g, mine);
    }
  }
}

@compute @workgroup_size(WG)
fn backward_gather(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let v = cover_of(i);
  var sum = 0.0;
  for (var oh = v.ohLo; oh < v.ohHi; oh++) {
    for (var ow = v.owLo; ow < v.owHi; ow++) {
      let at = window_max(clip(v.n, oh, ow, v.c)).at;
      if ((v.hp - oh * s.SH) * s.PW + (v.wp - ow * s.SW) == at) {
        sum += dy[((v.n * s.OH + oh) * s.OW + ow) * s.C + v.c];
      }
    }
  }
  dx[i] = sum;
}

// ---------------------------------------------------------------- 4 channels at a time

struct Best4 { v: vec4f, at: vec4u }

fn window_max4(k: Clip) -> Best4 {
  var best = Best4(x4[k.base], vec4u(k.r0 * s.PW + k.q0));
  for (var r = k.r0; r < k.r1; r++) {
    for (var q = k.q0; q < k.q1; q++) {
      let v = x4[k.base + ((r - k.r0) * s.W + (q - k.q0)) * s.C];
      let better = v > best.v;
      best = Best4(select(best.v, v, better), select(best.at, vec4u(r * s.PW + q), better));
    }
  }
  return best;
}

@compute @workgroup_size(WG)
fn forward4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let win = window_of(i);
  y4[i] = window_max4(clip(win.n, win.oh, win.ow, win.c)).v;
}

@compute @workgroup_size(WG)
fn backward_owned4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let win = window_of(i);
  let k = clip(win.n, win.oh, win.ow, win.c);
  let at = window_max4(k).at;
  let g = dy4[i];
  let hn = owned_rows(win.oh);
  let wn = owned_cols(win.ow);
  for (var r = k.r0; r < hn; r++) {
    for (var q = k.q0; q < wn; q++) {
      let inside = r < s.PH && q < s.PW;
      let mine = vec4<bool>(inside) & (at == vec4u(r * s.PW + q));
      dx4[k.base + ((r - k.r0) * s.W + (q - k.q0)) * s.C] = select(vec4f(0.0), g, mine);
    }
  }
}

@compute @workgroup_size(WG)
fn backward_gather4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let v = cover_of(i);
  var sum = vec4f(0.0);
  for (var oh = v.ohLo; oh < v.ohHi; oh++) {
    for (var ow = v.owLo; ow < v.owHi; ow++) {
      let at = window_max4(clip(v.n, oh, ow, v.c)).at;
      let me = vec4u((v.hp - oh * s.SH) * s.PW + (v.wp - ow * s.SW));
      sum += select(vec4f(0.0), dy4[((v.n * s.OH + oh) * s.OW + ow) * s.C + v.c], at == me);
    }
  }
  dx4[i] = sum;
}
