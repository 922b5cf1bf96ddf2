// Small progress helpers for waits whose length is unknown (loading, converting): an elapsed-time
// ticker on a terminal, a start line and an end line otherwise.

export function fmtDuration(seconds: number): string {
  if (seconds < 59.95) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Runs `work`, showing `label` with the elapsed time while it runs; returns its result. */
export async function withTicker<T>(label: string, work: () => Promise<T>, stream: NodeJS.WriteStream = process.stderr): Promise<T> {
  const t0 = Date.now();
  const spin = ['|', '/', '-', '\\'];
  let k = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  if (stream.isTTY) {
    const draw = () => stream.write(`\r${label} ${spin[k++ % 4]} ${fmtDuration((Date.now() - t0) / 1000)}`);
    draw();
    timer = setInterval(draw, 250);
  } else {
    stream.write(`${label}...\n`);
  }
  try {
    const out = await work();
    const done = `${label}: done in ${fmtDuration((Date.now() - t0) / 1000)}`;
    stream.write(stream.isTTY ? `\r${done}   \n` : `${done}\n`);
    return out;
  } catch (e) {
    stream.write(stream.isTTY ? '\n' : `${label}: failed\n`);
    throw e;
  } finally {
    clearInterval(timer);
  }
}

/** A counting bar for work of known size (writing files): redrawn on a terminal, silent otherwise. */
export function countBar(label: string, stream: NodeJS.WriteStream = process.stderr): (done: number, total: number) => void {
  let last = 0;
  return (done, total) => {
    if (!stream.isTTY) return;
    const now = Date.now();
    if (done < total && now - last < 100) return;
    last = now;
    const width = 30;
    const filled = Math.floor((done / total) * width);
    stream.write(`\r${label} [${'='.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
    if (done === total) stream.write('\n');
  };
}
