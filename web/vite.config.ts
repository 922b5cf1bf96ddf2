import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

// `npm run web` serves web/ on 127.0.0.1 (a secure context, so WebGPU is allowed); `npm run
// build:web` writes static files to dist/web with relative URLs, so any static host and any
// sub-path serves them.
export default defineConfig({
  root: here,
  base: './',
  server: { host: '127.0.0.1', port: 5173, fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] } },
  preview: { host: '127.0.0.1', port: 4173 },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 6000, // h5wasm's WebAssembly build (~4 MB) is its own lazily loaded chunk
  },
});
