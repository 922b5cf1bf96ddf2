// 2-D average pooling, NHWC, padding 'valid' (rows/columns past the last full window are
// dropped, like Keras) or 'same' (PT rows / PL columns of padding above / left, the rest below
// / right, as TF), and its gradient. 'same' windows are clipped to the image and divide by
// their count of real elements (TF/Keras), not by PH*PW.
//
//   forward   one invocation per output element (per 4 channels in the *4 entries)
//   backward  one invocation per dx element (gather: correct for overlapping windows, and it
//             writes 0 to elements no window covers), summing dy / count over the windows
//             that contain it
// Entries ending in 4 process 4 channels as a vec4 (channels % 4 == 0); `C` is then C / 4.

struct Shape {
  N: u32, H: u32, W: u32, C: u32,
  OH: u32, OW: u32, PH: u32, PW: u32,
  SH: u32, SW: u32,
  PT: u32, PL: u32, // 'same' padding above / left (0 for 'valid')
  count: u32,       // invocations with work: N*OH*OW*C forward, N*H*W*C backward
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

// The part of window (oh, ow) inside the image: image rows h0 <= h < h1, columns w0 <= w < w1.
struct Clip { h0: u32, h1: u32, w0: u32, w1: u32 }

fn clip(oh: u32, ow: u32) -> Clip {
  let top = i32(oh * s.SH) - i32(s.PT);
  let left = i32(ow * s.SW) - i32(s.PL);
  return Clip(u32(max(top, 0)), u32(min(top + i32(s.PH), i32(s.H))),
              u32(max(left, 0)), u32(min(left + i32(s.PW), i32(s.W))));
}

fn inv_count(k: Clip) -> f32 {
  return 1.0 / f32((k.h1 - k.h0) * (k.w1 - k.w0));
}

// Output element i = ((n*OH + oh)*OW + ow)*C + c.
struct Window { n: u32, c: u32, k: Clip }

fn window_of(i: u32) -> Window {
  let c = i % s.C;
  var t = i / s.C;
  let ow = t % s.OW;
  t /= s.OW;
  let oh = t % s.OH;
  let n = t / s.OH;
  return Window(n, c, clip(oh, ow));
}

// dx element i = ((n*H + h)*W + w)*C + c, and the windows containing it: with hp = h + PT,
// oh*SH <= hp < oh*SH + PH within [0, OH) (columns alike).
struct Cover { n: u32, c: u32, ohLo: u32, ohHi: u32, owLo: u32, owHi: u32 }

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
  return Cover(n, c, ohLo, ohHi, owLo, owHi);
}

// ---------------------------------------------------------------- scalar channels

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let win = window_of(i);
  let k = win.k;
  var sum = 0.0;
  for (var h = k.h0; h < k.h1; h++) {
    let row = (win.n * s.H + h) * s.W;
    for (var w = k.w0; w < k.w1; w++) {
      sum += x[(row + w) * s.C + win.c];
    }
  }
  y[i] = sum * inv_count(k);
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let v = cover_of(i);
  var sum = 0.0;
  for (var oh = v.ohLo; oh < v.ohHi; oh++) {
    for (var ow = v.owLo; ow < v.owHi; ow++) {
      sum += dy[((v.n * s.OH + oh) * s.OW + ow) * s.C + v.c] * inv_count(clip(oh, ow));
    }
  }
  dx[i] = sum;
}

// ---------------------------------------------------------------- 4 channels at a time

@compute @workgroup_size(WG)
fn forward4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let win = window_of(i);
  let k = win.k;
  var sum = vec4f(0.0);
  for (var h = k.h0; h < k.h1; h++) {
    let row = (win.n * s.H + h) * s.W;
    for (var w = k.w0; w < k.w1; w++) {
      sum += x4[(row + w) * s.C + win.c];
    }
  }
  y4[i] = sum * inv_count(k);
}

@compute @workgroup_size(WG)
fn backward4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= s.count) { return; }
  let v = cover_of(i);
  var sum = vec4f(0.0);
  for (var oh = v.ohLo; oh < v.ohHi; oh++) {
    for (var ow = v.owLo; ow < v.owHi; ow++) {
      sum += dy4[((v.n * s.OH + oh) * s.OW + ow) * s.C + v.c] * inv_count(clip(oh, ow));
    }
  }
  dx4[i] = sum;
}
