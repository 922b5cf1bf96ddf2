/**
 * The page: pick data and weights, set the reference program's knobs, train with live curves,
 * stop and resume, download the weights and try the model on dropped images. The program itself
 * (data flows, model, trainer) lives in web/lib and is platform-free; this file is the DOM.
 */
import './shaders.ts';
import { acquireGpu, fmtBytes, type Gpu } from '../src/gpu/index.ts';
import { memory, setGpu } from '../src/graph/backend.ts';
import type { PlanMemory } from '../src/graph/plan.ts';
import { decodeRgb } from '../src/io/image-decode.ts';
import { readPngBrowser } from '../src/io/png-browser.ts';
import { exportWeights } from '../src/io/weights.ts';
import { LineChart } from './chart.ts';
import { countImages, dataSetFromFiles, encodePpm, makeFlows, sampleDataSet, type DataSet, type NamedBlob, type SampleOptions } from './lib/data.ts';
import { buildModel, imageInput, KERAS_IMAGENET_URL, modelWeightsH5, weightsFromFiles, weightsFromUrl, type Built, type WeightsFile } from './lib/program.ts';
import { checkSettings, DEFAULT_SETTINGS, VGG16_LAYERS, type TrainSettings } from './lib/settings.ts';
import { Trainer, type EpochRecord, type StepRecord } from './lib/trainer.ts';
import { generateSampleSet } from '../src/io/sample-data.ts';

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
  const g = await acquireGpu({ gpu: nav.gpu, featureLevel: compat ? 'compatibility' : 'core' });
  setGpu(g);
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

function weightsKind(): 'random' | 'url' | 'files' {
  return (document.querySelector('input[name=weights]:checked') as HTMLInputElement).value as 'random' | 'url' | 'files';
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
kerasLink.href = KERAS_IMAGENET_URL;
kerasLink.addEventListener('click', (e) => {
  // Fill the URL field rather than navigate: the page tries the download itself.
  e.preventDefault();
  input('weights-url').value = KERAS_IMAGENET_URL;
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

function writeSettings(s: TrainSettings): void {
  for (const [k, id] of FIELDS) input(id).value = String(s[k]);
  input('s-augment').checked = s.augment;
  renderLayers();
}

function readSettings(): TrainSettings {
  const s = { ...DEFAULT_SETTINGS };
  for (const [k, id] of FIELDS) (s as Record<string, unknown>)[k] = Number(input(id).value);
  s.augment = input('s-augment').checked;
  return s;
}

/** The VGG16 layer list with each layer's output shape and parameters at the current input size. */
function renderLayers(): void {
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

// A checkbox freezes everything up to it (or unfreezes from it): freezing is a prefix, as in the reference program.
$('layer-list').addEventListener('change', (e) => {
  const box = e.target as HTMLInputElement;
  const i = Number(box.dataset.index);
  input('s-frozen').value = String(box.checked ? i + 1 : i);
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

interface Run {
  settings: TrainSettings;
  data: DataSet;
  built: Built;
  trainer: Trainer;
  plan: PlanMemory;
  started: number;
}
let run: Run | null = null;

function setState(text: string): void {
  $('state').textContent = text;
  const state = run?.trainer.state;
  const busy = state === 'running' || state === 'stopping';
  $<HTMLButtonElement>('train').disabled = busy || !gpu;
  $<HTMLButtonElement>('stop').disabled = state !== 'running';
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
  showMemory();
}

function onEpoch(_e: EpochRecord): void {
  const t = run!.trainer;
  const full = t.epochs.filter((e) => !e.partial || e === t.epochs[t.epochs.length - 1]);
  lossChart.setPoints('trainEpoch', full.map((e) => [e.global, e.loss]));
  accChart.setPoints('trainEpoch', full.map((e) => [e.global, e.acc]));
  lossChart.setPoints('val', full.map((e) => [e.global, e.valLoss]));
  accChart.setPoints('val', full.map((e) => [e.global, e.valAcc]));
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

async function startTraining(): Promise<void> {
  clearNotice('train');
  clearNotice('microbatch');
  const settings = readSettings();
  const problems = checkSettings(settings);
  if (problems.length) throw new Error(problems.join('; '));
  const g = await gpuReady;
  if (!g) throw new Error('no WebGPU adapter (see the notice above)');
  const data = currentData();
  $<HTMLButtonElement>('train').disabled = true;
  setState('preparing…');
  const w = await currentWeights();
  if (run) {
    await run.built.model.dispose();
    await run.trainer.train.close();
    await run.trainer.test.close();
    run = null;
  }
  $('log').textContent = '';
  const flows = await makeFlows(data, settings, (line) => log(`${line}\n`));
  const built = await buildModel(settings, w);
  if (w) $('weights-status').textContent += built.weightsInto === 'base' ? ' Loaded into the VGG16 base.' : ' Loaded into the whole model (a fine-tuned export).';
  // ?maxBinding=<bytes> pretends the adapter's binding limit is that small: it shows (and tests)
  // micro-batching on any device.
  const pretend = Number(new URLSearchParams(location.search).get('maxBinding'));
  if (pretend > 0) built.model.maxBindingOverride = pretend;
  const plan = built.model.memory(settings.batchSize);
  if (plan.microBatch < plan.batch) {
    notice('warn', `<strong>Micro-batching:</strong> at batch ${plan.batch} and ${settings.height}×${settings.width}, a frozen layer's activations exceed this adapter's storage binding limit (${fmtBytes(pretend > 0 ? pretend : g.limits.maxStorageBufferBindingSize)}${pretend > 0 ? ', set by ?maxBinding' : ''}), so the frozen layers run ${plan.microBatch} images at a time. Results are the same, steps are a little slower; a smaller batch or input size avoids it.`, 'microbatch');
  }
  const trainer = new Trainer(built.model, flows.train, flows.test, settings.epochs, { onStep, onEpoch, onLog: log });
  run = { settings, data, built, trainer, plan, started: performance.now() };
  for (const chart of [lossChart, accChart]) {
    chart.clear();
    chart.setXMax(settings.epochs * trainer.stepsPerEpoch);
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
    download((await modelWeightsH5(run!.built.model)) as Uint8Array<ArrayBuffer>, 'vgg16_finetuned.weights.h5', 'application/x-hdf5');
  } catch (e) {
    fail(e);
  }
});

async function predict(files: File[]): Promise<void> {
  if (!run || run.trainer.state === 'running' || run.trainer.state === 'stopping') {
    throw new Error(run ? 'wait until training stops (or press Stop) before trying images' : 'train a model first');
  }
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

/**
 * For scripts and the browser test: the run's numbers as the charts show them, and sample images
 * to drop on the predictor (sample images are generated, so a test needs no files).
 */
const api = {
  ready: gpuReady.then((g) => !!g),
  status: () => ({
    state: run?.trainer.state ?? 'idle',
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
    error: run?.trainer.error?.message ?? null,
    notices: Array.from($('notices').children, (n) => n.textContent ?? ''),
  }),
  /** A generated sample image (label 0 circles, 1 squares) as a PPM file, for the predictor. */
  sampleFile(label: number, size: number, seed: number): File {
    const img = generateSampleSet({ count: 2, height: size, width: size, seed })[label];
    return new File([encodePpm(img.rgb, size, size) as Uint8Array<ArrayBuffer>], `${img.className}-${seed}.ppm`);
  },
};

(window as unknown as { webgpuFinetune: typeof api }).webgpuFinetune = api;
