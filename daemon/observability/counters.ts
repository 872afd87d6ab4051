/**
 * Counters kept by the shell, outside the core: input that never became a
 * record, consumer protocol errors, and the gauges of the consumers' send
 * buffers. Labels are bounded sets chosen by the code (source names from
 * config, fixed reasons), never data such as topics.
 */
export class LabeledCounter {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly #values = new Map<string, { labels: readonly string[]; value: number }>();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  inc(labels: readonly string[], by = 1): void {
    const key = labels.join('\u0000');
    const entry = this.#values.get(key);
    if (entry !== undefined) entry.value += by;
    else this.#values.set(key, { labels: [...labels], value: by });
  }

  get(labels: readonly string[]): number {
    return this.#values.get(labels.join('\u0000'))?.value ?? 0;
  }

  entries(): IterableIterator<{ labels: readonly string[]; value: number }> {
    return this.#values.values();
  }
}

/** What one consumer connection holds for its consumer beyond the core's records. */
export interface SendBufferState {
  readonly bufferedBytes: number;
  readonly waitingRecords: number;
  readonly writable: boolean;
}

/** The send buffers of the open consumer connections, read at scrape time. */
export class SendBufferGauges {
  readonly #members = new Set<SendBufferState>();

  add(b: SendBufferState): void {
    this.#members.add(b);
  }

  delete(b: SendBufferState): void {
    this.#members.delete(b);
  }

  totals(): { bytes: number; waitingRecords: number; unwritable: number } {
    let bytes = 0;
    let waitingRecords = 0;
    let unwritable = 0;
    for (const b of this.#members) {
      bytes += b.bufferedBytes;
      waitingRecords += b.waitingRecords;
      if (!b.writable) unwritable++;
    }
    return { bytes, waitingRecords, unwritable };
  }
}

export interface ShellCounters {
  /** spillway_input_rejected_total{source,reason} */
  readonly inputRejected: LabeledCounter;
  /** spillway_consumer_errors_total{code} */
  readonly consumerErrors: LabeledCounter;
  /** spillway_consumer_send_buffer_bytes, _waiting_records, spillway_consumers_unwritable */
  readonly sendBuffers: SendBufferGauges;
}

export function createShellCounters(): ShellCounters {
  return {
    inputRejected: new LabeledCounter('spillway_input_rejected_total', 'Input that never became a record.', ['source', 'reason']),
    consumerErrors: new LabeledCounter('spillway_consumer_errors_total', 'Consumer connections closed with an error, by code.', ['code']),
    sendBuffers: new SendBufferGauges(),
  };
}
