/**
 * `csv`: each data row becomes a JSON object, `{"column": value, ...}`.
 * Values are numbers when the field is an unquoted JSON number that a double
 * holds exactly enough (`21.5`, `-3`, `1e3`; not `007` or a 20-digit id),
 * else strings. Quoted fields (`"a,b"`, `""` for a quote) stay strings.
 *
 * Column names come from `columns`, else from the header: the first row seen
 * by this framer. With a header, a later row equal to it (a device that
 * reboots prints it again) is skipped. A row with the wrong number of fields
 * or an unterminated quote is `malformed`.
 */
import type { FramingConfig } from '../config.js';
import type { FrameSink } from './framer.js';
import { TextLineFramer } from './text-line-framer.js';

export type CsvFraming = Extract<FramingConfig, { type: 'csv' }>;

export interface CsvField {
  readonly text: string;
  readonly quoted: boolean;
}

export class CsvFramer extends TextLineFramer {
  readonly #hasHeader: boolean;
  readonly #delimiter: string;
  #columns: readonly string[] | undefined;
  /** The header row as received, once seen. */
  #headerRow: string | undefined;

  constructor(cfg: CsvFraming, sink: FrameSink) {
    super(Buffer.from('\n'), cfg.maxFrameBytes, 'utf8', sink);
    this.#hasHeader = cfg.header;
    this.#delimiter = cfg.delimiter;
    this.#columns = cfg.columns;
  }

  /** A row of text; `reset` drops an unfinished row, the header stays learned. */
  protected text(bytes: Buffer): void {
    const row = bytes.toString('utf8');
    if (this.#hasHeader && row === this.#headerRow) return;
    const fields = splitCsvRow(row, this.#delimiter);
    if (fields === undefined) return this.sink.onReject('malformed');
    if (this.#hasHeader && this.#headerRow === undefined) {
      this.#headerRow = row;
      this.#columns ??= fields.map((f) => f.text.trim());
      return;
    }
    const columns = this.#columns;
    if (columns === undefined || fields.length !== columns.length) return this.sink.onReject('malformed');
    // fromEntries makes own properties even for a column named `__proto__`.
    const record = Object.fromEntries(columns.map((name, i) => [name, csvValue(fields[i] as CsvField)]));
    this.sink.onFrame(Buffer.from(JSON.stringify(record), 'utf8'));
  }
}

/** Splits one row (RFC 4180 quoting, no line breaks inside fields); `undefined` if a quote is not closed properly. */
export function splitCsvRow(row: string, delimiter: string): CsvField[] | undefined {
  const fields: CsvField[] = [];
  let pos = 0;
  for (;;) {
    if (row[pos] === '"') {
      let text = '';
      pos++;
      for (;;) {
        const quote = row.indexOf('"', pos);
        if (quote < 0) return undefined;
        text += row.slice(pos, quote);
        pos = quote + 1;
        if (row[pos] !== '"') break;
        text += '"';
        pos++;
      }
      fields.push({ text, quoted: true });
      if (pos === row.length) return fields;
      if (row[pos] !== delimiter) return undefined;
      pos++;
    } else {
      const next = row.indexOf(delimiter, pos);
      const end = next < 0 ? row.length : next;
      fields.push({ text: row.slice(pos, end), quoted: false });
      if (next < 0) return fields;
      pos = next + 1;
    }
  }
}

const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

export function csvValue(field: CsvField): string | number {
  if (field.quoted) return field.text;
  const text = field.text.trim();
  if (!JSON_NUMBER.test(text)) return text;
  const n = Number(text);
  const integral = !/[.eE]/.test(text);
  // Keep as text what a double would change: huge integers (ids), overflow.
  if (!Number.isFinite(n) || (integral && !Number.isSafeInteger(n))) return text;
  return n;
}
