// keras.applications.<model>.preprocess_input for channels-last float images (NHWC, or HWC, or
// any run of RGB pixels), computed in float32 as Keras does on a float32 array. Returns a new
// array; the input is left as it is (Keras writes over a float input array).

function checkRgb(x: Float32Array, what: string): void {
  if (!(x instanceof Float32Array)) throw new Error(`${what}.preprocessInput expects a Float32Array of RGB pixels (values 0..255), got ${Object.prototype.toString.call(x)}`);
  if (x.length % 3 !== 0) throw new Error(`${what}.preprocessInput expects channels-last images with 3 channels, got ${x.length} values (not a multiple of 3)`);
}

/** imagenet_utils.preprocess_input mode 'tf': x / 127.5 - 1 (values -1..1). */
function tfMode(x: Float32Array, what: string): Float32Array {
  checkRgb(x, what);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.fround(x[i] / 127.5) - 1;
  return out;
}

const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68].map(Math.fround);

/** imagenet_utils.preprocess_input mode 'caffe': RGB -> BGR, then minus the ImageNet mean [103.939, 116.779, 123.68] (BGR), no scaling. */
function caffeMode(x: Float32Array, what: string): Float32Array {
  checkRgb(x, what);
  const out = new Float32Array(x.length);
  const [b, g, r] = CAFFE_MEAN_BGR;
  for (let i = 0; i < x.length; i += 3) {
    out[i] = x[i + 2] - b;
    out[i + 1] = x[i + 1] - g;
    out[i + 2] = x[i] - r;
  }
  return out;
}

/** keras.applications.mobilenet_v2: preprocess_input (mode 'tf'). */
export const mobilenetV2 = {
  preprocessInput: (x: Float32Array): Float32Array => tfMode(x, 'mobilenetV2'),
};

/** keras.applications.resnet50: preprocess_input (mode 'caffe'). */
export const resnet50 = {
  preprocessInput: (x: Float32Array): Float32Array => caffeMode(x, 'resnet50'),
};

/**
 * keras.applications.vgg16: preprocess_input (mode 'caffe'). (The reference program does not use
 * it: it rescales by 1/255 instead, which stays our VGG16 default.)
 */
export const vgg16 = {
  preprocessInput: (x: Float32Array): Float32Array => caffeMode(x, 'vgg16'),
};
