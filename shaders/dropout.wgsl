// Inverted dropout with a counter-based mask: nothing is stored between forward and backward.
//   dst[i] = keep(seed, step, base + i) ? src[i] * scale : 0,   scale = 1 / (1 - rate)
// Forward binds (x -> y), backward binds (dy -> dx): the gradient of this elementwise op is the
// same masked scaling, so one entry point guarantees both use the identical mask.
//
// The mask bit is a pure function of (seed, step, element index), built from u32 integer
// arithmetic only, so src/kernels/dropout.ts (dropoutBits) reproduces it bit for bit:
//   mix32(x)       = x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16
//   key(seed,step) = mix32(mix32(seed ^ 0x9e3779b9) + step)
//   bits(i)        = mix32(mix32(i ^ key) + key)
//   keep           = bits >= threshold,   threshold = min(round(rate * 2^32), 2^32 - 1)
// Large tensors run as several chunks (bindings limited to maxStorageBufferBindingSize);
// chunk.base is the chunk's first element index, so the mask does not depend on the split.

struct Params { seed: u32, step: u32, threshold: u32, scale: f32 }
struct Chunk { base: u32, count: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// Chosen by the host: min(256, maxComputeInvocationsPerWorkgroup).
override WG: u32 = 256u;

// A bijective 32-bit mixer with full avalanche (two multiply / xor-shift rounds).
fn mix32(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

fn dropout_bits(seed: u32, step: u32, index: u32) -> u32 {
  let key = mix32(mix32(seed ^ 0x9e3779b9u) + step);
  return mix32(mix32(index ^ key) + key);
}

@compute @workgroup_size(WG)
fn apply(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= chunk.count) { return; }
  let keep = dropout_bits(params.seed, params.step, chunk.base + i) >= params.threshold;
  // select, not multiply by a 0/1 mask: a dropped element is exactly 0 even if src is inf.
  dst[i] = select(0.0, src[i] * params.scale, keep);
}
