/**
 * What a benchmark reads about another process from /proc (Linux only): CPU
 * time (utime + stime of /proc/<pid>/stat) and a reset of its peak RSS
 * (`echo 5 > /proc/<pid>/clear_refs`, so VmHWM then tells the peak of one
 * round, not of the process's life; needs the process's owner or root).
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100; // the Linux default
  }
})();

/** utime + stime of a process, in seconds (resolution 1 / CLK_TCK). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // fields 14 and 15
}

/** Resets VmHWM to the current RSS. */
export async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}
