// Prints the WebGPU adapter Dawn finds, or exits 1 with the reason. Used by the set-up script.
import { create } from 'webgpu';
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) { console.error('no WebGPU adapter'); process.exit(1); }
const i = adapter.info ?? {};
console.log(`${i.vendor} ${i.architecture} ${i.description ?? ''}${adapter.isFallbackAdapter || i.isFallbackAdapter ? ' (fallback)' : ''}`.trim());
process.exit(0);
