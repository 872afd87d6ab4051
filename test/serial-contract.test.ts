/**
 * The serial driver contract (test/helpers/serial-contract.ts) on both kinds
 * of hardware: node-serialport's mock binding, injected as the source's
 * binding, and a real pseudo-terminal pair from socat. Each rig only moves
 * bytes and pulls the plug; the expectations are the suite's.
 */
import { createRequire } from 'node:module';
// The package's ESM entry has no types beside it; its CommonJS entry does.
import type { MockBindingInterface, MockPortBinding } from '@serialport/binding-mock' with { 'resolution-mode': 'require' };
import type { SerialPort } from 'serialport';
import { closePeer, openPeer, ptyLinks, removePtyDir, startSocat, writeAll, type Socat } from './helpers/pty.js';
import { serialDriverContract, type SerialRig } from './helpers/serial-contract.js';

const { MockBinding } = createRequire(import.meta.url)('@serialport/binding-mock') as { MockBinding: MockBindingInterface };

let mockPorts = 0;

/** The mock binding: the device is a MockBinding port; unplugging fails its pending read with EIO, as the kernel does. */
async function mockRig(): Promise<SerialRig> {
  const path = `/dev/ttySPILLWAY${mockPorts++}`;
  const present = new Set<string>();
  let opened: MockPortBinding | undefined;
  const plug = () => {
    MockBinding.createPort(path, { echo: false, record: false });
    present.add(path);
  };
  plug();
  return {
    path,
    deps: {
      binding: { ...MockBinding, open: async (options) => (opened = await MockBinding.open(options)) },
      deviceExists: (p) => present.has(p),
    },
    connect: async () => undefined,
    send: async (data) => (opened as MockPortBinding).emitData(data),
    unplug: async () => {
      present.delete(path);
      MockBinding.reset();
      const read = (opened as unknown as { pendingRead: ((err: Error) => void) | null }).pendingRead;
      read?.(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5 }));
    },
    replug: async () => plug(),
    close: async () => {
      present.clear();
      MockBinding.reset();
    },
  };
}

/** A real pty pair: the source opens one end, the test writes the other; stopping socat is the unplug. */
async function ptyRig(): Promise<SerialRig> {
  const links = await ptyLinks();
  let socat: Socat | undefined = await startSocat(links);
  let peer: SerialPort | undefined;
  return {
    path: links.device,
    deps: {},
    connect: async () => {
      if (peer?.isOpen) await closePeer(peer);
      peer = await openPeer(links.peer);
    },
    send: (data) => writeAll(peer as SerialPort, data),
    unplug: async () => {
      if (peer !== undefined) await closePeer(peer);
      await socat?.stop();
      socat = undefined;
    },
    replug: async () => {
      socat = await startSocat(links);
    },
    close: async () => {
      if (peer !== undefined) await closePeer(peer).catch(() => undefined);
      await socat?.stop();
      await removePtyDir(links);
    },
  };
}

serialDriverContract('mock binding', mockRig);
serialDriverContract('socat pty', ptyRig);
