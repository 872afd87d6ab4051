import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkFiles, permits, serviceReader, type Reader } from './file-checks.js';
import { makeTempDir } from '../test/helpers/tmp.js';
import { makeTestCerts, type TestCerts } from '../test/helpers/upstream-certs.js';

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
  let certs: TestCerts;
  before(async () => {
    dir = await makeTempDir('files');
    certs = await makeTestCerts();
  });
  after(async () => {
    await rm(certs.dir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  });

  // The files belong to whoever runs the test; the reader is another uid, so only the "other" bits apply to it.
  it('names a key the service user cannot read, a directory it cannot enter, and a dataDir it cannot write', async () => {
    const owner = `${process.getuid?.()}:${process.getgid?.()}`;
    await copyFile(certs.serverKey, join(dir, 'server.key'));
    await chmod(join(dir, 'server.key'), 0o600);
    await copyFile(certs.serverCert, join(dir, 'server.pem'));
    await chmod(join(dir, 'server.pem'), 0o644);
    await mkdir(join(dir, 'private'), { mode: 0o700 });
    await copyFile(certs.caCert, join(dir, 'private', 'ca.pem'));
    await chmod(join(dir, 'private', 'ca.pem'), 0o644);
    await mkdir(join(dir, 'state'), { mode: 0o755 });
    await chmod(dir, 0o755);
    const config = {
      dataDir: join(dir, 'state'),
      consumers: { listen: { tls: { cert: 'server.pem', key: 'server.key' } }, dial: [{ tls: { ca: 'private/ca.pem' } }] },
    };
    assert.deepEqual(await checkFiles(config, dir, spillway), [
      `consumers.listen.tls.key: "server.key" is not allowed: the service user spillway (uid 990) cannot read ${dir}/server.key (mode 0600, owner ${owner}): expected a file it can read (chgrp spillway and chmod g+r, for a key)`,
      `consumers.dial[0].tls.ca: "private/ca.pem" is not allowed: the service user spillway (uid 990) cannot reach ${dir}/private/ca.pem: the directory ${dir}/private (mode 0700, owner ${owner}) does not let it in`,
      `dataDir: ${JSON.stringify(join(dir, 'state'))} is not allowed: the service user spillway (uid 990) cannot write in it (mode 0755, owner ${owner}); expected a directory it owns, such as systemd's StateDirectory=`,
    ]);
    await chmod(join(dir, 'server.key'), 0o604);
    await chmod(join(dir, 'private'), 0o701);
    await chmod(join(dir, 'state'), 0o703);
    assert.deepEqual(await checkFiles(config, dir, spillway), []);
  });

  it('refuses a certificate with a key that is not its own, and a CA bundle with a certificate that does not parse', async () => {
    const ca = await readFile(certs.caCert, 'latin1');
    await writeFile(join(dir, 'bundle.pem'), ca + ca.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!!!!!!!!!!!!!!!!!'));
    const config = { upstreams: { mqtt: [{ tls: { ca: 'bundle.pem', cert: certs.clientCert, key: certs.serverKey } }] } };
    const problems = await checkFiles(config, dir, { label: 'root', uid: 0, gid: 0, groups: [0] });
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0] ?? '', new RegExp(`^upstreams\\.mqtt\\[0\\]\\.tls\\.ca: "bundle.pem" is not allowed: ${dir}/bundle.pem: certificate 2 of 2 cannot be parsed \\(.+\\): expected PEM certificates$`));
    assert.match(problems[1] ?? '', /^upstreams\.mqtt\[0\]\.tls\.cert: ".+client\.crt" is not allowed: with key ".+server\.key" it is not a usable PEM certificate and matching private key \(.*key values mismatch\): expected the certificate and its own unencrypted key$/);
    const good = { upstreams: { mqtt: [{ tls: { ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey } }] } };
    assert.deepEqual(await checkFiles(good, dir, { label: 'root', uid: 0, gid: 0, groups: [0] }), []);
    // OpenSSL's TRUSTED CERTIFICATE form (a CA with trust settings), as some distributions ship CA files.
    execFileSync('openssl', ['x509', '-in', certs.caCert, '-trustout', '-addtrust', 'serverAuth', '-out', join(dir, 'trusted.pem')]);
    assert.match(await readFile(join(dir, 'trusted.pem'), 'latin1'), /^-----BEGIN TRUSTED CERTIFICATE-----/);
    assert.deepEqual(await checkFiles({ upstreams: { mqtt: [{ tls: { ca: 'trusted.pem' } }] } }, dir, { label: 'root', uid: 0, gid: 0, groups: [0] }), []);
  });
});
