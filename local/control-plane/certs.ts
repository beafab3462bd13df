// The certificates of a local control plane: a CA, the API server's serving certificate (127.0.0.1 and
// the in-cluster names), an admin client certificate (system:masters) and the service-account key pair.

import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ControlPlaneCerts {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  /** The local kubelet's serving certificate (127.0.0.1), which kube-apiserver verifies for `kubectl logs`. */
  kubeletCert: string;
  kubeletKey: string;
  /** What kube-apiserver presents to kubelets. */
  kubeletClientCert: string;
  kubeletClientKey: string;
  /** Signs service-account tokens (kube-apiserver, kube-controller-manager). */
  serviceAccountKey: string;
  /** Verifies them. */
  serviceAccountPub: string;
}

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  readonly code = 'DFN_CONTROL_PLANE_CERTS';
}

// Keys come from Node (native, no fork); openssl is only needed to sign certificates, which Node cannot.
function rsaKey(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    throw new CertificateError(
      e.code === 'ENOENT'
        ? 'openssl is needed to sign the local control plane certificates and was not found on PATH'
        : `openssl ${args[0]} failed (${e.code ?? 'error'}): ${e.stderr || e.message}`,
    );
  }
}

/** Signs a certificate for `key` with the CA; `extensions` are openssl x509v3 lines. */
async function signed(
  dir: string,
  name: string,
  subject: string,
  extensions: string[],
  ca: { cert: string; key: string },
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const cert = join(dir, `${name}.crt`);
  await writeFile(key, rsaKey().privateKey, { mode: 0o600 });
  await writeFile(ext, `${extensions.join('\n')}\n`);
  await openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    // A random serial per certificate: -CAcreateserial shares one serial file, which concurrent signings race on.
    '-set_serial',
    `0x${randomBytes(16).toString('hex')}`,
    '-days',
    '3650',
    '-sha256',
    '-extfile',
    ext,
    '-out',
    cert,
  ]);
  return { cert, key };
}

export async function createCerts(dir: string): Promise<ControlPlaneCerts> {
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  await writeFile(caKey, rsaKey().privateKey, { mode: 0o600 });
  const caExt = join(dir, 'ca.ext');
  await writeFile(
    caExt,
    [
      '[req]',
      'distinguished_name = dn',
      'x509_extensions = v3_ca',
      '[dn]',
      '[v3_ca]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-subj',
    '/CN=dfn-local-ca',
    '-days',
    '3650',
    '-sha256',
    '-config',
    caExt,
    '-out',
    caCert,
  ]);
  const ca = { cert: caCert, key: caKey };
  const [serving, admin, kubelet, kubeletClient] = await Promise.all([
    signed(
      dir,
      'apiserver',
      '/CN=kube-apiserver',
      [
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage = serverAuth',
        'subjectAltName = IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
      ],
      ca,
    ),
    signed(
      dir,
      'admin',
      '/O=system:masters/CN=admin',
      [
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage = clientAuth',
      ],
      ca,
    ),
    signed(
      dir,
      'kubelet',
      '/CN=dfn-local-kubelet',
      [
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage = serverAuth',
        'subjectAltName = IP:127.0.0.1,DNS:localhost',
      ],
      ca,
    ),
    signed(
      dir,
      'apiserver-kubelet-client',
      '/CN=kube-apiserver-kubelet-client',
      [
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage = clientAuth',
      ],
      ca,
    ),
  ]);
  const sa = rsaKey();
  const serviceAccountKey = join(dir, 'sa.key');
  const serviceAccountPub = join(dir, 'sa.pub');
  await writeFile(serviceAccountKey, sa.privateKey, { mode: 0o600 });
  await writeFile(serviceAccountPub, sa.publicKey);
  return {
    dir,
    caCert,
    caKey,
    servingCert: serving.cert,
    servingKey: serving.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    kubeletCert: kubelet.cert,
    kubeletKey: kubelet.key,
    kubeletClientCert: kubeletClient.cert,
    kubeletClientKey: kubeletClient.key,
    serviceAccountKey,
    serviceAccountPub,
  };
}

/** The PEM files a TLS client needs to talk to the API server as admin. */
export async function adminTls(certs: ControlPlaneCerts): Promise<{ ca: string; cert: string; key: string }> {
  const [ca, cert, key] = await Promise.all([
    readFile(certs.caCert, 'utf8'),
    readFile(certs.adminCert, 'utf8'),
    readFile(certs.adminKey, 'utf8'),
  ]);
  return { ca, cert, key };
}

/** The certificates a kept directory already holds (an earlier start), or undefined if any is missing. */
export async function existingCerts(dir: string): Promise<ControlPlaneCerts | undefined> {
  const certs: ControlPlaneCerts = {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    servingCert: join(dir, 'apiserver.crt'),
    servingKey: join(dir, 'apiserver.key'),
    adminCert: join(dir, 'admin.crt'),
    adminKey: join(dir, 'admin.key'),
    kubeletCert: join(dir, 'kubelet.crt'),
    kubeletKey: join(dir, 'kubelet.key'),
    kubeletClientCert: join(dir, 'apiserver-kubelet-client.crt'),
    kubeletClientKey: join(dir, 'apiserver-kubelet-client.key'),
    serviceAccountKey: join(dir, 'sa.key'),
    serviceAccountPub: join(dir, 'sa.pub'),
  };
  const files = Object.entries(certs).filter(([k]) => k !== 'dir');
  const present = await Promise.all(
    files.map(([, path]) =>
      access(path).then(
        () => true,
        () => false,
      ),
    ),
  );
  return present.every(Boolean) ? certs : undefined;
}
