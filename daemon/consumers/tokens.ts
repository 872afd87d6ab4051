/**
 * Consumer tokens compared in constant time: both sides are hashed to the
 * same length first, and every configured token is compared, so neither the
 * length nor the position of a match leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function tokenMatches(given: string, allowed: readonly string[]): boolean {
  const g = digest(given);
  let ok = false;
  for (const token of allowed) ok = timingSafeEqual(g, digest(token)) || ok;
  return ok;
}
