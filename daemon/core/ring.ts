/**
 * A bounded FIFO ring of records, bounded in count (`capacityRecords`) and in
 * payload bytes (`capacityBytes`).
 *
 *     head                      tail = (head + length) & mask
 *      v                          v
 *   [ r3 | r4 | r5 | r6 |    |    ]   slots.length is a power of two
 *
 * Invariants: 0 <= length <= capacityRecords, bytes = sum of sizes held,
 * bytes <= capacityBytes (until a `resize` shrinks the bounds below them). Empty iff length === 0. Slots outside
 * [head, head + length) are `undefined` so evicted records can be collected.
 *
 * The slot array starts small and doubles up to the power of two at or above
 * `capacityRecords`: a stream made for one stray topic does not cost the
 * memory of a full ring, and a busy stream reaches its capacity after a few
 * doublings. The ring never decides what happens to a record that does not
 * fit: `push` hands it back and the caller (the pipeline) applies the
 * stream's `whenFull` policy.
 */
export interface Sized {
  readonly size: number;
}

export type PushResult<T> = { readonly ok: true } | { readonly ok: false; readonly rejected: T };

const INITIAL_SLOTS = 16;

export class Ring<T extends Sized> {
  #capacityRecords: number;
  #capacityBytes: number;
  #slots: Array<T | undefined>;
  #mask: number;
  #head = 0;
  #length = 0;
  #bytes = 0;

  constructor(capacityRecords: number, capacityBytes: number) {
    if (!Number.isInteger(capacityRecords) || capacityRecords < 1) throw new RangeError(`capacityRecords must be a positive integer, got ${capacityRecords}`);
    if (!Number.isInteger(capacityBytes) || capacityBytes < 1) throw new RangeError(`capacityBytes must be a positive integer, got ${capacityBytes}`);
    this.#capacityRecords = capacityRecords;
    this.#capacityBytes = capacityBytes;
    const slots = Math.min(INITIAL_SLOTS, nextPowerOfTwo(capacityRecords));
    this.#slots = new Array<T | undefined>(slots).fill(undefined);
    this.#mask = slots - 1;
  }

  get capacityRecords(): number {
    return this.#capacityRecords;
  }

  get capacityBytes(): number {
    return this.#capacityBytes;
  }

  /**
   * Changes the bounds (config reload). A ring left above its new bounds
   * keeps its items (`overBounds`) and refuses pushes until the caller has
   * shifted enough.
   */
  resize(capacityRecords: number, capacityBytes: number): void {
    this.#capacityRecords = capacityRecords;
    this.#capacityBytes = capacityBytes;
  }

  get length(): number {
    return this.#length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** True when `item` cannot be pushed without removing something first. */
  wouldOverflow(item: T): boolean {
    return this.wouldOverflowBy(item.size);
  }

  /** True while a `resize` left it above its bounds. */
  get overBounds(): boolean {
    return this.#length > this.#capacityRecords || this.#bytes > this.#capacityBytes;
  }

  /** True when an item of `size` bytes cannot be pushed without removing something first. */
  wouldOverflowBy(size: number): boolean {
    return this.#length >= this.#capacityRecords || this.#bytes + size > this.#capacityBytes;
  }

  push(item: T): PushResult<T> {
    if (this.wouldOverflow(item)) return { ok: false, rejected: item };
    if (this.#length === this.#slots.length) this.#grow();
    this.#slots[(this.#head + this.#length) & this.#mask] = item;
    this.#length++;
    this.#bytes += item.size;
    return PUSHED;
  }

  peek(): T | undefined {
    return this.#length === 0 ? undefined : this.#slots[this.#head];
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#slots[this.#head];
    this.#slots[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    this.#length--;
    if (item !== undefined) this.#bytes -= item.size;
    return item;
  }

  /** Items oldest first; the ring must not change while iterating. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#length; i++) yield this.#slots[(this.#head + i) & this.#mask] as T;
  }

  #grow(): void {
    const old = this.#slots;
    const next = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (let i = 0; i < this.#length; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#slots = next;
    this.#mask = next.length - 1;
    this.#head = 0;
  }
}

const PUSHED = { ok: true } as const;

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
