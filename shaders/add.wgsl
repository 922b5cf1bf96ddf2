// Elementwise sum of several tensors (Keras Add), in stages that each bind at most 5 storage
// buffers, and the in-place accumulation used to sum gradients where a tensor fans out:
//   sumK  y  = x0 + ... + x(K-1)        K = 2..4, y written (every element)
//   accK  y += x0 + ... + x(K-1)        K = 1..3, y read and written in place
// src/kernels/add.ts chains one sum stage and as many acc stages as the inputs need.
// Entries ending in 4 process 4 elements as a vec4 (size % 4 == 0); `n` then counts vec4s.

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<f32>;
@group(0) @binding(4) var<storage, read> x3: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> x0_4: array<vec4f>;
@group(0) @binding(7) var<storage, read> x1_4: array<vec4f>;
@group(0) @binding(8) var<storage, read> x2_4: array<vec4f>;
@group(0) @binding(9) var<storage, read> x3_4: array<vec4f>;
@group(0) @binding(10) var<storage, read_write> y_4: array<vec4f>;

const WG: u32 = 128u;

fn linear_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn sum2(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y[i] = x0[i] + x1[i];
}

@compute @workgroup_size(WG)
fn sum3(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y[i] = x0[i] + x1[i] + x2[i];
}

@compute @workgroup_size(WG)
fn sum4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y[i] = x0[i] + x1[i] + x2[i] + x3[i];
}

@compute @workgroup_size(WG)
fn acc1(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y[i] = y[i] + x0[i];
}

@compute @workgroup_size(WG)
fn acc2(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y[i] = y[i] + x0[i] + x1[i];
}

@compute @workgroup_size(WG)
fn acc3(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y[i] = y[i] + x0[i] + x1[i] + x2[i];
}

// ---------------------------------------------------------------- 4 elements at a time

@compute @workgroup_size(WG)
fn sum24(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y_4[i] = x0_4[i] + x1_4[i];
}

@compute @workgroup_size(WG)
fn sum34(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y_4[i] = x0_4[i] + x1_4[i] + x2_4[i];
}

@compute @workgroup_size(WG)
fn sum44(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y_4[i] = x0_4[i] + x1_4[i] + x2_4[i] + x3_4[i];
}

@compute @workgroup_size(WG)
fn acc14(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y_4[i] = y_4[i] + x0_4[i];
}

@compute @workgroup_size(WG)
fn acc24(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y_4[i] = y_4[i] + x0_4[i] + x1_4[i];
}

@compute @workgroup_size(WG)
fn acc34(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= p.n) { return; }
  y_4[i] = y_4[i] + x0_4[i] + x1_4[i] + x2_4[i];
}
