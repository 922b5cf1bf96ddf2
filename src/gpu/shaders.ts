/**
 * Where WGSL sources come from. In Node they are read from the package's `shaders/` folder; a
 * browser bundle registers them up front (e.g. Vite's import.meta.glob with `?raw`) through
 * registerShaders(); unbundled browser code falls back to fetching them next to this module.
 */
const registered = new Map<string, string>();
const loading = new Map<string, Promise<string>>();

/** Makes shader sources available without file access (browser bundles, tests of bad shaders). */
export function registerShaders(sources: Record<string, string>): void {
  for (const [name, code] of Object.entries(sources)) {
    registered.set(baseName(name), code);
  }
}

function baseName(path: string): string {
  const file = path.split('/').pop() ?? path;
  return file.endsWith('.wgsl') ? file : `${file}.wgsl`;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

async function readShader(file: string): Promise<string> {
  const url = new URL(`../../shaders/${file}`, import.meta.url);
  if (isNode) {
    const fs = await import('node:fs/promises');
    try {
      return await fs.readFile(url, 'utf8');
    } catch (e) {
      throw new Error(`shader ${file} not found at ${url.pathname}: ${(e as Error).message}`);
    }
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`shader ${file}: HTTP ${res.status} fetching ${url}; register it with registerShaders()`);
  return res.text();
}

/** Loads a shader by file name (with or without `.wgsl`), once. */
export function loadShader(name: string): Promise<string> {
  const file = baseName(name);
  const known = registered.get(file);
  if (known !== undefined) return Promise.resolve(known);
  let p = loading.get(file);
  if (!p) {
    p = readShader(file);
    loading.set(file, p);
    p.catch(() => loading.delete(file));
  }
  return p;
}
