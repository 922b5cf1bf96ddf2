// Loading exported weights over HTTP (browsers and Node): manifest.json, then its data file,
// with progress. Platform-free: only fetch and URL.

import { parseWeightsManifest, readWeightsData, type LayerWeights, type ProgressCallback, type WeightsManifest } from './weights-manifest.ts';

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

function manifestUrlOf(url: string): URL {
  const base = typeof location !== 'undefined' ? location.href : undefined;
  const u = new URL(url, base);
  // A folder URL means the manifest.json inside it.
  return u.pathname.endsWith('/') ? new URL('manifest.json', u) : u;
}

async function get(url: URL, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`could not fetch ${what} ${url.href}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (!res.ok) throw new Error(`could not fetch ${what} ${url.href}: HTTP ${res.status} ${res.statusText}`);
  return res;
}

/** Reads a body into exactly `size` bytes, reporting progress; more or fewer bytes is an error. */
async function readExactly(res: Response, size: number, url: URL, label: string, onProgress?: ProgressCallback): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let loaded = 0;
  onProgress?.({ label, loaded, total: size });
  if (!res.body) throw new Error(`${url.href}: the response has no body`);
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.length > size) {
      await reader.cancel();
      throw new Error(`${url.href}: more than the ${size} bytes its manifest describes`);
    }
    out.set(value, loaded);
    loaded += value.length;
    onProgress?.({ label, loaded, total: size });
  }
  if (loaded !== size) throw new Error(`${url.href}: received ${loaded} bytes, its manifest describes ${size}`);
  return out;
}

/** Fetches and validates a manifest (a URL to manifest.json, or to its folder ending in '/'). */
export async function fetchManifest(url: string): Promise<{ manifest: WeightsManifest; url: URL }> {
  const manifestUrl = manifestUrlOf(url);
  const res = await get(manifestUrl, 'the weights manifest');
  const declared = Number(res.headers.get('content-length'));
  if (declared > MAX_MANIFEST_BYTES) throw new Error(`${manifestUrl.href}: ${declared} bytes is too large for a weights manifest`);
  const text = await res.text();
  if (text.length > MAX_MANIFEST_BYTES) throw new Error(`${manifestUrl.href}: too large for a weights manifest`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${manifestUrl.href}: not a weights manifest (invalid JSON: ${e instanceof Error ? e.message : String(e)})`);
  }
  return { manifest: parseWeightsManifest(json, manifestUrl.href), url: manifestUrl };
}

/** Fetches exported weights: the manifest, then its data file (same folder), checked against each other. */
export async function fetchWeights(url: string, options: { onProgress?: ProgressCallback } = {}): Promise<LayerWeights[]> {
  const { manifest, url: manifestUrl } = await fetchManifest(url);
  // dataFile is a plain name (checked by parseWeightsManifest), so this stays in the manifest's folder.
  const dataUrl = new URL(manifest.dataFile, manifestUrl);
  if (dataUrl.origin !== manifestUrl.origin) throw new Error(`${manifestUrl.href}: data file ${dataUrl.href} is on another origin`);
  const res = await get(dataUrl, 'the weights data');
  const bytes = await readExactly(res, manifest.byteLength, dataUrl, manifest.dataFile, options.onProgress);
  return readWeightsData(manifest, bytes, { where: dataUrl.href });
}
