/**
 * The daemon child of test/helpers/daemon.ts with the environment systemd
 * gives a `Type=notify` service (NOTIFY_SOCKET, WATCHDOG_USEC), passed
 * through `env` as the wrapper so node keeps its own PID.
 */
import { startDaemon, type DaemonProcess, type StartOptions } from './daemon.js';

export function startNotifyingDaemon(config: Record<string, unknown>, env: Readonly<Record<string, string>>, opts: StartOptions = {}): Promise<DaemonProcess> {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return startDaemon(config, { ...opts, wrapper: ['env', ...assignments, ...(opts.wrapper ?? [])] });
}
