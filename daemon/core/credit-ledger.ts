/**
 * Credit per consumer (docs/PROTOCOL.md, guarantees 1 and 6).
 *
 * Invariants, for every consumer:
 *   sent <= granted                  credit is never exceeded
 *   0 <= credit <= maxCredit         outstanding credit is clamped, not refused
 *   inflight <= maxCredit            a consumer that never acks holds at most
 *                                    maxCredit records, however often it grants
 */
export interface ConsumerState {
  readonly id: number;
  readonly name: string;
  /** Outstanding credit: records it may still be sent. */
  credit: number;
  /** Records sent to it and not yet acked, nacked or taken back. */
  inflight: number;
  /** Sum of every grant, before clamping. */
  granted: number;
  /** Deliveries sent, first and repeated. */
  sent: number;
  /** False while its transport cannot take more (send buffer above its bound): it is sent nothing. */
  writable: boolean;
  /** Deficit round robin: records this consumer is owed from earlier rounds (fair shares by credit). */
  deficit: number;
  /** The latest place (`Rec.sentAs`) among its deliveries that it acked or nacked: it read up to there (inflight.ts, `failedByRecord`). */
  answeredUpTo: number;
}

export class CreditLedger {
  readonly #consumers = new Map<number, ConsumerState>();
  #maxCredit: number;

  constructor(maxCredit: number) {
    this.#maxCredit = maxCredit;
  }

  get size(): number {
    return this.#consumers.size;
  }

  set maxCredit(value: number) {
    this.#maxCredit = value;
  }

  get maxCredit(): number {
    return this.#maxCredit;
  }

  add(id: number, name: string): ConsumerState {
    if (this.#consumers.has(id)) throw new Error(`consumer ${id} is already connected`);
    const state: ConsumerState = { id, name, credit: 0, inflight: 0, granted: 0, sent: 0, writable: true, deficit: 0, answeredUpTo: 0 };
    this.#consumers.set(id, state);
    return state;
  }

  get(id: number): ConsumerState | undefined {
    return this.#consumers.get(id);
  }

  remove(id: number): ConsumerState | undefined {
    const state = this.#consumers.get(id);
    this.#consumers.delete(id);
    return state;
  }

  grant(state: ConsumerState, n: number): void {
    state.granted += n;
    state.credit = Math.min(state.credit + n, this.#maxCredit);
  }

  /** How many records may be sent to this consumer now. */
  available(state: ConsumerState): number {
    if (!state.writable) return 0;
    return Math.max(0, Math.min(state.credit, this.#maxCredit - state.inflight));
  }

  /** Consumers that may be sent something now, in connection order. */
  eligible(): ConsumerState[] {
    const out: ConsumerState[] = [];
    for (const c of this.#consumers.values()) {
      if (this.available(c) > 0) out.push(c);
    }
    return out;
  }

  consume(state: ConsumerState): void {
    state.credit--;
    state.sent++;
    state.inflight++;
  }

  values(): IterableIterator<ConsumerState> {
    return this.#consumers.values();
  }
}
