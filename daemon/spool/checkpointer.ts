/**
 * Asks the checkpoint worker for a WAL checkpoint, one at a time. The worker
 * is started on first use, so a daemon that never spills never pays for it.
 */
import { Worker } from 'node:worker_threads';

export interface CheckpointResult {
  readonly ok: boolean;
  readonly busy?: number;
  readonly log?: number;
  readonly checkpointed?: number;
  readonly error?: string;
}

export class Checkpointer {
  readonly #file: string;
  #worker: Worker | undefined;
  #running: Promise<CheckpointResult> | undefined;

  constructor(file: string) {
    this.#file = file;
  }

  get running(): boolean {
    return this.#running !== undefined;
  }

  /** Runs a checkpoint; a call while one runs shares its result. */
  checkpoint(mode: 'PASSIVE' | 'TRUNCATE' = 'PASSIVE'): Promise<CheckpointResult> {
    if (this.#running !== undefined) return this.#running;
    const worker = (this.#worker ??= this.#start());
    this.#running = new Promise<CheckpointResult>((resolve) => {
      const done = (result: CheckpointResult) => {
        worker.off('message', done);
        worker.off('error', failed);
        worker.off('exit', exited);
        this.#running = undefined;
        resolve(result);
      };
      const failed = (err: Error) => {
        this.#worker = undefined;
        done({ ok: false, error: err.message });
      };
      // A worker that ends without an error (terminated, process.exit) would otherwise leave
      // this checkpoint, and every later one that shares it, pending for ever.
      const exited = (code: number) => failed(new Error(`checkpoint worker exited (code ${code})`));
      worker.on('message', done);
      worker.once('error', failed);
      worker.once('exit', exited);
      worker.postMessage(mode);
    });
    return this.#running;
  }

  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    if (w !== undefined) await w.terminate();
  }

  #start(): Worker {
    const w = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: { file: this.#file } });
    w.unref();
    return w;
  }
}
