/**
 * The page's program run in Node on Dawn: the same modules (web/lib), settings, sample data and
 * seeds, so its per-step losses are what the page must report.
 */
import { makeFlows, sampleDataSet, type SampleOptions } from '../web/lib/data.ts';
import { buildModel, imageInput, type WeightsFile } from '../web/lib/program.ts';
import type { TrainSettings } from '../web/lib/settings.ts';
import { EarlyStopping } from '../src/graph/callbacks.ts';
import { setInitSeed } from '../src/graph/layers.ts';
import { VGG16 } from '../src/graph/vgg16.ts';
import { writeKerasH5Bytes } from '../src/io/keras-h5-browser.ts';
import { collectLayerWeights } from '../src/io/model-weights.ts';
import { exportWeights } from '../src/io/weights.ts';
import type { LayerWeights } from '../src/io/weights-manifest.ts';
import { Trainer, type EpochRecord, type StepRecord } from '../web/lib/trainer.ts';

export interface ReferenceRun {
  steps: StepRecord[];
  epochs: EpochRecord[];
  /** P(class 1) for each probe image, after training */
  probes: number[];
  /** EarlyStopping's stop and restored epochs (0-based), null when it did not stop / restore */
  stoppedEpoch: number | null;
  restoredEpoch: number | null;
}

export async function runInNode(settings: TrainSettings, sample: SampleOptions, options: { probes?: Blob[]; weights?: WeightsFile } = {}): Promise<ReferenceRun> {
  const { train, test } = await makeFlows(sampleDataSet(sample), settings);
  const { model } = await buildModel(settings, options.weights ?? null, { stepsPerEpoch: train.length });
  // as the page: EarlyStopping on val_loss with the best weights restored
  const earlyStopping = settings.earlyStopping ? new EarlyStopping({ monitor: 'val_loss', patience: settings.earlyStopping, restoreBestWeights: true }) : null;
  const trainer = new Trainer(model, train, test, settings.epochs, {}, { earlyStopping });
  await trainer.run();
  const out: number[] = [];
  for (const p of options.probes ?? []) out.push((await model.predict(await imageInput(p, settings), { batchSize: 1 }))[0]);
  await model.dispose();
  await train.close();
  await test.close();
  return { steps: trainer.steps, epochs: trainer.epochs, probes: out, stoppedEpoch: trainer.stoppedEpoch, restoredEpoch: trainer.restoredEpoch };
}

/**
 * A VGG16 base with seeded random weights, standing in for ImageNet's (same layers and shapes).
 * The kernels are scaled by sqrt(2) (He's variance for ReLU): activations then keep their scale
 * through the 13 layers, as with trained weights, so the losses move and comparing them means
 * something. (At Keras's glorot scale the signal fades layer by layer, the logits end near 0
 * and every loss sits at ln 2 whatever the arithmetic.)
 */
export async function baseWeights(seed: number): Promise<{ layers: LayerWeights[]; manifest: Uint8Array; bin: Uint8Array; h5: Uint8Array }> {
  setInitSeed(seed);
  const base = await VGG16({ weights: null, includeTop: false, inputShape: [32, 32, 3] });
  for (const layer of base.layers) {
    if (!layer.params.length) continue;
    const [kernel, bias] = await layer.getWeights();
    await layer.setWeights([{ shape: kernel.shape, data: kernel.data.map((v) => v * Math.SQRT2) }, bias]);
  }
  const layers = await collectLayerWeights(base);
  const { manifest, data } = await exportWeights(base);
  const byLayer = new Map(layers.map((l) => [l.layer, l.weights]));
  // Keras's notop file lists every layer, the pools with no weights.
  const h5 = await writeKerasH5Bytes(base.layers.slice(1).map((l) => ({ layer: l.name, weights: byLayer.get(l.name) ?? [] })));
  return { layers, manifest: new TextEncoder().encode(JSON.stringify(manifest)), bin: new Uint8Array(data), h5 };
}
