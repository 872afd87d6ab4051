/**
 * A daemon child run under strace, and its trace read back as events in
 * time order: what was read from and written to an MQTT socket (parsed
 * into packets), what was written to the spool's WAL, every fsync and
 * fdatasync, every rename.
 *
 *   strace -f -ff -ttt -yy -xx -s 65536 -e trace=... -o PREFIX -- node cli.js run ...
 *
 * `-ff` gives one file per thread (no `<unfinished ...>` splits), merged
 * here by their `-ttt` timestamps; `-yy` names each fd (file path, or
 * `TCP:[a:p->b:q]`), `-xx` prints buffers in hex. Fails loudly when strace
 * is missing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export const STRACE = process.env['STRACE'] ?? '/usr/bin/strace';
export const TRACED = 'trace=read,write,writev,pwrite64,fsync,fdatasync,rename,renameat,renameat2,sendmsg,sendto,recvfrom';

/** The wrapper for test/helpers/daemon.ts startDaemon: trace into `prefix`.<tid>. */
export function straceWrapper(prefix: string): string[] {
  return [STRACE, '-f', '-ff', '-ttt', '-yy', '-xx', '-s', '65536', '-e', TRACED, '-o', prefix, '--'];
}

export interface MqttPacket {
  readonly type: number;
  readonly id?: number;
  readonly payload?: Buffer;
}

export type TraceEvent =
  | { readonly t: number; readonly kind: 'mqtt-in' | 'mqtt-out'; readonly fd: string; readonly packets: readonly MqttPacket[] }
  | { readonly t: number; readonly kind: 'file-write'; readonly fd: string; readonly data: Buffer }
  | { readonly t: number; readonly kind: 'sync'; readonly fd: string }
  | { readonly t: number; readonly kind: 'rename'; readonly from: string; readonly to: string };

const LINE = /^(\d+\.\d+) (\w+)\((.*)\) += (-?\d+)/;

/** Reads `prefix`.* and returns the events of the MQTT sockets that `isMqtt` picks, and of files, in time order. */
export function readTrace(prefix: string, isMqtt: (fd: string) => boolean): TraceEvent[] {
  const dir = dirname(prefix);
  const files = readdirSync(dir).filter((f) => f.startsWith(`${basename(prefix)}.`));
  if (files.length === 0) throw new Error(`no trace files ${prefix}.*`);
  const raw: Array<{ t: number; call: string; args: string; ret: number }> = [];
  for (const f of files) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const m = LINE.exec(line);
      if (m) raw.push({ t: Number(m[1]), call: m[2] as string, args: m[3] as string, ret: Number(m[4]) });
    }
  }
  raw.sort((a, b) => a.t - b.t);
  const streams = new Map<string, MqttStream>();
  const stream = (key: string) => {
    let s = streams.get(key);
    if (s === undefined) streams.set(key, (s = new MqttStream()));
    return s;
  };
  const events: TraceEvent[] = [];
  for (const r of raw) {
    if (r.ret < 0) continue;
    // -xx prints a file's path in hex too; a socket as TCP:[a:p->b:q].
    const hexPath = /^\d+<((?:\\x[0-9a-f]{2})+)>/.exec(r.args)?.[1];
    const fd = hexPath !== undefined ? unhex(hexPath).toString() : (/^\d+<(TCP:\[[^\]]*\])>/.exec(r.args)?.[1] ?? '');
    switch (r.call) {
      case 'fsync':
      case 'fdatasync':
        events.push({ t: r.t, kind: 'sync', fd });
        break;
      case 'rename':
      case 'renameat':
      case 'renameat2': {
        const names = [...r.args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((x) => unhex(x[1] as string).toString());
        events.push({ t: r.t, kind: 'rename', from: names[0] ?? '', to: names[1] ?? '' });
        break;
      }
      default: {
        const out = r.call !== 'read' && r.call !== 'recvfrom';
        const data = Buffer.concat([...r.args.matchAll(/"((?:\\x[0-9a-f]{2})*)"/g)].map((x) => unhex(x[1] as string))).subarray(0, r.ret);
        if (r.call === 'read' && data.length === 0) continue;
        if (isMqtt(fd)) events.push({ t: r.t, kind: out ? 'mqtt-out' : 'mqtt-in', fd, packets: stream(`${fd}:${out ? 'out' : 'in'}`).push(data) });
        else if (out && r.call === 'pwrite64') events.push({ t: r.t, kind: 'file-write', fd, data });
      }
    }
  }
  return events;
}

function unhex(s: string): Buffer {
  return Buffer.from(s.replace(/\\x/g, ''), 'hex');
}

/** MQTT 3.1.1 packets of one direction of one connection, split across reads or writes as they come. */
class MqttStream {
  #buf = Buffer.alloc(0);

  push(data: Buffer): MqttPacket[] {
    this.#buf = Buffer.concat([this.#buf, data]);
    const out: MqttPacket[] = [];
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < this.#buf.length && i <= 4; i++) {
        const b = this.#buf[i] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) break;
      }
      if (i >= this.#buf.length || this.#buf.length < i + 1 + len) return out;
      const body = this.#buf.subarray(i + 1, i + 1 + len);
      const type = (this.#buf[0] as number) >> 4;
      const qos = ((this.#buf[0] as number) >> 1) & 3;
      if (type === 3) {
        const topicLen = body.readUInt16BE(0);
        const at = 2 + topicLen;
        out.push(qos > 0 ? { type, id: body.readUInt16BE(at), payload: body.subarray(at + 2) } : { type, payload: body.subarray(at) });
      } else if (type === 4) out.push({ type, id: body.readUInt16BE(0) });
      else out.push({ type });
      this.#buf = this.#buf.subarray(i + 1 + len);
    }
  }
}
