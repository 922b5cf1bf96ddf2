/**
 * The page: pick data and weights, set the reference program's knobs, train with live curves,
 * stop and resume, download the weights and try the model on dropped images. The program itself
 * (data flows, model, trainer) lives in web/lib and is platform-free; this file is the DOM.
 */
import './shaders.ts';
import { acquireGpu, fmtBytes, GpuError, type Gpu, type KernelFamily } from '../src/gpu/index.ts';
import { attachTuner, KernelTuner, localStorageTuningStore, memoryTuningStore, tunerFor } from '../src/kernels/autotune.ts';
import { memory, setGpu } from '../src/graph/backend.ts';
import type { PlanMemory } from '../src/graph/plan.ts';
import { decodeRgb } from '../src/io/image-decode.ts';
import { readPngBrowser } from '../src/io/png-browser.ts';
import { exportWeights } from '../src/io/weights.ts';
import { LineChart } from './chart.ts';
import { countImages, dataSetFromFiles, encodePpm, makeFlows, sampleDataSet, type DataSet, type NamedBlob, type SampleOptions } from './lib/data.ts';
import { EarlyStopping } from '../src/graph/callbacks.ts';
import { confusionMatrix, type ConfusionMatrix } from '../src/graph/confusion.ts';
import { buildBase, buildModel, cachedPretrainedBase, enterFineTuning, IMAGENET_FILES, imageInput, modelWeightsH5, pretrainedBase, shapePretrainSettings, weightsFromFiles, weightsFromUrl, type Built, type PretrainedBase, type WeightsFile } from './lib/program.ts';
import { BASES, baseOf, checkSettings, DEFAULT_LEARNING_RATES, DEFAULT_SETTINGS, totalEpochsOf, VGG16_LAYERS, type BaseName, type OptimizerName, type ScheduleName, type TrainSettings } from './lib/settings.ts';
import { Trainer, type EpochRecord, type SecondPhase, type StepRecord } from './lib/trainer.ts';
import { generateSampleSet, PRETRAIN_FAMILIES } from '../src/io/sample-data.ts';
import { collectLayerWeights } from '../src/io/model-weights.ts';
import type { LayerWeights } from '../src/io/weights-manifest.ts';
import { SHAPE_PRETRAIN_DEFAULTS, shapePretrainKey } from '../src/graph/shape-pretraining.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`page: no element #${id}`);
  return e as T;
};
const input = (id: string) => $<HTMLInputElement>(id);

// ---------------------------------------------------------------- notices

function notice(kind: 'info' | 'warn' | 'error', html: string, key?: string): void {
  const box = $('notices');
  if (key) box.querySelector(`[data-key="${key}"]`)?.remove();
  const div = document.createElement('div');
  div.className = `notice ${kind}`;
  if (key) div.dataset.key = key;
  div.innerHTML = html;
  box.append(div);
}
function clearNotice(key: string): void {
  $('notices').querySelector(`[data-key="${key}"]`)?.remove();
}
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));
function fail(e: unknown, key = 'error'): void {
  console.error(e);
  notice('error', `<strong>Error:</strong> ${esc(errorText(e))}`, key);
}

// ---------------------------------------------------------------- the adapter

let gpu: Gpu | null = null;
let compat = false;

async function findGpu(): Promise<Gpu> {
  const nav = navigator as Navigator & { gpu?: GPU };
  if (!nav.gpu) {
    const why = window.isSecureContext ? 'This browser has no WebGPU (<code>navigator.gpu</code> is missing).' : 'WebGPU needs a secure context: open this page over https or from localhost / 127.0.0.1.';
    throw new Error(`${why}|Use Chrome or Edge 113+ (on Linux start it with <code>--enable-unsafe-webgpu --enable-features=Vulkan</code>), Safari 26+, or Firefox 141+ on Windows. Without a GPU, Chrome's software adapter works too (<code>--enable-unsafe-webgpu</code>, slow).`);
  }
  let adapter = await nav.gpu.requestAdapter();
  adapter ??= await nav.gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
  if (!adapter) {
    throw new Error('WebGPU is there, but the browser offers no adapter (GPU blocklisted, driver missing, or WebGPU disabled).|Update the GPU driver, or enable chrome://flags/#enable-unsafe-webgpu (and #enable-vulkan on Linux), then reload.');
  }
  // A compatibility-mode adapter (e.g. WebGPU over OpenGL ES) lacks the core feature set.
  compat = !adapter.features.has('core-features-and-limits' as GPUFeatureName);
  // ?kernels=<family> forces a kernel family (acquireGpu rejects a name it does not know)
  const kernels = (new URLSearchParams(location.search).get('kernels') ?? undefined) as KernelFamily | undefined;
  const g = await acquireGpu({ gpu: nav.gpu, featureLevel: compat ? 'compatibility' : 'core', kernels });
  setGpu(g);
  // Under 'auto' each convolution shape's kernel is measured once on this adapter and remembered
  // in localStorage (memory where there is none); a forced family is never tuned. ?tune=SECONDS
  // bounds the measuring per run (default 5; 0: stored choices only), as the CLI's
  // WEBGPU_FINETUNE_TUNE_BUDGET.
  const asked = Number(new URLSearchParams(location.search).get('tune') ?? 5);
  const budgetMs = Number.isFinite(asked) && asked >= 0 ? asked * 1000 : 5000;
  const tuner = new KernelTuner(g, { budgetMs, store: localStorageTuningStore() ?? memoryTuningStore(), warn: (l) => console.warn(l) });
  attachTuner(g, tuner);
  return g;
}

const gpuReady: Promise<Gpu | null> = findGpu().then((g) => {
  gpu = g;
  const a = g.adapter;
  $('adapter').textContent = `Adapter: ${a.vendor || 'unknown vendor'} · ${a.architecture || 'unknown architecture'}${a.description ? ` · ${a.description}` : ''} · ${a.isFallbackAdapter ? 'fallback (software) adapter' : 'not a fallback adapter'}${compat ? ' · compatibility mode' : ''}`;
  if (a.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe/i.test(`${a.architecture} ${a.description}`)) {
    notice('info', 'This is a <strong>software adapter</strong> (the GPU is emulated on the CPU): everything works, slowly. Keep the input small (e.g. 32×32) and the sample small.', 'software');
  }
  if (compat) {
    notice('info', `WebGPU runs in <strong>compatibility mode</strong> here (e.g. over OpenGL ES). The engine asked for the adapter's real limits (max ${g.limits.maxComputeInvocationsPerWorkgroup} invocations per workgroup, ${fmtBytes(g.limits.maxStorageBufferBindingSize)} per storage binding) and sizes its kernels to them.`, 'compat');
  }
  setState('idle');
  return g;
}).catch((e: unknown) => {
  $<HTMLButtonElement>('train').disabled = true;
  if (e instanceof GpuError && e.context === 'kernels') {
    // WebGPU is there; the URL asked for a kernel family that does not exist
    $('adapter').textContent = 'No device: unknown kernel family';
    fail(new Error(`?kernels in the page's URL: ${e.message}`), 'nogpu');
    return null;
  }
  const [what, todo] = errorText(e).split('|');
  $('adapter').textContent = 'No WebGPU adapter';
  notice('error', `<strong>WebGPU is not available.</strong> ${what}${todo ? `<br>What to do: ${todo}` : ''}`, 'nogpu');
  $<HTMLButtonElement>('train').disabled = true;
  return null;
});

