// Cost of fhirguard's body checks against plain JSON.parse, for a small resource and a large
// transaction: parseJsonBody = fatal UTF-8 decode + JSON.parse + one walk for depth and
// forbidden keys + one pass over the text for repeated keys and inexact numbers. Prints µs
// per body and the ratio to the bare decode + parse.
// Run: npx tsc -p tsconfig.json && node dist/bench/body.js

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseJsonBody } from '../src/fhir/body';

const corpus = path.resolve(__dirname, '..', '..', '..', 'shared', 'corpus');

function timeUs(f: () => unknown, minMs: number): number {
  for (let i = 0; i < 20; i++) f();
  let n = 0;
  const start = process.hrtime.bigint();
  const limit = BigInt(minMs) * 1_000_000n;
  while (process.hrtime.bigint() - start < limit) {
    f();
    n++;
  }
  return Number(process.hrtime.bigint() - start) / n / 1000;
}

function main(): void {
  const synthea = path.join(corpus, 'synthea');
  const big = fs.readdirSync(synthea).filter((f) => f.endsWith('.json') && f !== 'index.json')[0];
  const inputs: [string, Buffer][] = [
    ['Patient example', fs.readFileSync(path.join(corpus, 'r4-examples', 'json', 'patient-example.json'))],
    ['Synthea transaction', fs.readFileSync(path.join(synthea, big))],
  ];
  const limits = { maxDepth: 64 };
  const decoder = new TextDecoder('utf-8');
  console.log('body: µs per body (baseline = decode + JSON.parse)');
  for (const [name, buf] of inputs) {
    const base = timeUs(() => JSON.parse(decoder.decode(buf)), 1000);
    const ours = timeUs(() => parseJsonBody(buf, limits), 1000);
    console.log(`${`${name} (${buf.length} bytes)`.padEnd(40)} baseline ${base.toFixed(1).padStart(8)} µs  parseJsonBody ${ours.toFixed(1).padStart(8)} µs  ratio ${(ours / base).toFixed(2)}`);
  }
}

main();
