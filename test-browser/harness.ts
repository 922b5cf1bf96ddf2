/**
 * What the browser tests need around the page: a tiny static server for the built page on
 * 127.0.0.1 (a secure context, so WebGPU is allowed) and Debian's Chromium driven by
 * playwright-core, with the flags of ENVIRONMENT.md. No browser is ever downloaded.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.wgsl': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.bin': 'application/octet-stream',
};

/** Serves `root` read-only on 127.0.0.1 at a free port, plus `extra` files by URL path (e.g. '/weights/manifest.json'). */
export async function serveStatic(root: string, extra: Map<string, Uint8Array> = new Map()): Promise<{ url: string; close(): Promise<void>; server: Server }> {
  const base = resolve(root);
  if (!existsSync(join(base, 'index.html'))) throw new Error(`${base}/index.html is missing: build the page first (npm run build:web)`);
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const given = extra.get(path);
      if (given) {
        res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream', 'content-length': given.length });
        res.end(given);
        return;
      }
      const file = normalize(join(base, path.endsWith('/') ? `${path}index.html` : path));
      if (file !== base && !file.startsWith(base + sep)) throw Object.assign(new Error('outside root'), { code: 'ENOENT' });
      if (!(await stat(file)).isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/`, server, close: () => new Promise((ok) => server.close(() => ok())) };
}

/** Chromium's own binary skips the Debian wrapper script (and its harmless shell error). */
export function chromiumPath(): string {
  for (const p of [process.env.CHROMIUM_PATH, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].filter(Boolean) as string[]) {
    if (existsSync(p)) return p;
  }
  throw new Error('Chromium is not installed: run `bash scripts/install-browser.sh` (apt-get install chromium), or set CHROMIUM_PATH');
}

const NETWORK = ['--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const COMMON = ['--enable-unsafe-webgpu', '--enable-webgpu-developer-features', ...NETWORK];
/** Dawn over OpenGL ES on ANGLE's Vulkan (lavapipe): WebGPU in compatibility mode. */
const COMPAT = ['--use-angle=vulkan', '--use-webgpu-adapter=opengles', '--force-webgpu-compat'];

/** 'none': WebGPU left off, as on a browser or machine without it. */
export async function launch(mode: 'core' | 'compat' | 'none'): Promise<Browser> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const args = mode === 'none' ? NETWORK : mode === 'compat' ? [...COMMON, ...COMPAT] : COMMON;
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args });
}
