// Conv2d input gradient, first half: the rotated kernel. dx is the convolution of dz with the
// kernel turned by 180 degrees and its channel axes swapped,
//
//   wt[kh-1-ky, kw-1-kx, co, ci] = w[ky, kx, ci, co]        (HWIO in, HWIO out with Cin <-> Cout)
//
// with padding kh-1-padTop / kw-1-padLeft, so the second half is the forward GEMM kernel
// (conv2d.wgsl / conv2d_sg.wgsl) run on dz with M = N*H*W, N = Cin, K = kh*kw*Cout, masking dy
// with (y > 0) as it loads it when the activation is ReLU.

struct FlipShape { kh: u32, kw: u32, cin: u32, cout: u32 }

@group(0) @binding(0) var<uniform> fshape: FlipShape;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> wt: array<f32>;

// One invocation per weight, reading w in order.
@compute @workgroup_size(256)
fn flip(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= fshape.kh * fshape.kw * fshape.cin * fshape.cout) { return; }
  let co = i % fshape.cout;
  let r = i / fshape.cout;
  let ci = r % fshape.cin;
  let tap = r / fshape.cin;
  let ky = fshape.kh - 1u - tap / fshape.kw;
  let kx = fshape.kw - 1u - tap % fshape.kw;
  wt[((ky * fshape.kw + kx) * fshape.cout + co) * fshape.cin + ci] = w[i];
}
