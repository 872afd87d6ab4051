/**
 * A stand-in for PID 1's notification socket: a unix datagram socket bound
 * by a python3 child (Node cannot bind one), which prints one JSON line per
 * datagram with the sender's PID (SO_PASSCRED) and closes any file
 * descriptors passed with it, as PID 1 does (that completes systemd-notify's
 * BARRIER=1). Fails loudly when python3 is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { waitFor } from './wait.js';

const RECEIVER = String.raw`
import array, json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"bound": sys.argv[1]}), flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(16 * 4) + socket.CMSG_SPACE(12))
    pid = None
    fds = []
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = int.from_bytes(payload[0:4], sys.byteorder)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(payload[: len(payload) - len(payload) % a.itemsize])
            fds = list(a)
    for fd in fds:
        os.close(fd)
    print(json.dumps({"pid": pid, "fds": len(fds), "text": data.decode("utf-8", "replace")}), flush=True)
`;
import { makeTempDir } from './tmp.js';

export interface Datagram {
  /** The sender's PID as the kernel reports it. */
  readonly pid: number | null;
  /** KEY=VALUE pairs, in order. */
  readonly fields: ReadonlyArray<readonly [string, string]>;
  readonly text: string;
}

export interface NotifySocket {
  /** The value for NOTIFY_SOCKET. */
  readonly path: string;
  /** Every datagram but systemd-notify's BARRIER=1, in arrival order. */
  readonly messages: Datagram[];
  /** The messages that carry `key` (e.g. 'WATCHDOG'). */
  with(key: string): Datagram[];
  close(): Promise<void>;
}

export function requirePython(): string {
  const probe = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(`python3 is required to bind a unix datagram notify socket (apt-get install python3): ${probe.error?.message ?? probe.stderr}`);
  }
  return 'python3';
}

export function field(d: Datagram, key: string): string | undefined {
  return d.fields.find(([k]) => k === key)?.[1];
}

export async function openNotifySocket(): Promise<NotifySocket> {
  const python = requirePython();
  const dir = await makeTempDir('notify');
  const path = join(dir, 'notify.sock');
  const child: ChildProcess = spawn(python, ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: Datagram[] = [];
  let bound = false;
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const m = JSON.parse(line) as { bound?: string; pid?: number | null; text?: string };
    if (m.bound !== undefined) {
      bound = true;
      return;
    }
    const text = m.text ?? '';
    if (text === 'BARRIER=1') return;
    const fields = text.split('\n').map((kv) => {
      const at = kv.indexOf('=');
      return [kv.slice(0, at), kv.slice(at + 1)] as const;
    });
    messages.push({ pid: m.pid ?? null, fields, text });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`notify socket receiver exited ${child.exitCode}: ${stderr}`);
    return bound;
  }, 'the notify socket to be bound');
  return {
    path,
    messages,
    with: (key) => messages.filter((d) => d.fields.some(([k]) => k === key)),
    close: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
