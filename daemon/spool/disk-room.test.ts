/**
 * The disk reserve, exactly: when the free space is looked at (a statfs
 * per write would cost every spill), what a write is counted as, and when a
 * write is refused. The real statfs against a full tmpfs is
 * test/spool-full-disk.test.ts's.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DiskRoom } from './disk-room.js';
import { SpoolFullError } from './spool-port.js';

const KiB = 1024;
const PER_COMMIT = 8 * KiB + 48;

/** A file system whose free space the test sets; counts the looks. */
function disk(freeBytes: number) {
  const d = { free: freeBytes, looks: 0, dirs: [] as string[], fail: undefined as Error | undefined };
  const free = (dir: string) => {
    d.looks++;
    d.dirs.push(dir);
    if (d.fail !== undefined) throw d.fail;
    return d.free;
  };
  return { d, free };
}

describe('the disk reserve', () => {
  it('looks at the free space again after writes that may have taken a quarter of the room above the reserve', () => {
    const { d, free } = disk(1_000 * KiB + 400 * KiB);
    const room = new DiskRoom('/spool-dir', 1_000 * KiB, free);
    room.beforeWrite(0); // the first write looks: 400 KiB above the reserve, the next look after 100 KiB counted
    assert.deepEqual([d.looks, d.dirs], [1, ['/spool-dir']]);
    // Each write counts 2 x payload + one commit's frames: 10 KiB payload = 28,720 bytes. Three make 86,160 < 102,400.
    for (let i = 0; i < 3; i++) room.beforeWrite(10 * KiB);
    assert.equal(d.looks, 1);
    room.beforeWrite(10 * KiB); // 114,880 >= 102,400
    assert.equal(d.looks, 2);
  });

  it('looks at least every 256 KiB counted, however much room there is', () => {
    const { d, free } = disk(100 * 1024 * KiB);
    const room = new DiskRoom('/d', KiB, free);
    room.beforeWrite(0);
    const payload = 128 * KiB - PER_COMMIT / 2; // counts 256 KiB exactly
    room.beforeWrite(payload - 1);
    assert.equal(d.looks, 1, 'two bytes short of 256 KiB');
    room.beforeWrite(0);
    assert.equal(d.looks, 2);
    // Exactly 256 KiB counted since the last look: look.
    room.beforeWrite(payload);
    assert.equal(d.looks, 3);
  });

  it('refuses a write below the reserve, and looks again at every write until there is room', () => {
    const { d, free } = disk(2 * KiB);
    const room = new DiskRoom('/d', 4 * KiB, free);
    assert.throws(() => room.beforeWrite(1), (err: unknown) => err instanceof SpoolFullError && /2048 bytes free, below the reserve of 4096/.test((err as Error).message));
    assert.throws(() => room.beforeWrite(1), SpoolFullError);
    assert.equal(d.looks, 2);
    d.free = 4 * KiB; // exactly the reserve: room
    room.beforeWrite(1);
    assert.equal(d.looks, 3);
    // No room above the reserve: the next write looks again.
    room.beforeWrite(0);
    assert.equal(d.looks, 4);
  });

  it('refuses a write when the free space cannot be seen, and says why', () => {
    const { d, free } = disk(0);
    d.fail = new Error('EACCES: statfs');
    const room = new DiskRoom('/d', KiB, free);
    assert.throws(() => room.beforeWrite(1), (err: unknown) => err instanceof SpoolFullError && /cannot see the free space of \/d: EACCES: statfs/.test((err as Error).message) && err.cause === d.fail);
    assert.equal(room.hasRoom(), false);
  });

  it('hasRoom: at or above the reserve, looked at each time', () => {
    const { d, free } = disk(KiB);
    const room = new DiskRoom('/d', KiB, free);
    assert.equal(room.hasRoom(), true);
    d.free = KiB - 1;
    assert.equal(room.hasRoom(), false);
    assert.equal(d.looks, 2);
  });

  it('a reserve of 0 never looks and never refuses', () => {
    const { d, free } = disk(0);
    const room = new DiskRoom('/d', 0, free);
    room.beforeWrite(1e9);
    assert.equal(room.hasRoom(), true);
    assert.equal(d.looks, 0);
  });

  it('on the real file system: a directory with room has it, a huge reserve refuses', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-room-'));
    try {
      assert.equal(new DiskRoom(dir, 1, undefined).hasRoom(), true);
      assert.throws(() => new DiskRoom(dir, Number.MAX_SAFE_INTEGER).beforeWrite(1), SpoolFullError);
      assert.equal(new DiskRoom(join(dir, 'gone'), 1).hasRoom(), false, 'a directory that is not there cannot be seen');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
