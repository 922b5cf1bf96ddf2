// Arithmetic ceiling probe: each invocation runs ACC independent vec4 fused multiply-add chains
// (UNROLL rounds per loop iteration, `iterations` iterations) and writes their sum, so nothing
// can be optimised away. The chains are independent, so the adapter can keep its FMA units
// busy without waiting on latency; the multiplier and addend come from a uniform so the
// compiler cannot fold the loop. Floating-point operations per invocation:
//   2 (mul + add) * 4 (vec4 lanes) * ACC * UNROLL * iterations
// with ACC = 8 and UNROLL = 4 (bench/lib/ceiling.ts mirrors these constants).

struct Params {
  iterations: u32,
  seed: f32,
  mul: f32,   // slightly below 1 and
  add: f32,   // small, so the values stay finite for any number of iterations
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> sink: array<vec4<f32>>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  let s = params.seed + f32(i) * 1e-7;
  let m = vec4f(params.mul);
  let c = vec4f(params.add);
  var a0 = vec4f(s, s + 0.1, s + 0.2, s + 0.3);
  var a1 = a0 + vec4f(0.01);
  var a2 = a0 + vec4f(0.02);
  var a3 = a0 + vec4f(0.03);
  var a4 = a0 + vec4f(0.04);
  var a5 = a0 + vec4f(0.05);
  var a6 = a0 + vec4f(0.06);
  var a7 = a0 + vec4f(0.07);
  for (var k = 0u; k < params.iterations; k++) {
    // UNROLL = 4 rounds of the 8 independent chains.
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
  }
  sink[i] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
}
