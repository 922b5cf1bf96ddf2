// The non-finite loss guard: sets the sticky `halt` flag when a step's loss (stats[0]) is NaN or
// Inf. Every optimizer's update kernel skips its update while the flag is set, so training
// stopped on a NaN keeps the weights of the last good step even though the host learns of the
// NaN only after later steps were submitted.

@group(0) @binding(0) var<storage, read_write> halt: array<u32>;
@group(0) @binding(1) var<storage, read> stats: array<f32>;

// Inf and NaN have all exponent bits set; testing bits survives fast-math folding of x != x.
fn is_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(1)
fn main() {
  if (!is_finite(stats[0])) { halt[0] = 1u; }
}
