// Conv2d input gradient. The GEMM is the forward kernel (conv2d.wgsl / conv2d_sg.wgsl) with
// ROTATED: dx = conv(dz, w rotated by 180 degrees with Cin and Cout swapped), M = N*H*W,
// N = Cin, K = kh*kw*Cout (with strides: one such GEMM per phase of dx, each over the taps that
// reach its pixels). With ReLU, the portable kernels mask dy with (y > 0) as they load it;
// for the subgroup kernels (lavapipe) this pass writes dz = dy * (y > 0) (Keras's ReLU gradient)
// to a scratch buffer first, for both backward GEMMs: they load each element of dz once per tap
// and per 32 channels, each load is a per-lane loop there, and masking on load made them
// 1.3-2x slower than this extra pass. With RELU6 the mask is 0 < y < 6 (TF's Relu6Grad).

struct MaskShape { n4: u32 }

@group(0) @binding(0) var<uniform> mshape: MaskShape;
@group(0) @binding(1) var<storage, read> dy4: array<vec4f>;
@group(0) @binding(2) var<storage, read> y4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> dz4: array<vec4f>;

override RELU6: bool = false;

@compute @workgroup_size(64)
fn relu_mask(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i < mshape.n4) {
    let y = y4[i];
    var keep = y > vec4f(0.0);
    if (RELU6) { keep = keep & (y < vec4f(6.0)); }
    dz4[i] = select(vec4f(0.0), dy4[i], keep);
  }
}
