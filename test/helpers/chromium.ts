/**
 * Debian's Chromium (/usr/bin/chromium, `apt-get install chromium`) driven by
 * playwright-core (a devDependency: no browser download). Only the few calls
 * the tests use are typed here: the project compiles without DOM types.
 */
export const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Page {
  goto(url: string): Promise<unknown>;
  on(event: 'console', listener: (m: { type(): string; text(): string }) => void): void;
  on(event: 'pageerror', listener: (e: Error) => void): void;
  evaluate(expression: string): Promise<unknown>;
  setViewportSize(size: { width: number; height: number }): Promise<void>;
  screenshot(options: { path?: string; fullPage?: boolean }): Promise<Buffer>;
}
export interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}
interface Chromium {
  launch(options: { executablePath: string; args: string[]; headless: boolean }): Promise<Browser>;
}

export async function launchChromium(): Promise<Browser> {
  const name = 'playwright-core';
  let chromium: Chromium;
  try {
    chromium = ((await import(name)) as { chromium: Chromium }).chromium;
  } catch (err) {
    throw new Error(`the status page tests need playwright-core (a devDependency: npm install) and Debian chromium at ${CHROMIUM}: ${(err as Error).message}`, { cause: err });
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}