// ---------------------------------------------------------------- data

let folderData: DataSet | null = null;
let sampleCache: { key: string; data: DataSet } | null = null;

function sampleOptions(): SampleOptions {
  return { train: input('sample-train').valueAsNumber, test: input('sample-test').valueAsNumber, size: input('sample-size').valueAsNumber, seed: input('sample-seed').valueAsNumber };
}

function dataKind(): 'sample' | 'folder' {
  return (document.querySelector('input[name=data]:checked') as HTMLInputElement).value as 'sample' | 'folder';
}

function currentData(): DataSet {
  if (dataKind() === 'folder') {
    if (!folderData) throw new Error('choose or drop a folder with train/ and test/ class folders first (or use the built-in sample)');
    return folderData;
  }
  const o = sampleOptions();
  for (const [k, v] of Object.entries(o)) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`sample ${k} must be a whole number, got ${v}`);
  }
  if (o.train < 2 || o.test < 2) throw new Error('the sample needs at least 2 train and 2 test images (one per class)');
  if (o.size < 8) throw new Error('sample images must be at least 8 pixels wide');
  const key = JSON.stringify(o);
  if (sampleCache?.key !== key) sampleCache = { key, data: sampleDataSet(o) };
  return sampleCache.data;
}

function rgbCanvas(rgb: Uint8Array, height: number, width: number): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  const img = new ImageData(width, height);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    img.data[j] = rgb[i];
    img.data[j + 1] = rgb[i + 1];
    img.data[j + 2] = rgb[i + 2];
    img.data[j + 3] = 255;
  }
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}

/** A thumbnail: the browser draws PNG/JPEG/BMP itself; PPM and friends go through our decoder. */
async function thumbnail(file: NamedBlob): Promise<HTMLElement> {
  if (/\.(png|jpe?g|bmp|gif|webp)$/i.test(file.name)) {
    const img = document.createElement('img');
    img.src = URL.createObjectURL(file);
    img.alt = file.name;
    img.title = file.name;
    return img;
  }
  try {
    const rgb = decodeRgb(new Uint8Array(await file.arrayBuffer()), readPngBrowser);
    const c = rgbCanvas(rgb.data, rgb.height, rgb.width);
    c.title = file.name;
    return c;
  } catch {
    const span = document.createElement('span');
    span.textContent = '?';
    span.title = `${file.name}: cannot be decoded`;
    return span;
  }
}

async function showData(): Promise<void> {
  const box = $('data-summary');
  let data: DataSet;
  try {
    data = currentData();
  } catch (e) {
    box.textContent = errorText(e);
    return;
  }
  const train = countImages(data.train);
  const test = countImages(data.test);
  const table = document.createElement('table');
  table.innerHTML = `<caption style="text-align:left">${esc(data.name)}</caption><tr><th>class (label)</th><th>train</th><th>test</th><th>examples</th></tr>`;
  for (const [i, cls] of data.classes.entries()) {
    const tr = document.createElement('tr');
    tr.innerHTML = `<td>${esc(cls)} (${i})</td><td>${train[cls] ?? 0}</td><td>${test[cls] ?? 0}</td><td class="thumbs"></td>`;
    const thumbs = tr.querySelector('.thumbs')!;
    for (const f of (data.train[cls] ?? []).slice(0, 5)) thumbs.append(await thumbnail(f));
    table.append(tr);
  }
  box.replaceChildren(table);
  if (data.classes.length !== 2) {
    const p = document.createElement('p');
    p.className = 'notice warn';
    p.textContent = `The model ends in one sigmoid unit, so it needs exactly 2 classes; this folder has ${data.classes.length}.`;
    box.append(p);
  }
  if (data.ignored.length) {
    const p = document.createElement('details');
    p.innerHTML = `<summary>${data.ignored.length} files not used</summary><pre>${esc(data.ignored.slice(0, 50).join('\n'))}${data.ignored.length > 50 ? '\n…' : ''}</pre>`;
    box.append(p);
  }
}

function setFolder(files: { path: string; file: NamedBlob }[], name: string): void {
  try {
    folderData = dataSetFromFiles(files, name);
    clearNotice('data');
  } catch (e) {
    folderData = null;
    fail(e, 'data');
  }
  (document.querySelector('input[name=data][value=folder]') as HTMLInputElement).checked = true;
  void showData();
}

/** Every file under a dropped directory entry, with its path. */
async function walk(entry: FileSystemEntry, out: { path: string; file: NamedBlob }[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
    out.push({ path: entry.fullPath, file });
  } else if (entry.isDirectory) {
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const e of batch) await walk(e, out);
    }
  }
}

function dropZone(id: string, onDrop: (e: DragEvent) => void): void {
  const zone = $(id);
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    onDrop(e);
  });
}

input('pick-folder').addEventListener('change', () => {
  const files = Array.from(input('pick-folder').files ?? []);
  setFolder(files.map((f) => ({ path: f.webkitRelativePath || f.name, file: f })), files[0]?.webkitRelativePath.split('/')[0] || 'the picked folder');
});
dropZone('drop-folder', async (e) => {
  const entries = Array.from(e.dataTransfer?.items ?? []).map((i) => i.webkitGetAsEntry()).filter((x): x is FileSystemEntry => !!x);
  const files: { path: string; file: NamedBlob }[] = [];
  for (const entry of entries) await walk(entry, files);
  setFolder(files, entries.length === 1 ? entries[0].name : 'the dropped files');
});
for (const id of ['sample-train', 'sample-test', 'sample-size', 'sample-seed']) input(id).addEventListener('change', () => void showData());
document.querySelectorAll('input[name=data]').forEach((r) => r.addEventListener('change', () => void showData()));

// ---------------------------------------------------------------- weights

let weights: { key: string; file: WeightsFile } | null = null;

function weightsKind(): 'random' | 'url' | 'files' | 'pretrain' {
  return (document.querySelector('input[name=weights]:checked') as HTMLInputElement).value as 'random' | 'url' | 'files' | 'pretrain';
}

function weightsProgress(loaded: number, total: number | null): void {
  const bar = $<HTMLProgressElement>('weights-progress');
  bar.hidden = false;
  if (total) {
    bar.max = total;
    bar.value = loaded;
  } else bar.removeAttribute('value');
  $('weights-status').textContent = `Downloading: ${fmtBytes(loaded)}${total ? ` of ${fmtBytes(total)} (${Math.floor((100 * loaded) / total)}%)` : ''}`;
}

/** The chosen weights, read once and kept (null for random initialisation). */
async function currentWeights(): Promise<WeightsFile | null> {
  const kind = weightsKind();
  if (kind === 'random') {
    $('weights-status').textContent = 'Random initialisation: Keras\'s glorot-uniform from the seed; no pretrained features, so expect accuracy near chance.';
    return null;
  }
  if (kind === 'pretrain') throw new Error('pretraining on other shapes is the SmallCNN base\'s option: choose SmallCNN under Settings, or other starting weights');
  let key: string;
  let read: () => Promise<WeightsFile>;
  if (kind === 'url') {
    const url = input('weights-url').value.trim();
    if (!url) throw new Error('enter the URL of an exported manifest.json (or choose random initialisation)');
    key = `url:${url}`;
    read = () => weightsFromUrl(url, (p) => weightsProgress(p.loaded, p.total));
  } else {
    const files = Array.from(input('weights-files').files ?? []);
    if (!files.length) throw new Error('choose a Keras .h5 file, or a manifest.json with its .bin');
    key = `files:${files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).join('|')}`;
    read = () => {
      $('weights-status').textContent = `Reading ${files.map((f) => f.name).join(', ')}…`;
      return weightsFromFiles(files);
    };
  }
  if (weights?.key !== key) {
    const file = await read();
    weights = { key, file };
    const n = file.layers.filter((l) => l.weights.length).length;
    const values = file.layers.reduce((a, l) => a + l.weights.reduce((b, w) => b + w.data.length, 0), 0);
    $('weights-status').textContent = `Read ${n} layers with weights (${(values / 1e6).toFixed(1)} M values) from ${file.source}.`;
    $<HTMLProgressElement>('weights-progress').hidden = true;
  }
  return weights.file;
}

