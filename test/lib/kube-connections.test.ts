// reuseConnections: Kubernetes API requests share a kept TLS connection, against an HTTPS server on 127.0.0.1
// that asks for a client certificate (as kube-apiserver does) and records each connection's client.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reuseConnections } from '../../lib/kube-connections.js';
import { type ControlPlaneCerts, createCerts } from '../../local/control-plane/certs.js';

let dir: string;
let certs: ControlPlaneCerts;
let server: Server;
/** The client certificate's common name of each TLS connection the server accepted, in order. */
const connections: string[] = [];
let url: string;
let closeNext = false;

const pem = (path: string) => readFile(path, 'utf8');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dfn-kube-connections-'));
  certs = await createCerts(dir);
  server = createServer(
    {
      key: await pem(certs.servingKey),
      cert: await pem(certs.servingCert),
      ca: await pem(certs.caCert),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      res.setHeader('content-type', 'application/json');
      // As kube-apiserver does when it shuts down: the response says the connection ends with it.
      if (closeNext) res.setHeader('connection', 'close');
      closeNext = false;
      const name = req.url?.split('/').pop();
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
    },
  );
  server.on('secureConnection', (socket: TLSSocket) => {
    connections.push(String(socket.getPeerCertificate().subject?.CN));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** A config for the server above, as client `cert`/`key`. */
async function config(cert: string, key: string): Promise<KubeConfig> {
  const kc = new KubeConfig();
  await load(kc, cert, key);
  return kc;
}

/** (Re)loads `kc` with the client certificate `cert`/`key` (paths), trusting the test CA. */
async function load(kc: KubeConfig, cert: string, key: string): Promise<void> {
  const b64 = async (path: string) => Buffer.from(await pem(path)).toString('base64');
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: url, caData: await b64(certs.caCert) }],
    users: [{ name: 'user', certData: await b64(cert), keyData: await b64(key) }],
    contexts: [{ name: 'local', cluster: 'local', user: 'user' }],
    currentContext: 'local',
  });
}

/** Makes `n` requests one after another; returns how many new connections the server saw meanwhile. */
async function requests(kc: KubeConfig, n: number): Promise<number> {
  const before = connections.length;
  const api = kc.makeApiClient(CoreV1Api);
  for (let i = 0; i < n; i++) {
    expect((await api.readNamespace({ name: `ns-${i}` })).metadata?.name).toBe(`ns-${i}`);
  }
  return connections.length - before;
}

describe('reuseConnections', () => {
  it('is needed: client-node alone opens a new TLS connection for every request', async () => {
    const kc = await config(certs.adminCert, certs.adminKey);
    expect(await requests(kc, 5)).toBe(5);
  });

  it('sends requests one after another over one kept connection', async () => {
    const kc = reuseConnections(await config(certs.adminCert, certs.adminKey));
    // A second application changes nothing (one pool, not a pool of pools).
    reuseConnections(kc);
    // At most two, not one: a request may go out before the previous response has freed its connection, and
    // the client drops a connection idle for 4 s, which a stalled machine could reach.
    expect(await requests(kc, 50)).toBeLessThanOrEqual(2);
  });

  it('connects again when the server ends the kept connection', async () => {
    const kc = reuseConnections(await config(certs.adminCert, certs.adminKey));
    await requests(kc, 2);
    closeNext = true;
    expect(await requests(kc, 1)).toBe(0);
    expect(await requests(kc, 3)).toBe(1);
  });

  it('recovers when the server drops every connection without a word', async () => {
    const kc = reuseConnections(await config(certs.adminCert, certs.adminKey));
    await requests(kc, 2);
    server.closeAllConnections();
    // A request racing the drop may fail, as any request may (a reconcile retries it with backoff); only that
    // one: the pool forgets the dead connections and the next requests share new ones.
    await requests(kc, 1).catch((err: Error) =>
      expect(String(err.cause ?? err)).toMatch(/other side closed/),
    );
    expect(await requests(kc, 5)).toBeLessThanOrEqual(2);
  });

  it('presents a new client certificate on a new connection once the config holds it', async () => {
    const kc = reuseConnections(await config(certs.adminCert, certs.adminKey));
    await requests(kc, 2);
    expect(connections.at(-1)).toBe('admin');
    // A rotated or reloaded certificate is never sent over a connection authenticated with the old one.
    await load(kc, certs.kubeletClientCert, certs.kubeletClientKey);
    const before = connections.length;
    await requests(kc, 3);
    const after = connections.slice(before);
    expect(after.length).toBeGreaterThanOrEqual(1);
    expect(new Set(after)).toEqual(new Set(['kube-apiserver-kubelet-client']));
  });
});
