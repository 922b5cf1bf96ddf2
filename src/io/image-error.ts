/** Types shared by the image decoders. */

export type ImageFormat = 'png' | 'jpeg' | 'bmp' | 'pnm';

/** A file that cannot be used as an image; `reason` says why, without the file name. */
export class ImageError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ImageError';
  }
}

export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
}

export interface RgbImage {
  width: number;
  height: number;
  /** height * width * 3 bytes, row-major RGB */
  data: Uint8Array;
}