const kerasLink = $<HTMLAnchorElement>('keras-url');
/** The weights hint names the chosen base's Keras file. */
function showKerasFile(base: BaseName): void {
  const f = IMAGENET_FILES[base];
  $('keras-hint').hidden = !f; // SmallCNN has no ImageNet file
  if (!f) return;
  kerasLink.href = f.url;
  kerasLink.textContent = f.fileName;
  $('keras-base').textContent = BASES[base].builder;
  $('keras-size').textContent = f.size;
}
kerasLink.addEventListener('click', (e) => {
  // Fill the URL field rather than navigate: the page tries the download itself.
  e.preventDefault();
  input('weights-url').value = kerasLink.href;
  (document.querySelector('input[name=weights][value=url]') as HTMLInputElement).checked = true;
});
$('weights-load').addEventListener('click', () => {
  (document.querySelector('input[name=weights][value=url]') as HTMLInputElement).checked = true;
  currentWeights().then(() => clearNotice('weights'), (e) => fail(e, 'weights'));
});
input('weights-files').addEventListener('change', () => {
  (document.querySelector('input[name=weights][value=files]') as HTMLInputElement).checked = true;
  currentWeights().then(() => clearNotice('weights'), (e) => fail(e, 'weights'));
});

// ---------------------------------------------------------------- settings

const FIELDS: [keyof TrainSettings, string][] = [
  ['height', 's-height'], ['width', 's-width'], ['batchSize', 's-batch'], ['epochs', 's-epochs'],
  ['learningRate', 's-lr'], ['momentum', 's-momentum'], ['seed', 's-seed'], ['frozen', 's-frozen'],
];

const select = (id: string) => $<HTMLSelectElement>(id);

function writeSettings(s: TrainSettings): void {
  select('s-base').value = baseOf(s);
  showBase();
  for (const [k, id] of FIELDS) input(id).value = String(s[k]);
  input('s-augment').checked = s.augment;
  select('s-optimizer').value = s.optimizer ?? 'sgd';
  select('s-schedule').value = s.schedule ?? 'none';
  input('s-early').checked = (s.earlyStopping ?? 0) > 0;
  if (s.earlyStopping) input('s-patience').value = String(s.earlyStopping);
  input('s-ft').checked = !!s.fineTune;
  fineTuneDefaults(s.fineTune);
  renderLayers();
}

function readSettings(): TrainSettings {
  const s = { ...DEFAULT_SETTINGS };
  for (const [k, id] of FIELDS) (s as Record<string, unknown>)[k] = Number(input(id).value);
  s.augment = input('s-augment').checked;
  s.base = select('s-base').value as BaseName;
  s.optimizer = select('s-optimizer').value as OptimizerName;
  s.schedule = select('s-schedule').value as ScheduleName;
  s.earlyStopping = input('s-early').checked ? Number(input('s-patience').value) : 0;
  if (input('s-ft').checked) s.fineTune = { at: Number(input('s-ft-at').value), epochs: Number(input('s-ft-epochs').value), lr: Number(input('s-ft-lr').value) };
  return s;
}

/**
 * The fine-tuning fields: given values, or the defaults (from the start of the base's last block,
 * at a tenth of the learning rate). The defaults follow the base and rate until the box is ticked.
 */
function fineTuneDefaults(ft?: TrainSettings['fineTune']): void {
  input('s-ft-at').max = String(BASES[select('s-base').value as BaseName].layers - 1);
  input('s-ft-at').value = String(ft?.at ?? BASES[select('s-base').value as BaseName].fineTuneAt);
  input('s-ft-lr').value = String(ft?.lr ?? Number(input('s-lr').value) / 10);
  if (ft) input('s-ft-epochs').value = String(ft.epochs);
}

/** The chosen base's top, freeze range and weights hint. */
function showBase(): void {
  const base = select('s-base').value as BaseName;
  const info = BASES[base];
  input('s-frozen').max = String(info.layers);
  $('base-top').textContent = `top: ${info.top}; ${base === 'vgg16' ? 'images scaled by 1/255 (the reference program)' : `images through ${info.builder}'s preprocess_input; Keras's transfer-learning guide freezes the whole base`}`;
  $('freeze-hint').textContent = base === 'vgg16'
    ? 'Layers before the first trainable one run forward only: no gradients, no stored activations. The reference program freezes 15 (blocks 1–4).'
    : `Layers before the first trainable one run forward only (a frozen BatchNormalization uses its moving statistics, Keras's inference mode). Keras's transfer-learning guide freezes all ${info.layers}; unfreezing the last blocks fine-tunes them (use a low learning rate). Blocks are grouped: a box freezes everything up to the end of its block.`;
  showKerasFile(base);
  // SmallCNN's own starting weights: pretrained in this page (the other bases have ImageNet's)
  $('pretrain-choice').hidden = base !== 'small_cnn';
  if (base !== 'small_cnn' && weightsKind() === 'pretrain') (document.querySelector('input[name=weights][value=random]') as HTMLInputElement).checked = true;
}

// A new base starts from its defaults (the whole base frozen for MobileNetV2 and ResNet50).
select('s-base').addEventListener('change', () => {
  showBase();
  const info = BASES[select('s-base').value as BaseName];
  input('s-frozen').value = String(info.frozen);
  // SmallCNN comes with the CLI demo's recipe (32x32, Adam 0.01) and its pretraining as weights
  if (info.recipe) {
    input('s-height').value = String(info.recipe.height);
    input('s-width').value = String(info.recipe.width);
    select('s-optimizer').value = info.recipe.optimizer ?? 'sgd';
    input('s-lr').value = String(info.recipe.learningRate);
  }
  if (!info.imagenet) (document.querySelector('input[name=weights][value=pretrain]') as HTMLInputElement).checked = true;
  renderLayers();
});
// Each optimizer starts from Keras's default learning rate (SGD 0.01, the others 0.001).
select('s-optimizer').addEventListener('change', () => {
  input('s-lr').value = String(DEFAULT_LEARNING_RATES[select('s-optimizer').value as OptimizerName]);
});
// (after the listeners above, which set the base's frozen prefix and the optimizer's rate)
for (const [id, event] of [['s-base', 'change'], ['s-optimizer', 'change'], ['s-lr', 'input']]) {
  $(id).addEventListener(event, () => {
    if (!input('s-ft').checked) fineTuneDefaults();
  });
}

