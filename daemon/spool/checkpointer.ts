/**
 * Asks the checkpoint worker for a WAL checkpoint, one at a time. The worker
 * is started on first use, so a daemon that never spills never pays for it.
 * A worker that dies (an error thrown in it, an exit) fails the checkpoint
 * it was running, and the next checkpoint starts a new one.
 */
import { Worker } from 'node:worker_threads';

export type CheckpointMode = 'PASSIVE' | 'TRUNCATE';

export interface CheckpointResult {
  readonly ok: boolean;
  /** 1 when the checkpoint could not finish (TRUNCATE: a reader or writer held it off). */
  readonly busy?: number;
  /** Frames in the WAL, and of them copied to the database: equal when the WAL is fully checkpointed. */
  readonly log?: number;
  readonly checkpointed?: number;
  readonly error?: string;
}

export interface CheckpointerOptions {
  /** The worker script (tests give one that dies); default checkpoint-worker.js beside this file. */
  readonly workerUrl?: URL;
}

export class Checkpointer {
  readonly #file: string;
  readonly #workerUrl: URL;
  #worker: Worker | undefined;
  #running: Promise<CheckpointResult> | undefined;
  /** Workers started so far (a dead one is replaced on the next checkpoint). */
  started = 0;

  constructor(file: string, opts: CheckpointerOptions = {}) {
    this.#file = file;
    this.#workerUrl = opts.workerUrl ?? new URL('./checkpoint-worker.js', import.meta.url);
  }

  get running(): boolean {
    return this.#running !== undefined;
  }

  /** A worker is started and has not died (the next checkpoint uses it rather than starting one). */
  get alive(): boolean {
    return this.#worker !== undefined;
  }

  /** Runs a checkpoint; a call while one runs shares its result. Never rejects. */
  checkpoint(mode: CheckpointMode): Promise<CheckpointResult> {
    if (this.#running !== undefined) return this.#running;
    const worker = (this.#worker ??= this.#start());
    this.#running = new Promise<CheckpointResult>((resolve) => {
      const done = (result: CheckpointResult) => {
        worker.unref();
        worker.off('message', done);
        worker.off('error', failed);
        worker.off('exit', exited);
        this.#running = undefined;
        resolve(result);
      };
      // No other worker can have started while this one runs a checkpoint (a call meanwhile shares it).
      const dead = () => {
        this.#worker = undefined;
      };
      const failed = (err: Error) => {
        dead();
        done({ ok: false, error: `checkpoint worker failed: ${err.message}` });
      };
      const exited = (code: number) => {
        dead();
        done({ ok: false, error: `checkpoint worker exited (code ${code})` });
      };
      worker.on('message', done);
      worker.once('error', failed);
      worker.once('exit', exited);
      // Held while it runs (a process waiting for a checkpoint must not exit under it), not while idle.
      worker.ref();
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
    const w = new Worker(this.#workerUrl, { workerData: { file: this.#file } });
    this.started++;
    // An exit between checkpoints: forget the worker, the next checkpoint starts another.
    w.once('exit', () => {
      if (this.#worker === w) this.#worker = undefined;
    });
    // An error between checkpoints ends the worker too; without a listener it would throw in the daemon.
    w.on('error', () => undefined);
    w.unref();
    return w;
  }
}
