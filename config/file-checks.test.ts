import assert from 'node:assert/strict';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkFiles, permits, serviceReader, type Reader } from './file-checks.js';
import { makeTempDir } from '../test/helpers/tmp.js';

const spillway: Reader = { label: 'the service user spillway (uid 990)', uid: 990, gid: 990, groups: [990, 20] };

describe('permits', () => {
  it('reads the owner, group or other bits that apply to the reader', () => {
    assert.equal(permits({ mode: 0o100600, uid: 0, gid: 0 }, spillway, 4), false);
    assert.equal(permits({ mode: 0o100600, uid: 990, gid: 0 }, spillway, 4), true);
    assert.equal(permits({ mode: 0o100640, uid: 0, gid: 990 }, spillway, 4), true);
    assert.equal(permits({ mode: 0o100640, uid: 0, gid: 20 }, spillway, 4), true, 'a supplementary group');
    assert.equal(permits({ mode: 0o100604, uid: 0, gid: 0 }, spillway, 4), true);
    assert.equal(permits({ mode: 0o040700, uid: 0, gid: 0 }, spillway, 1), false);
    assert.equal(permits({ mode: 0o000000, uid: 5, gid: 5 }, { label: 'root', uid: 0, gid: 0, groups: [0] }, 4), true, 'root reads anything');
  });
});

describe('serviceReader', () => {
  let dir = '';
  before(async () => {
    dir = await makeTempDir('reader');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is the spillway user with its groups when root checks and the user exists, else the current user', async () => {
    await writeFile(join(dir, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\nspillway:x:990:991::/var/lib/spillway:/usr/sbin/nologin\n');
    await writeFile(join(dir, 'group'), 'root:x:0:\ndialout:x:20:spillway,pi\nspillway:x:991:\nother:x:5:pi\n');
    const who = serviceReader(join(dir, 'passwd'), join(dir, 'group'));
    if (process.getuid?.() === 0) assert.deepEqual(who, { label: 'the service user spillway (uid 990)', uid: 990, gid: 991, groups: [20, 991] });
    else assert.equal(who.uid, process.getuid?.());
    const nobody = serviceReader(join(dir, 'missing'), join(dir, 'missing'));
    assert.equal(nobody.uid, process.getuid?.());
  });
});

describe('checkFiles', () => {
  let dir = '';
  before(async () => {
    dir = await makeTempDir('files');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // The files belong to whoever runs the test; the reader is another uid, so only the "other" bits apply to it.
  it('names a key the service user cannot read, a directory it cannot enter, and a dataDir it cannot write', async () => {
    const owner = `${process.getuid?.()}:${process.getgid?.()}`;
    await writeFile(join(dir, 'server.key'), 'KEY', { mode: 0o600 });
    await writeFile(join(dir, 'ca.pem'), 'CA', { mode: 0o644 });
    await mkdir(join(dir, 'private'), { mode: 0o700 });
    await writeFile(join(dir, 'private', 'client.pem'), 'CERT', { mode: 0o644 });
    await mkdir(join(dir, 'state'), { mode: 0o755 });
    await chmod(dir, 0o755);
    const config = {
      dataDir: join(dir, 'state'),
      consumers: { listen: { tls: { cert: 'ca.pem', key: 'server.key' } }, dial: [{ tls: { cert: 'private/client.pem' } }] },
    };
    assert.deepEqual(await checkFiles(config, dir, spillway), [
      `consumers.listen.tls.key: "server.key" is not allowed: the service user spillway (uid 990) cannot read ${dir}/server.key (mode 0600, owner ${owner}): expected a file it can read (chgrp spillway and chmod g+r, for a key)`,
      `consumers.dial[0].tls.cert: "private/client.pem" is not allowed: the service user spillway (uid 990) cannot reach ${dir}/private/client.pem: the directory ${dir}/private (mode 0700, owner ${owner}) does not let it in`,
      `dataDir: ${JSON.stringify(join(dir, 'state'))} is not allowed: the service user spillway (uid 990) cannot write in it (mode 0755, owner ${owner}); expected a directory it owns, such as systemd's StateDirectory=`,
    ]);
    await chmod(join(dir, 'server.key'), 0o604);
    await chmod(join(dir, 'private'), 0o701);
    await chmod(join(dir, 'state'), 0o703);
    assert.deepEqual(await checkFiles(config, dir, spillway), []);
  });
});