/** The VGG16 layer list with each layer's output shape and parameters at the current input size. */
function renderVgg16Layers(): void {
  const frozen = Number(input('s-frozen').value);
  let h = Number(input('s-height').value) || 32;
  let w = Number(input('s-width').value) || 32;
  let c = 3;
  const list = $('layer-list');
  list.replaceChildren();
  VGG16_LAYERS.forEach((name, i) => {
    let params = 0;
    const conv = /conv(\d)$/.exec(name);
    if (conv) {
      const cout = [64, 128, 256, 512, 512][Number(/block(\d)/.exec(name)![1]) - 1];
      params = 9 * c * cout + cout;
      c = cout;
    } else if (name.endsWith('pool')) {
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    }
    const li = document.createElement('li');
    li.className = i < frozen ? 'frozen' : 'trainable';
    li.innerHTML = `<label><input type="checkbox" ${i < frozen ? 'checked' : ''} data-index="${i}"> ${name} <span class="params">${h}×${w}×${c}${params ? ` · ${params.toLocaleString('en')} params` : ''}</span></label>`;
    list.append(li);
  });
  $('frozen-count').textContent = `${frozen} of ${VGG16_LAYERS.length}${frozen === 15 ? ' (the reference program)' : ''}`;
}

/** A deep base's layers, grouped by block (154 or 175 checkboxes would not be usable). */
interface LayerGroup {
  name: string;
  /** layer indices [start, end) */
  start: number;
  end: number;
  layers: string[];
  params: number;
  shape: number[];
}

/** Keras's block of a layer (block_3_expand -> block_3, conv2_block1_1_conv -> conv2_block1), else the base's stem or its last layers. */
function blockOf(name: string, index: number, afterBlocks: boolean): string {
  const block = /^(block_\d+)_/.exec(name)?.[1] ?? /^(conv\d_block\d+)_/.exec(name)?.[1] ?? /^(expanded_conv)_/.exec(name)?.[1]
    ?? /^(block\d+_(?:conv\d+|pool))/.exec(name)?.[1]; // SmallCNN: each conv with its BatchNormalization and ReLU
  if (block) return block;
  if (index === 0) return name; // the input layer
  return afterBlocks ? 'last layers' : 'stem';
}

const groupCache = new Map<string, LayerGroup[]>();
/** Set while the training model is built: a listing build in between would draw from the same seeded initialiser. */
let buildingModel = false;

/** The base's layer groups at an input size, from the base itself (built once per base and size, random weights). */
async function layerGroups(base: BaseName, height: number, width: number): Promise<LayerGroup[]> {
  const key = `${base}:${height}x${width}`;
  const hit = groupCache.get(key);
  if (hit) return hit;
  const model = await buildBase(base, height, width);
  const groups: LayerGroup[] = [];
  let afterBlocks = false;
  model.layers.forEach((l, i) => {
    const g = blockOf(l.name, i, afterBlocks);
    if (g !== 'stem' && i > 0) afterBlocks = true;
    let last = groups[groups.length - 1];
    if (!last || last.name !== g) {
      last = { name: g, start: i, end: i, layers: [], params: 0, shape: [] };
      groups.push(last);
    }
    last.end = i + 1;
    last.layers.push(l.name);
    last.params += l.countParams();
    last.shape = l.output?.shape ?? [];
  });
  groupCache.set(key, groups);
  return groups;
}

let renderToken = 0;
let renderTimer: ReturnType<typeof setTimeout> | undefined;

function renderLayers(): void {
  const base = select('s-base').value as BaseName;
  if (base === 'vgg16') {
    renderToken++;
    renderVgg16Layers();
    return;
  }
  const frozen = Number(input('s-frozen').value);
  const total = BASES[base].layers;
  $('frozen-count').textContent = `${frozen} of ${total}${frozen === total ? ' (the whole base: Keras\'s transfer-learning default)' : ''}`;
  const h = Math.max(32, Number(input('s-height').value) || 32);
  const w = Math.max(32, Number(input('s-width').value) || 32);
  const token = ++renderToken;
  clearTimeout(renderTimer);
  // Debounced: building ResNet50 to list it takes a moment, and typing a size fires per key.
  renderTimer = setTimeout(() => {
    if (buildingModel) return void (renderTimer = setTimeout(renderLayers, 500));
    layerGroups(base, h, w).then((groups) => {
      if (token !== renderToken) return;
      const list = $('layer-list');
      list.replaceChildren();
      for (const g of groups) {
        const li = document.createElement('li');
        li.value = g.start;
        li.className = `group ${g.end <= frozen ? 'frozen' : 'trainable'}`;
        li.title = g.layers.join(', ');
        const names = g.layers.length > 1 ? ` (${esc(g.layers[0])} … ${esc(g.layers[g.layers.length - 1])})` : g.name === g.layers[0] ? '' : ` (${esc(g.layers[0])})`;
        li.innerHTML = `<label><input type="checkbox" ${g.end <= frozen ? 'checked' : ''} data-index="${g.end - 1}" data-start="${g.start}"> ${esc(g.name)}${names} <span class="params">${g.layers.length} layer${g.layers.length > 1 ? 's' : ''} · ${g.shape.join('×')}${g.params ? ` · ${g.params.toLocaleString('en')} params` : ''}</span></label>`;
        list.append(li);
      }
    }, (e) => fail(e, 'layers'));
  }, groupCache.has(`${base}:${h}x${w}`) ? 0 : 250);
}

// A checkbox freezes everything up to it (or unfreezes from it): freezing is a prefix, as in the reference program.
$('layer-list').addEventListener('change', (e) => {
  const box = e.target as HTMLInputElement;
  const i = Number(box.dataset.index);
  // a block's box: checked freezes through its last layer, unchecked unfreezes from its first
  input('s-frozen').value = String(box.checked ? i + 1 : Number(box.dataset.start ?? i));
  renderLayers();
});
for (const id of ['s-frozen', 's-height', 's-width']) input(id).addEventListener('input', renderLayers);

// ---------------------------------------------------------------- training

const lossChart = new LineChart($('loss-chart') as unknown as SVGSVGElement, 'loss (binary cross-entropy)');
const accChart = new LineChart($('acc-chart') as unknown as SVGSVGElement, 'accuracy', [0, 1]);
for (const chart of [lossChart, accChart]) {
  chart.define('train', { label: 'train (per step)', color: '#9db8e8', width: 1.2 });
  chart.define('trainEpoch', { label: 'train (epoch)', color: '#2f6fdb', dots: true, width: 2 });
  chart.define('val', { label: 'validation', color: '#e07b00', dots: true, width: 2, dashed: true });
}
// The rate each update used (schedule applied, or as a callback set it), and per epoch its last update's.
const lrChart = new LineChart($('lr-chart') as unknown as SVGSVGElement, 'learning rate');
lrChart.define('step', { label: 'per step', color: '#9bc59d', width: 1.2 });
lrChart.define('epoch', { label: 'epoch', color: '#2e7d32', dots: true, width: 2 });
const charts = [lossChart, accChart, lrChart];

interface Run {
  settings: TrainSettings;
  data: DataSet;
  built: Built;
  trainer: Trainer;
  plan: PlanMemory;
  started: number;
  /** on the validation images, after training ends */
  confusion: ConfusionMatrix | null;
  /** while the confusion matrix is computed (predictions wait for it: one model, one queue) */
  evaluating: Promise<ConfusionMatrix> | null;
  /** SmallCNN: the base pretrained here whose weights the model started from (null: other weights) */
  pretrained: PretrainedBase | null;
  /** after the run, the same fine-tuning from a random base (the "for comparison" box) */
  compare: boolean;
  comparison: Comparison | null;
}
let run: Run | null = null;

