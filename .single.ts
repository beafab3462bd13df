import { performance } from 'node:perf_hooks';

const root = process.argv[2];
const { loadFunction } = await import(`${root}/sandbox/index.js`);
const sb = await loadFunction(
  'async function onTrack(event) { if (event.event) globalThis.n = (globalThis.n || 0) + 1; }',
);
const ev = { type: 'track', event: 'x', properties: { a: 1 } };
const batch = Array.from({ length: 100 }, () => ev);
for (let i = 0; i < 1000; i++) await sb.invoke([ev]);
let c = process.cpuUsage();
for (let i = 0; i < 3000; i++) await sb.invoke([ev]);
let d = process.cpuUsage(c);
const single = ((d.user + d.system) / 3000).toFixed(1);
c = process.cpuUsage();
for (let i = 0; i < 200; i++) await sb.invoke(batch);
d = process.cpuUsage(c);
console.log(single, ((d.user + d.system) / 20000).toFixed(2));
sb.dispose();
