/** Cuts a buffer into chunks at the given offsets (modulo its length, sorted): for chunking tests. */
export function chunked(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let pos = 0;
  for (const cut of [...at, bytes.length]) {
    chunks.push(bytes.subarray(pos, cut));
    pos = cut;
  }
  return chunks;
}