/** The same fine-tuning from random SmallCNN weights, run after the main run, and both best val_acc. */
interface Comparison {
  state: 'running' | 'done' | 'stopped' | 'failed';
  /** while it trains (Stop stops it) */
  trainer: Trainer | null;
  pretrained: number;
  random: number | null;
  error: string | null;
}

/** Set while pretrainShapes runs (Stop aborts it). */
let pretrainAbort: AbortController | null = null;
/** What the last run's pretraining did (for the status hook): trained now, or taken from the cache. */
interface PretrainReport {
  key: string;
  cached: boolean;
  state: 'running' | 'done' | 'stopped' | 'failed';
  history: Record<string, number[]> | null;
  seconds: number | null;
  error: string | null;
}
let pretrainReport: PretrainReport | null = null;
/** pretrainShapes runs in this page so far (a base from the cache adds none). */
let pretrainings = 0;

function setState(text: string): void {
  $('state').textContent = text;
  const state = run?.trainer.state;
  const comparing = run?.comparison?.state === 'running';
  const busy = state === 'running' || state === 'stopping' || !!run?.evaluating || !!pretrainAbort || comparing;
  $<HTMLButtonElement>('train').disabled = busy || !gpu;
  const stoppable = state === 'running' || (!!pretrainAbort && !pretrainAbort.signal.aborted) || run?.comparison?.trainer?.state === 'running';
  $<HTMLButtonElement>('stop').disabled = !stoppable;
  $<HTMLButtonElement>('resume').disabled = state !== 'paused';
  const trained = !!run && !busy && run.trainer.steps.length > 0;
  $<HTMLButtonElement>('dl-manifest').disabled = !trained;
  $<HTMLButtonElement>('dl-h5').disabled = !trained;
}

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  return s >= 60 ? `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}` : `${s.toFixed(s < 10 ? 1 : 0)} s`;
}

function showMemory(): void {
  if (!run) return;
  const m = memory();
  const p = run.plan;
  $('memory').textContent = `device memory in use: ${fmtBytes(m.numBytes)} in ${m.numBuffers} buffers · plan at batch ${p.batch}: weights ${fmtBytes(p.weights)}, gradients ${fmtBytes(p.gradients)}, momentum ${fmtBytes(p.optimizer)}, activations ${fmtBytes(p.activations)}${p.microBatch < p.batch ? ` · frozen layers in micro-batches of ${p.microBatch}` : ''}`;
}

function onStep(s: StepRecord): void {
  const r = run!;
  const t = r.trainer;
  const per = t.stepsPerEpoch;
  const recent = t.steps.slice(-5);
  const secPerStep = recent.reduce((a, x) => a + x.ms, 0) / recent.length / 1000;
  const left = t.totalEpochs * per - t.steps.length;
  $('progress').textContent = `Epoch ${s.epoch + 1}/${t.totalEpochs} · step ${s.step + 1}/${per} · loss ${s.loss.toFixed(4)} · acc ${s.acc.toFixed(4)} · ${secPerStep.toFixed(2)} s/step · about ${fmtSeconds(left * secPerStep)} left`;
  const bar = $<HTMLProgressElement>('epoch-progress');
  bar.max = t.totalEpochs * per;
  bar.value = t.steps.length;
  lossChart.setPoints('train', t.steps.map((x) => [x.global, x.loss]));
  accChart.setPoints('train', t.steps.map((x) => [x.global, x.acc]));
  lrChart.setPoints('step', t.steps.map((x) => [x.global, x.lr]));
  showMemory();
}

function onEpoch(_e: EpochRecord): void {
  const t = run!.trainer;
  const full = t.epochs.filter((e) => !e.partial || e === t.epochs[t.epochs.length - 1]);
  lossChart.setPoints('trainEpoch', full.map((e) => [e.global, e.loss]));
  accChart.setPoints('trainEpoch', full.map((e) => [e.global, e.acc]));
  lossChart.setPoints('val', full.map((e) => [e.global, e.valLoss]));
  accChart.setPoints('val', full.map((e) => [e.global, e.valAcc]));
  lrChart.setPoints('epoch', full.map((e) => [e.global, e.learningRate]));
  showMemory();
}

function log(text: string): void {
  const pre = $('log');
  pre.textContent += text;
  pre.scrollTop = pre.scrollHeight;
}

async function drive(): Promise<void> {
  const r = run!;
  try {
    const running = r.trainer.run(); // the trainer is 'running' from here: Stop becomes available
    setState('training…');
    const state = await running;
    const last = r.trainer.epochs[r.trainer.epochs.length - 1];
    const summary = last ? ` · last epoch: loss ${last.loss.toFixed(4)}, acc ${last.acc.toFixed(4)}, val_loss ${last.valLoss.toFixed(4)}, val_acc ${last.valAcc.toFixed(4)}` : '';
    if (state === 'done') {
      $('progress').textContent = `Done: ${r.trainer.steps.length} steps in ${fmtSeconds((performance.now() - r.started) / 1000)}${summary}`;
      showEarlyStopping(r);
      r.evaluating = confusionMatrix(r.built.model, r.trainer.test, r.data.classes);
      setState('evaluating on the validation images…');
      try {
        r.confusion = await r.evaluating;
      } finally {
        r.evaluating = null;
      }
      showConfusion(r.confusion);
      showKernels();
      if (r.compare && !r.comparison) await compareWithRandomBase(r);
      setState('done');
    } else {
      $('progress').textContent = `Stopped after step ${r.trainer.stepInEpoch} of epoch ${r.trainer.epoch + 1} (${r.trainer.steps.length} steps in all). Resume continues exactly where it stopped.${summary}`;
      setState('stopped');
    }
  } catch (e) {
    fail(e, 'train');
    setState('failed');
  }
  showMemory();
}

/** Which kernel each layer ran (src/kernels/variants.ts chose them for this adapter and shape). */
function showKernels(): void {
  if (!gpu) return;
  const rows = [...gpu.kernelChoices].map(([layer, choice]) => `${layer.padEnd(24)} ${choice}`);
  $('kernels-list').textContent = rows.join('\n');
  $('kernels-summary').textContent = `Kernels this adapter ran (family ${gpu.kernelFamily}: chosen per adapter and shape; the subgroup kernels need subgroups of 8+ lanes)`;
  // tunerFor is null under a forced family: then nothing was measured
  const active = tunerFor(gpu);
  $('kernel-tuning').textContent = active ? active.summary() : `kernel tuning: off (the URL forces the ${gpu.kernelFamily} family)`;
}

/** What EarlyStopping did: the stop epoch and the epoch whose weights the model now holds (1-based, as Keras prints). */
function showEarlyStopping(r: Run): void {
  const t = r.trainer;
  if (!r.settings.earlyStopping) return;
  const stopped = t.stoppedEpoch !== null ? `Early stopping: val_loss did not improve for ${r.settings.earlyStopping} epoch${r.settings.earlyStopping > 1 ? 's' : ''}, training stopped after epoch ${t.stoppedEpoch + 1} of ${t.totalEpochs}.` : `Early stopping: ran all ${t.totalEpochs} epochs (val_loss kept improving within the patience).`;
  const restored = t.restoredEpoch !== null ? ` Restored the weights of epoch ${t.restoredEpoch + 1} (the best val_loss${Number.isFinite(t.epochs[t.restoredEpoch]?.valLoss) ? `, ${t.epochs[t.restoredEpoch].valLoss.toFixed(4)}` : ''}); the confusion matrix, downloads and predictions use them.` : '';
  $('early-status').textContent = stopped + restored;
}

