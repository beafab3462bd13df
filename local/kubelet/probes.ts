// A container's probes as a kubelet runs them (HTTP GET and TCP, with their delays, periods, timeouts and
// thresholds), against the loopback port the container's port was remapped to.

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { V1Probe } from '@kubernetes/client-node';
import { LOOPBACK } from './downward.js';

export type PortResolver = (port: number | string) => number | undefined;

function httpProbe(
  probe: NonNullable<V1Probe['httpGet']>,
  port: number,
  timeoutMs: number,
): Promise<boolean> {
  const request = probe.scheme === 'HTTPS' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const headers: Record<string, string> = { 'user-agent': 'kube-probe/dfn-local' };
    for (const h of probe.httpHeaders ?? []) headers[h.name] = h.value;
    const req = request(
      {
        host: LOOPBACK,
        port,
        path: probe.path || '/',
        method: 'GET',
        headers,
        timeout: timeoutMs,
        rejectUnauthorized: false,
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 400);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function tcpProbe(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOOPBACK, port, timeout: timeoutMs });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(false));
  });
}

/** One probe's loop: reports each change of its verdict (after the thresholds) to `onChange`. */
export class ProbeRunner {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  /** Readiness and startup start out failing; liveness starts out passing. */
  verdict: boolean;
  lastMessage = '';

  constructor(
    private readonly probe: V1Probe,
    private readonly ports: PortResolver,
    initial: boolean,
    private readonly onChange: (passing: boolean) => void,
  ) {
    this.verdict = initial;
  }

  start(): void {
    this.schedule((this.probe.initialDelaySeconds ?? 0) * 1000);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  private async tick(): Promise<void> {
    const passed = await this.once();
    if (this.stopped) return;
    if (passed) {
      this.successes++;
      this.failures = 0;
    } else {
      this.failures++;
      this.successes = 0;
    }
    const next =
      passed && this.successes >= (this.probe.successThreshold ?? 1)
        ? true
        : !passed && this.failures >= (this.probe.failureThreshold ?? 3)
          ? false
          : this.verdict;
    if (next !== this.verdict) {
      this.verdict = next;
      this.onChange(next);
    }
    this.schedule((this.probe.periodSeconds ?? 10) * 1000);
  }

  private async once(): Promise<boolean> {
    const timeoutMs = (this.probe.timeoutSeconds ?? 1) * 1000;
    const target = this.probe.httpGet?.port ?? this.probe.tcpSocket?.port;
    const port = target === undefined ? undefined : this.ports(target);
    if (port === undefined) {
      this.lastMessage =
        this.probe.exec || this.probe.grpc
          ? 'exec and grpc probes are not run by the local kubelet'
          : `probe port ${String(target)} is not a port of the container`;
      return false;
    }
    const ok = this.probe.httpGet
      ? await httpProbe(this.probe.httpGet, port, timeoutMs)
      : await tcpProbe(port, timeoutMs);
    this.lastMessage = ok ? '' : `probe of 127.0.0.1:${port} failed`;
    return ok;
  }
}
