/**
 * Small state files replaced whole: the new content goes to a temp file,
 * is renamed over the old one (atomic on POSIX file systems), and, when it
 * must survive a power loss, the temp file is fsynced before the rename and
 * the directory after it (the rename is a change of the directory: without
 * its fsync a power loss can bring the old file back).
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Temp file, (fsync), rename over `file`, (fsync of the directory so the rename itself survives a power loss). */
export function writeAtomically(file: string, text: string, durable: boolean): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  if (durable) fsyncDir(dirname(file));
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