const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–');

/** Rows: true class; columns: predicted class; then each class's precision and recall. */
function showConfusion(c: ConfusionMatrix): void {
  const box = $('confusion');
  const head = c.classes.map((k) => `<th>${esc(k)}</th>`).join('');
  const rows = c.classes.map((k, i) => `<tr data-class="${i}"><th>${esc(k)}</th>${c.counts[i].map((n, j) => `<td class="${i === j ? 'hit' : ''}" data-true="${i}" data-predicted="${j}">${n}</td>`).join('')}<td data-metric="precision">${pct(c.precision[i])}</td><td data-metric="recall">${pct(c.recall[i])}</td></tr>`).join('');
  box.innerHTML = `<p class="status"><strong>Confusion matrix on the ${c.total} validation images</strong> (accuracy ${pct(c.accuracy)}; rows: the true class, columns: the predicted one; precision: of the images predicted as a class, the share that are it; recall: of a class's images, the share found)</p><table><tr><th>true \\ predicted</th>${head}<th>precision</th><th>recall</th></tr>${rows}</table>`;
}

// ---------------------------------------------------------------- SmallCNN: pretrained here

const FAMILIES = PRETRAIN_FAMILIES.join(', ');
const fix4 = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(4) : '–');

// the form starts at the CLI demo's pretraining (one source: SHAPE_PRETRAIN_DEFAULTS)
input('pt-images').value = String(SHAPE_PRETRAIN_DEFAULTS.images);
input('pt-val').value = String(SHAPE_PRETRAIN_DEFAULTS.valImages);
input('pt-epochs').value = String(SHAPE_PRETRAIN_DEFAULTS.epochs);

/** The pretraining's size from the form (the size and seed are the fine-tuning's). */
function pretrainSize(): { images: number; valImages: number; epochs: number } {
  return { images: Number(input('pt-images').value), valImages: Number(input('pt-val').value), epochs: Number(input('pt-epochs').value) };
}

/**
 * SmallCNN pretrained on the four other shape families at the run's size and seed: the base kept
 * from an earlier run with the same settings, else pretrained now with its progress shown (epoch
 * lines with val_acc) before fine-tuning starts. Null when stopped (nothing is kept then).
 */
async function pretrainHere(settings: TrainSettings): Promise<PretrainedBase | null> {
  const p = shapePretrainSettings(settings, pretrainSize());
  const what = `SmallCNN on ${FAMILIES} (${p.images} generated images, ${p.height}×${p.width}, ${p.epochs} epoch${p.epochs === 1 ? '' : 's'}, Adam lr ${p.lr}, seed ${p.seed})`;
  const status = $('pretrain-status');
  const hit = cachedPretrainedBase(p);
  if (hit) {
    pretrainReport = { key: hit.key, cached: true, state: 'done', history: hit.history.history, seconds: hit.seconds, error: null };
    status.textContent = `Using the base pretrained earlier in this page: ${what}; val_acc ${fix4(hit.valAcc)} on ${hit.settings.valImages} held-out images of the four families (chance 0.25). No pretraining this time.`;
    log(`Using the SmallCNN pretrained earlier in this page (${hit.key})\n`);
    return hit;
  }
  const report: PretrainReport = { key: shapePretrainKey(p), cached: false, state: 'running', history: null, seconds: null, error: null };
  pretrainReport = report;
  const lines = [`Pretraining ${what}, then fine-tuning it frozen:`];
  const show = () => (status.textContent = lines.join('\n'));
  show();
  const steps = Math.ceil(p.images / p.batch);
  const bar = $<HTMLProgressElement>('epoch-progress');
  let epoch = 0;
  let step = 0;
  const ctl = new AbortController();
  pretrainAbort = ctl;
  buildingModel = true; // it builds a seeded SmallCNN: no layer listing in between
  setState('pretraining…');
  log(`== Pretraining ${what} ==\n`);
  // pretrainShapes draws its images in one synchronous stretch (seconds for thousands): say so, and
  // let the browser paint that before it starts
  $('progress').textContent = `Drawing ${p.images + p.valImages} pretraining images (the page may not respond for a few seconds)…`;
  await new Promise((ok) => setTimeout(ok, 20)); // a timer, not requestAnimationFrame: that never fires in a background tab
  try {
    const { base } = await pretrainedBase(p, {
      verbose: 1,
      sink: (text) => log(text),
      signal: ctl.signal,
      onImages: (done, total) => {
        $('progress').textContent = `Drawing the pretraining images: ${done} of ${total}`;
        bar.max = total;
        bar.value = done;
      },
      callbacks: [{
        onEpochBegin: (e) => {
          epoch = e;
          step = 0;
        },
        onBatchEnd: (_s, logs) => {
          step++;
          $('progress').textContent = `Pretraining: epoch ${epoch + 1}/${p.epochs} · step ${step}/${steps} · loss ${fix4(logs.loss)} · acc ${fix4(logs.acc)}`;
          bar.max = p.epochs * steps;
          bar.value = epoch * steps + step;
        },
        onEpochEnd: (e, logs) => {
          lines.push(`pretraining epoch ${e + 1}/${p.epochs}: loss ${fix4(logs.loss)} · acc ${fix4(logs.acc)} · val_loss ${fix4(logs.val_loss)} · val_acc ${fix4(logs.val_acc)} (chance 0.25)`);
          show();
        },
      }],
    });
    pretrainings++;
    Object.assign(report, { state: 'done', history: base.history.history, seconds: base.seconds });
    lines.push(`Pretrained in ${fmtSeconds(base.seconds)}: val_acc ${fix4(base.valAcc)} on ${p.valImages} held-out images of the four families (chance 0.25); kept in memory for this page.`);
    show();
    return base;
  } catch (e) {
    if (ctl.signal.aborted) {
      report.state = 'stopped';
      lines.push('Stopped during pretraining: nothing was kept; Train pretrains again.');
      show();
      $('progress').textContent = 'Stopped during pretraining.';
      return null;
    }
    report.state = 'failed';
    report.error = errorText(e);
    throw e;
  } finally {
    pretrainAbort = null;
    buildingModel = false;
  }
}

const bestValAcc = (t: Trainer) => Math.max(...t.epochs.map((e) => e.valAcc).filter(Number.isFinite));

/** The share of the largest class among the validation images: what always guessing it scores. */
function chanceOf(data: DataSet): number {
  const counts = Object.values(countImages(data.test));
  const total = counts.reduce((a, n) => a + n, 0);
  return total ? Math.round((1000 * Math.max(...counts)) / total) / 1000 : 0.5;
}

/**
 * After the main run: the same fine-tuning (settings, data order, augmentation, seeds, the top's
 * initial weights) from random SmallCNN weights, frozen as well, so the difference in val_acc is
 * what pretraining put into the base. Its model is disposed afterwards; the main run's stays.
 */
