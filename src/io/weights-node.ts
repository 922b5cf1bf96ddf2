// Node side of weights I/O: files, Keras HDF5 conversion, and the ImageNet weights cache (VGG16,
// ResNet50, MobileNetV2: the files are listed in imagenet-files.ts).

import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDiskFull, writeFilesAtomic } from './atomic-file-node.ts';
import { downloadFile, md5File, textProgress } from './download-node.ts';
import { readKerasH5, writeKerasH5, type KerasH5Weights } from './keras-h5-node.ts';
import { VGG16_NOTOP, type ImagenetWeightsFile } from './imagenet-files.ts';
import { collectLayerWeights, requireFinite, type WeightedModel } from './model-weights.ts';
import {
  buildWeightsManifest,
  checkDataFileName,
  DEFAULT_DATA_FILE,
  parseWeightsManifest,
  readWeightsData,
  type LayerWeights,
  type ProgressCallback,
  type WeightsManifest,
  type WeightsSourceOptions,
} from './weights-manifest.ts';

export { textProgress, VGG16_NOTOP };

export const MANIFEST_FILE = 'manifest.json';
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/** $WEBGPU_FINETUNE_CACHE, else $XDG_CACHE_HOME/webgpu-finetune, else ~/.cache/webgpu-finetune. */
export function defaultCacheDir(): string {
  const env = process.env.WEBGPU_FINETUNE_CACHE;
  if (env) return resolve(env);
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'webgpu-finetune');
}

/** Where Keras itself caches downloaded weights: $KERAS_HOME/models or ~/.keras/models. */
function kerasModelsDir(): string {
  return join(process.env.KERAS_HOME || join(homedir(), '.keras'), 'models');
}

const progressOf = (p: ProgressCallback | false | undefined): ProgressCallback | undefined => (p === false ? undefined : p ?? textProgress());

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Where saveWeights puts things: a path ending in .json is the manifest, its data file named
 * after it (`model.json` -> `model.bin`); any other path is a folder with manifest.json + weights.bin.
 */
function filesFor(target: string): { manifestPath: string; dataFile: string } {
  const path = resolve(target);
  if (extname(path).toLowerCase() === '.json') {
    const stem = basename(path).slice(0, -'.json'.length).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[.-]+/, '') || 'weights';
    return { manifestPath: path, dataFile: checkDataFileName(`${stem}.bin`) };
  }
  return { manifestPath: join(path, MANIFEST_FILE), dataFile: DEFAULT_DATA_FILE };
}

/**
 * Writes a manifest and its data complete-or-nothing: both are written to temporary files and
 * checked first, then the data file is renamed into place before the manifest, so a reader never
 * sees a manifest pointing at a partial or missing data file, and a full disk leaves the previous
 * pair as it was.
 */
export async function writeWeightsFiles(target: string, layers: LayerWeights[], meta: { model: string; source?: Record<string, string> }): Promise<WeightsManifest> {
  const { manifestPath, dataFile } = filesFor(target);
  await mkdir(dirname(manifestPath), { recursive: true });
  const { manifest, data } = await buildWeightsManifest(layers, { ...meta, dataFile });
  await writeFilesAtomic([
    { path: join(dirname(manifestPath), dataFile), data: new Uint8Array(data) },
    { path: manifestPath, data: `${JSON.stringify(manifest, null, 1)}\n` },
  ]);
  return manifest;
}

async function isHdf5(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(4);
    await fh.read(buf, 0, 4, 0);
    return buf[0] === 0x89 && buf[1] === 0x48 && buf[2] === 0x44 && buf[3] === 0x46;
  } finally {
    await fh.close();
  }
}

/** Reads a manifest.json and its data file, treating both as untrusted (bounds, names, hashes). */
export async function readManifestFiles(manifestPath: string): Promise<LayerWeights[]> {
  const info = await stat(manifestPath);
  if (info.size > MAX_MANIFEST_BYTES) throw new Error(`${manifestPath}: ${info.size} bytes is too large for a weights manifest`);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (e) {
    // JSON.parse quotes the text around the fault: from a binary file that is bytes, not words
    const why = (e instanceof Error ? e.message : String(e)).replace(/[^\x20-\x7e]+/g, '?').slice(0, 160);
    throw new Error(`${manifestPath}: not a weights manifest (invalid JSON: ${why})`);
  }
  const manifest = parseWeightsManifest(json, manifestPath);
  const folder = dirname(manifestPath);
  const dataPath = resolve(folder, manifest.dataFile);
  // parseWeightsManifest already allows only plain names; this is the belt to those braces.
  if (relative(folder, dataPath) !== manifest.dataFile) throw new Error(`${manifestPath}: data file ${manifest.dataFile} is outside the manifest's folder`);
  const dataInfo = await stat(dataPath).catch(() => null);
  if (!dataInfo?.isFile()) throw new Error(`${manifestPath}: its data file ${dataPath} is missing`);
  if (dataInfo.size !== manifest.byteLength) throw new Error(`${dataPath}: ${dataInfo.size} bytes, but ${basename(manifestPath)} describes ${manifest.byteLength}: truncated, or from another export`);
  return readWeightsData(manifest, await readFile(dataPath), { where: dataPath });
}

