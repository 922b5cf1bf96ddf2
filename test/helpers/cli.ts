// Runs the command-line tool as a user does: a child process of bin/webgpu-finetune.mjs.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const BIN = resolve('bin/webgpu-finetune.mjs');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A CLI runner with this environment; `onStdout` sees the output so far (to kill it at the right moment). */
export function cliRunner(env: NodeJS.ProcessEnv): (args: string[], onStdout?: (text: string, child: ChildProcess) => void) => Promise<Run> {
  return (args, onStdout) => new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', rej);
    child.on('exit', (code, signal) => res({ code, signal, stdout, stderr }));
  });
}