async function compareWithRandomBase(r: Run): Promise<void> {
  const cmp: Comparison = { state: 'running', trainer: null, pretrained: bestValAcc(r.trainer), random: null, error: null };
  r.comparison = cmp;
  const s = r.settings;
  setState('comparing: fine-tuning a random base…');
  $('compare').textContent = 'Comparison: the same fine-tuning from random SmallCNN weights (frozen)…';
  log('\n== Comparison: the same fine-tuning from random SmallCNN weights (frozen) ==\n');
  let built: Built | null = null;
  let flows: Awaited<ReturnType<typeof makeFlows>> | null = null;
  try {
    flows = await makeFlows(r.data, s);
    buildingModel = true;
    try {
      built = await buildModel(s, null, { stepsPerEpoch: flows.train.length });
    } finally {
      buildingModel = false;
    }
    const earlyStopping = s.earlyStopping ? new EarlyStopping({ monitor: 'val_loss', patience: s.earlyStopping, restoreBestWeights: true, verbose: 1, print: (line) => log(`${line}\n`), warn: (line) => log(`${line}\n`) }) : null;
    const secondPhase: SecondPhase | null = s.fineTune ? { from: s.epochs, enter: (model) => enterFineTuning(model, s) } : null;
    const trainer: Trainer = new Trainer(built.model, flows.train, flows.test, totalEpochsOf(s), {
      onLog: log,
      onStep: (st) => {
        $('compare').textContent = `Comparison: fine-tuning the random base: epoch ${st.epoch + 1}/${trainer.totalEpochs} · step ${st.step + 1}/${trainer.stepsPerEpoch} · loss ${fix4(st.loss)} · acc ${fix4(st.acc)}`;
      },
    }, { earlyStopping, secondPhase });
    cmp.trainer = trainer;
    const running = trainer.run(); // 'running' from here: Stop becomes available
    setState('comparing: fine-tuning a random base…');
    const state = await running;
    cmp.random = bestValAcc(trainer);
    cmp.state = state === 'done' ? 'done' : 'stopped';
  } catch (e) {
    cmp.state = 'failed';
    cmp.error = errorText(e);
    fail(e, 'compare');
  } finally {
    cmp.trainer = null;
    await built?.model.dispose();
    await flows?.train.close();
    await flows?.test.close();
  }
  showComparison(r, cmp);
}

/** The two results as the CLI's demo prints them, and why they differ. */
function showComparison(r: Run, cmp: Comparison): void {
  const box = $('compare');
  if (cmp.state === 'failed') {
    box.textContent = 'Comparison failed (see the notice above).';
    return;
  }
  const random = cmp.random !== null && Number.isFinite(cmp.random) ? fix4(cmp.random) : '– (no epoch finished)';
  const stopped = cmp.state === 'stopped' ? ' (stopped before the end)' : '';
  box.innerHTML = `<p data-line="pretrained"><strong>pretrained base</strong> (SmallCNN pretrained here on ${esc(FAMILIES)}): best val_acc ${fix4(cmp.pretrained)}</p>` +
    `<p data-line="random"><strong>random base</strong> (the same SmallCNN with random weights, frozen): best val_acc ${random} (chance ${chanceOf(r.data)})${stopped}</p>` +
    '<p class="hint">Why: only the new top trains, so it can use only what the frozen base computes; pretraining on other shapes taught the base outline, corner and texture features that carry over to new shapes, while random features carry little, so the random base stays near chance.</p>';
}

async function startTraining(): Promise<void> {
  clearNotice('train');
  clearNotice('microbatch');
  clearNotice('compare');
  pretrainReport = null;
  const settings = readSettings();
  const problems = checkSettings(settings);
  if (problems.length) throw new Error(problems.join('; '));
  const g = await gpuReady;
  if (!g) throw new Error('no WebGPU adapter (see the notice above)');
  const data = currentData();
  $<HTMLButtonElement>('train').disabled = true;
  setState('preparing…');
  // SmallCNN's own option: pretrained in this page (after the old run is gone: one model at a time)
  const pretrainAsked = baseOf(settings) === 'small_cnn' && weightsKind() === 'pretrain';
  const w = pretrainAsked ? null : await currentWeights();
  if (run) {
    await run.built.model.dispose();
    await run.trainer.train.close();
    await run.trainer.test.close();
    run = null;
  }
  $('log').textContent = '';
  $('early-status').textContent = '';
  $('pretrain-status').textContent = '';
  $('compare').replaceChildren();
  $('confusion').replaceChildren();
  let pretrained: PretrainedBase | null = null;
  if (pretrainAsked) {
    pretrained = await pretrainHere(settings);
    if (!pretrained) return setState('stopped');
  }
  const flows = await makeFlows(data, settings, (line) => log(`${line}\n`));
  buildingModel = true;
  let built: Built;
  // the kernel list shows this run's layers, not those of earlier runs on the same device
  gpu?.kernelChoices.clear();
  try {
    built = await buildModel(settings, pretrained?.weights ?? w, { stepsPerEpoch: flows.train.length });
  } finally {
    buildingModel = false;
  }
  if (w) $('weights-status').textContent += built.weightsInto === 'base' ? ` Loaded into the ${BASES[baseOf(settings)].builder} base.` : ' Loaded into the whole model (a fine-tuned export).';
  if (pretrained) $('weights-status').textContent = `The SmallCNN pretrained here on ${FAMILIES} (val_acc ${fix4(pretrained.valAcc)} on those) went into the base by layer name; fine-tuning it ${settings.frozen >= BASES.small_cnn.layers ? 'frozen' : `with its first ${settings.frozen} layers frozen`}.`;
  // ?maxBinding=<bytes> pretends the adapter's binding limit is that small: it shows (and tests)
  // micro-batching on any device.
  const pretend = Number(new URLSearchParams(location.search).get('maxBinding'));
  if (pretend > 0) built.model.maxBindingOverride = pretend;
  const plan = built.model.memory(settings.batchSize);
  if (plan.microBatch < plan.batch) {
    notice('warn', `<strong>Micro-batching:</strong> at batch ${plan.batch} and ${settings.height}×${settings.width}, a frozen layer's activations exceed this adapter's storage binding limit (${fmtBytes(pretend > 0 ? pretend : g.limits.maxStorageBufferBindingSize)}${pretend > 0 ? ', set by ?maxBinding' : ''}), so the frozen layers run ${plan.microBatch} images at a time. Results are the same, steps are a little slower; a smaller batch or input size avoids it.`, 'microbatch');
  }
  // Keras's EarlyStopping; its messages go to the log beside fit's progress text
  const earlyStopping = settings.earlyStopping ? new EarlyStopping({ monitor: 'val_loss', patience: settings.earlyStopping, restoreBestWeights: true, verbose: 1, print: (line) => log(`${line}\n`), warn: (line) => log(`${line}\n`) }) : null;
  const ft = settings.fineTune;
  const secondPhase: SecondPhase | null = ft ? {
    from: settings.epochs,
    enter: (model) => {
      enterFineTuning(model, settings);
      const at = built.model.layers[ft.at]?.name ?? String(ft.at);
      log(`Fine-tuning: the base's layers from ${ft.at} (${at}) on unfrozen, its BatchNormalization in inference mode; a new ${settings.optimizer ?? 'sgd'} at lr ${ft.lr}; epochs ${settings.epochs + 1}-${totalEpochsOf(settings)}\n`);
      for (const chart of charts) chart.mark(settings.epochs * trainer.stepsPerEpoch, 'fine-tuning');
    },
  } : null;
  const trainer = new Trainer(built.model, flows.train, flows.test, totalEpochsOf(settings), { onStep, onEpoch, onLog: log }, { earlyStopping, secondPhase });
  run = { settings, data, built, trainer, plan, started: performance.now(), confusion: null, evaluating: null, pretrained, compare: !!pretrained && input('pt-compare').checked, comparison: null };
  for (const chart of charts) {
    chart.clear();
    chart.setXMax(trainer.totalEpochs * trainer.stepsPerEpoch);
  }
  $<HTMLProgressElement>('epoch-progress').value = 0;
  $('predictions').replaceChildren();
  $('progress').textContent = `Compiling kernels and starting: ${flows.train.samples} training images, ${trainer.stepsPerEpoch} steps per epoch…`;
  showMemory();
  await drive();
}