/**
 * Reads weights from a path: a folder holding manifest.json, a manifest .json file, or a Keras
 * HDF5 file (.h5 / .hdf5 / .weights.h5: any of the three layouts).
 */
export async function readWeightsFiles(target: string): Promise<LayerWeights[]> {
  const path = target.startsWith('file:') ? fileURLToPath(target) : resolve(target);
  const info = await stat(path).catch(() => null);
  if (!info) throw new Error(`weights: ${path} does not exist (expected a Keras .h5 file, a manifest.json, or a folder holding one)`);
  if (info.isDirectory()) {
    const manifest = join(path, MANIFEST_FILE);
    if (!(await exists(manifest))) throw new Error(`weights: the folder ${path} has no ${MANIFEST_FILE}`);
    return readManifestFiles(manifest);
  }
  // A .h5 name is a Keras file: without the HDF5 signature it is refused as such (readKerasH5
  // looks past a user block too), not parsed as a manifest.
  if (/\.(h5|hdf5|keras)$/i.test(path) || (await isHdf5(path))) return (await readKerasH5(path)).layers;
  return readManifestFiles(path);
}

/**
 * Converts a Keras HDF5 weights file into manifest.json + weights.bin in `outDir`.
 * Returns the manifest; weightless layers (pools) are dropped, as they do not count in Keras's order.
 */
export async function convertWeights(h5Path: string, outDir: string, options: { model?: string } = {}): Promise<WeightsManifest> {
  const h5 = await readKerasH5(h5Path);
  return writeConverted(h5, h5Path, outDir, options.model ?? basename(h5Path).replace(/(\.weights)?\.(h5|hdf5)$/i, ''));
}

async function writeConverted(h5: KerasH5Weights, h5Path: string, outDir: string, model: string, md5?: string): Promise<WeightsManifest> {
  const source: Record<string, string> = { file: basename(h5Path), layout: h5.layout };
  if (h5.kerasVersion) source.keras_version = h5.kerasVersion;
  if (h5.backend) source.backend = h5.backend;
  for (const l of h5.layers) l.weights.forEach((w, i) => requireFinite(w, `${h5Path}: layer '${l.layer}', weight ${i} (${w.name})`, 'nothing was written'));
  source.md5 = md5 ?? (await md5File(h5Path));
  return writeWeightsFiles(outDir, h5.layers.filter((l) => l.weights.length > 0), { model, source });
}

function manualInstructions(file: ImagenetWeightsFile, cacheDir: string): string {
  const facts = [file.bytes === undefined ? '' : `${file.bytes.toLocaleString('en-US')} bytes`, file.md5 ? `MD5 ${file.md5}` : ''].filter(Boolean).join(', ');
  return `To supply the file by hand, download ${file.fileName}${facts ? ` (${facts})` : ''} from\n` +
    `  ${file.url}\n` +
    `on a machine with network access, then one of:\n` +
    `  - copy it to ${join(cacheDir, file.fileName)} (the cache folder; set WEBGPU_FINETUNE_CACHE to use another)\n` +
    `  - copy it to Keras's cache, ${join(kerasModelsDir(), file.fileName)}\n` +
    `  - pass its path: ${file.builder}({ weights: '/path/to/${file.fileName}' })${file === VGG16_NOTOP ? ` (command line: --weights /path/to/${file.fileName})` : ''}.`;
}

/**
 * The ImageNet VGG16 (notop) weights: from the converted cache; else from Keras's .h5 in the
 * cache folder or Keras's own cache; else downloaded (MD5-checked). The .h5 is converted and cached.
 * `md5` is for tests that serve their own file.
 */
