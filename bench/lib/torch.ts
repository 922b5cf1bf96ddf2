// PyTorch as a rival engine for bench/train-step.ts: drives bench/lib/torch_step.py, a
// long-lived python process, over JSON lines on stdin/stdout (one command outstanding at a time).
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const DEFAULT_PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./torch_step.py', import.meta.url));
/** How much of the child's stderr to keep for error messages. */
const STDERR_TAIL = 4000;

/** Whether `python` can import torch (scripts/install-torch.sh installs it for /usr/bin/python3). */
export function torchAvailable(python = DEFAULT_PYTHON): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import torch'], { timeout: 120_000 }, (err) => resolve(!err));
  });
}

export interface TorchInit {
  height: number;
  width: number;
  batch: number;
  threads?: number;
  /** 'cpu' or 'cuda[:N]'. */
  device?: string;
  /** TF32 matmuls and convolutions on NVIDIA Ampere and newer (cuda only). */
  tf32?: boolean;
  seed?: number;
}

export interface TorchInfo {
  ok: true;
  torch: string;
  python: string;
  device: string;
  device_name: string;
  threads: number;
  interop_threads: number;
  /** torch.backends.mkldnn.is_available(): oneDNN convolutions on the CPU. */
  mkldnn: boolean;
  cuda: string | null;
  cudnn: number | null;
  tf32: boolean;
  /** OMP_WAIT_POLICY the process ran with (TorchStep sets PASSIVE unless the caller's environment has one). */
  omp_wait_policy: string | null;
  input: number[];
  trainable_params: number;
  frozen_params: number;
}

export interface TorchStepResult {
  /** Wall time of forward, loss, backward and SGD step inside the python process. */
  seconds: number;
  loss: number;
}

type Reply = Record<string, unknown> & { error?: string; traceback?: string };

/** One torch_step.py process. Commands are serialised: a second one while one waits throws. */
export class TorchStep {
  private readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';
  private exited: string | null = null;
  private pending: { resolve: (r: Reply) => void; reject: (e: Error) => void; cmd: string } | null = null;
  private readonly closed: Promise<void>;

  constructor(readonly python = DEFAULT_PYTHON, script = SCRIPT) {
    // OpenMP threads that spin while waiting (libgomp's default) lose whole time slices when the
    // cores are shared: on 2 busy cores a 2-thread step took 0.8 s spinning and 0.13 s passive.
    // Passive waits also keep torch's idle threads off the cores while the other engines run.
    // An OMP_WAIT_POLICY already set in the environment wins.
    const env = { ...process.env, PYTHONUNBUFFERED: '1', OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' };
    this.child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (s: string) => {
      this.stderr = (this.stderr + s).slice(-STDERR_TAIL);
    });
    const lines = createInterface({ input: this.child.stdout });
    lines.on('line', (line) => this.onLine(line));
    // A write to a process that has just died errors on stdin; 'exit' reports it to the caller.
    this.child.stdin.on('error', () => {});
    this.closed = new Promise((resolve) => {
      const done = (why: string) => {
        if (this.exited) return;
        this.exited = why;
        this.pending?.reject(this.died(`while waiting for '${this.pending.cmd}'`));
        this.pending = null;
        resolve();
      };
      this.child.on('error', (e) => done(`could not run ${python}: ${e.message}`));
      // 'close', not 'exit': it comes after stderr has been read to the end, so the tail is whole.
      this.child.on('close', (code, signal) => done(signal ? `killed by ${signal}` : `exited with code ${code}`));
    });
  }

  private died(when: string): Error {
    const tail = this.stderr.trim();
    return new Error(`torch_step.py (${this.python}) ${this.exited} ${when}${tail ? `; its stderr ends:\n${tail}` : ' (no stderr)'}`);
  }

  private onLine(line: string): void {
    const p = this.pending;
    if (!p) {
      this.stderr = (this.stderr + `[unexpected stdout] ${line}\n`).slice(-STDERR_TAIL);
      return;
    }
    this.pending = null;
    let reply: Reply;
    try {
      reply = JSON.parse(line) as Reply;
    } catch {
      p.reject(new Error(`torch_step.py answered '${p.cmd}' with a line that is not JSON: ${line.slice(0, 200)}`));
      return;
    }
    if (typeof reply.error === 'string') {
      const where = reply.traceback ? `\n${reply.traceback.trim()}` : '';
      p.reject(new Error(`torch_step.py '${p.cmd}' failed: ${reply.error}${where}`));
    } else p.resolve(reply);
  }

  private send(msg: { cmd: string } & Record<string, unknown>): Promise<Reply> {
    if (this.exited) return Promise.reject(this.died(`before '${msg.cmd}' was sent`));
    if (this.pending) return Promise.reject(new Error(`torch_step.py: '${msg.cmd}' sent while '${this.pending.cmd}' is still waiting (one command at a time)`));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject, cmd: msg.cmd };
      this.child.stdin.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /** Builds the model for one size (replacing any earlier one) and fixes its random batch. */
  async init(opts: TorchInit): Promise<TorchInfo> {
    return (await this.send({ cmd: 'init', threads: 2, device: 'cpu', tf32: false, ...opts })) as unknown as TorchInfo;
  }

  async step(): Promise<TorchStepResult> {
    const r = await this.send({ cmd: 'step' });
    if (typeof r.seconds !== 'number') throw new Error(`torch_step.py 'step' reply has no seconds: ${JSON.stringify(r).slice(0, 200)}`);
    return r as unknown as TorchStepResult;
  }

  /** Asks the process to exit; kills it if it has not within `graceMs`. */
  async quit(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    this.send({ cmd: 'quit' }).catch(() => {});
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.closed;
    clearTimeout(timer);
  }
}