$('train').addEventListener('click', () => {
  startTraining().catch((e) => {
    fail(e, 'train');
    setState(run ? run.trainer.state : 'idle');
  });
});
$('stop').addEventListener('click', () => {
  if (pretrainAbort) {
    pretrainAbort.abort(new Error('stopped'));
    return setState('stopping the pretraining after this step…');
  }
  const cmp = run?.comparison?.trainer;
  if (cmp?.state === 'running') {
    cmp.stop(); // the comparison ends there (its result says so); the main run is already done
    return setState('stopping the comparison after this step…');
  }
  run?.trainer.stop();
  setState('stopping after this step…');
});
$('resume').addEventListener('click', () => {
  if (!run) return;
  clearNotice('train');
  void drive();
});

// ---------------------------------------------------------------- using the model

function download(data: BlobPart, name: string, type: string): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

$('dl-manifest').addEventListener('click', async () => {
  try {
    const { manifest, data } = await exportWeights(run!.built.model);
    download(JSON.stringify(manifest, null, 1), 'manifest.json', 'application/json');
    download(data, manifest.dataFile, 'application/octet-stream');
  } catch (e) {
    fail(e);
  }
});
$('dl-h5').addEventListener('click', async () => {
  try {
    download((await modelWeightsH5(run!.built.model)) as Uint8Array<ArrayBuffer>, `${baseOf(run!.settings)}_finetuned.weights.h5`, 'application/x-hdf5');
  } catch (e) {
    fail(e);
  }
});

async function predict(files: File[]): Promise<void> {
  if (!run || run.trainer.state === 'running' || run.trainer.state === 'stopping') {
    throw new Error(run ? 'wait until training stops (or press Stop) before trying images' : 'train a model first');
  }
  if (run.comparison?.state === 'running') throw new Error('wait until the comparison run ends (or press Stop) before trying images');
  await run.evaluating?.catch(() => undefined); // its failure is shown where it happened
  const { settings, data, built } = run;
  for (const file of files) {
    const card = document.createElement('div');
    card.className = 'prediction';
    card.append(await thumbnail(file));
    try {
      const x = await imageInput(file, settings);
      const [p] = await built.model.predict(x, { batchSize: 1 });
      const cls = p >= 0.5 ? data.classes[1] : data.classes[0];
      const prob = p >= 0.5 ? p : 1 - p;
      card.insertAdjacentHTML('beforeend', `<div><strong>${esc(cls)}</strong> ${(prob * 100).toFixed(1)}%</div><div class="bar" title="P(${esc(data.classes[1])}) = ${p.toFixed(4)}"><div style="width:${(p * 100).toFixed(1)}%"></div></div><div class="hint">${esc(file.name)}</div>`);
      card.dataset.probability = String(p);
      card.dataset.predicted = cls;
    } catch (e) {
      card.insertAdjacentHTML('beforeend', `<div class="hint">${esc(file.name)}: ${esc(errorText(e))}</div>`);
    }
    $('predictions').prepend(card);
  }
}
input('pick-predict').addEventListener('change', () => predict(Array.from(input('pick-predict').files ?? [])).catch((e) => fail(e)));
dropZone('drop-predict', (e) => predict(Array.from(e.dataTransfer?.files ?? [])).catch((err) => fail(err)));

// ---------------------------------------------------------------- start

writeSettings(DEFAULT_SETTINGS);
void showData();
setState('idle');

const plainWeights = (layers: LayerWeights[] | null) => layers?.map((l) => ({ layer: l.layer, weights: l.weights.map((w) => ({ name: w.name, shape: w.shape, data: Array.from(w.data) })) })) ?? null;

/**
 * For scripts and the browser test: the run's numbers as the charts show them, and sample images
 * to drop on the predictor (sample images are generated, so a test needs no files).
 */
const api = {
  ready: gpuReady.then((g) => !!g),
  status: () => ({
    state: pretrainAbort ? 'pretraining' : run?.comparison?.state === 'running' ? 'comparing' : run?.evaluating ? 'evaluating' : (run?.trainer.state ?? (pretrainReport?.state === 'failed' ? 'failed' : 'idle')),
    adapter: gpu?.adapter ?? null,
    describe: gpu?.describe() ?? null,
    compat,
    limits: gpu ? { maxComputeInvocationsPerWorkgroup: gpu.limits.maxComputeInvocationsPerWorkgroup, maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize, maxStorageBuffersPerShaderStage: gpu.limits.maxStorageBuffersPerShaderStage } : null,
    settings: run?.settings ?? null,
    steps: run?.trainer.steps ?? [],
    epochs: run?.trainer.epochs ?? [],
    stepsPerEpoch: run?.trainer.stepsPerEpoch ?? 0,
    plan: run?.plan ?? null,
    memory: memory(),
    error: run?.trainer.error?.message ?? pretrainReport?.error ?? null,
    stoppedEpoch: run?.trainer.stoppedEpoch ?? null,
    restoredEpoch: run?.trainer.restoredEpoch ?? null,
    /** the epoch (0-based) the fine-tuning phase began at; null before it (or without one) */
    fineTuneFrom: run?.trainer.fineTuneFrom ?? null,
    confusion: run?.confusion ?? null,
    /** the kernel each layer ran, by layer (conv2d tiled / subgroup, dense tiled / subgroup) */
    kernels: gpu ? Object.fromEntries(gpu.kernelChoices) : {},
    /** the kernel tuner's summary line (null under a forced family: nothing is tuned) */
    kernelTuning: gpu ? tunerFor(gpu)?.summary() ?? null : null,
    notices: Array.from($('notices').children, (n) => n.textContent ?? ''),
    /** SmallCNN pretrained here: the last run's pretraining (cached: taken from memory), and how many ran in this page */
    pretrain: pretrainReport,
    pretrainings,
    /** the random-base comparison after the run (pretrained / random: best val_acc) */
    comparison: run?.comparison ? { state: run.comparison.state, pretrained: run.comparison.pretrained, random: run.comparison.random, error: run.comparison.error } : null,
  }),
  /** The pretrained base the current run started from (null without one), as plain arrays. */
  pretrainedWeights: () => plainWeights(run?.pretrained?.weights.layers ?? null),
  /** The current run's base weights as they are now (read back from the device), as plain arrays. */
  baseWeights: async () => plainWeights(run ? await collectLayerWeights(run.built.base) : null),
  /** A generated sample image (label 0 circles, 1 squares) as a PPM file, for the predictor. */
  sampleFile(label: number, size: number, seed: number): File {
    const img = generateSampleSet({ count: 2, height: size, width: size, seed })[label];
    return new File([encodePpm(img.rgb, size, size) as Uint8Array<ArrayBuffer>], `${img.className}-${seed}.ppm`);
  },
};

(window as unknown as { webgpuFinetune: typeof api }).webgpuFinetune = api;