export function imagenetVgg16Weights(options: WeightsSourceOptions & { md5?: string } = {}): Promise<LayerWeights[]> {
  return imagenetWeights(VGG16_NOTOP, options);
}

/**
 * One of Keras's ImageNet weights files (imagenet-files.ts), as imagenetVgg16Weights: the converted
 * cache, else the .h5 in our cache or Keras's, else a download; MD5-checked where Keras has a hash
 * (`md5`, for tests, replaces it). $WEBGPU_FINETUNE_WEIGHTS_URL stands for the VGG16 file only.
 */
export async function imagenetWeights(file: ImagenetWeightsFile, options: WeightsSourceOptions & { md5?: string } = {}): Promise<LayerWeights[]> {
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir());
  const md5 = options.md5 ?? file.md5 ?? undefined;
  const converted = join(cacheDir, file.converted);
  if (await exists(join(converted, MANIFEST_FILE))) {
    try {
      return await readManifestFiles(join(converted, MANIFEST_FILE));
    } catch {
      // A damaged cache entry (disk trouble, an edit by hand) is rebuilt from the .h5 below.
      await rm(converted, { recursive: true, force: true });
    }
  }
  await mkdir(cacheDir, { recursive: true });
  const inCache = join(cacheDir, file.fileName);
  let h5Path: string | undefined;
  for (const candidate of [inCache, join(kerasModelsDir(), file.fileName)]) {
    if (await exists(candidate)) {
      h5Path = candidate;
      break;
    }
  }
  if (h5Path) {
    const found = md5 === undefined ? undefined : await md5File(h5Path);
    if (found !== md5) throw new Error(`${h5Path} has MD5 ${found}, expected ${md5}: it is damaged or not Keras's file. Delete it (it will be downloaded again) or replace it.\n${manualInstructions(file, cacheDir)}`);
  } else {
    const url = options.downloadUrl ?? (file === VGG16_NOTOP ? process.env.WEBGPU_FINETUNE_WEIGHTS_URL : undefined) ?? file.url;
    try {
      await downloadFile(url, inCache, { md5, onProgress: progressOf(options.onProgress) });
    } catch (e) {
      throw new Error(`Could not get the ${file.builder} ImageNet weights: ${e instanceof Error ? e.message : String(e)}.\n${manualInstructions(file, cacheDir)}`, { cause: e });
    }
    h5Path = inCache;
  }
  const h5 = await readKerasH5(h5Path);
  // Convert into a fresh folder, then rename it into place: the cache never holds half a conversion.
  const tmp = `${converted}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeConverted(h5, h5Path, tmp, file.model, md5);
    await rename(tmp, converted).catch(async (e: NodeJS.ErrnoException) => {
      // Another process finished first: its copy is as good as ours.
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
    });
  } catch (e) {
    if (isDiskFull(e)) {
      throw Object.assign(new Error(`disk full while caching the converted ${file.builder} weights in ${converted}: nothing was cached (${h5Path} is kept); free some space and run again`, { cause: e }), { code: (e as NodeJS.ErrnoException).code });
    }
    throw e;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return h5.layers;
}

/** Weights named by a backbone's/loadWeights argument, in Node: 'imagenet' (`imagenet`'s file, default VGG16's) or a path. */
export async function readWeightsSpec(spec: string, options: WeightsSourceOptions = {}, imagenet: ImagenetWeightsFile = VGG16_NOTOP): Promise<LayerWeights[]> {
  if (spec === 'imagenet') return imagenetWeights(imagenet, options);
  return readWeightsFiles(spec);
}

/** model.saveWeights: manifest + .bin (a folder or a .json path), or Keras HDF5 for a .h5 path. */
export async function saveModelWeights(model: WeightedModel, target: string): Promise<void> {
  if (/\.(h5|hdf5)$/i.test(target)) return saveModelWeightsH5(model, target);
  await writeWeightsFiles(target, await collectLayerWeights(model), { model: model.name });
}

/** model.saveWeightsH5: Keras's HDF5 layout, loadable with Keras's model.load_weights(). */
export async function saveModelWeightsH5(model: WeightedModel, path: string): Promise<void> {
  const weighted = new Map((await collectLayerWeights(model)).map((l) => [l.layer, l.weights]));
  // Keras lists every layer, weightless ones with an empty weight_names.
  const layers = model.layers.map((l) => ({ layer: l.name, weights: weighted.get(l.name) ?? [] }));
  await mkdir(dirname(resolve(path)), { recursive: true });
  await writeKerasH5(path, layers);
}
