// `npm run fuzz`: the hostile-request campaign against a real `fhirguard proxy` (see
// docs/fuzz.md). Prints progress, totals per class and per oracle and a summary line, writes
// the findings to fuzz/results/, and exits 1 on any violation.
//
//   npm run fuzz -- [--seed N] [--requests 100000] [--max-seconds 900] [--only INDEX]
//                   [--concurrency 16] [--raw-concurrency 8]

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULTS, runCampaign } from './campaign';
import { describeCase } from './findings';
import { caseAt } from './generate/index';
import { REPO_ROOT } from './harness/repo-root';

function int(v: string | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`--${name} wants an integer, got ${v}`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      requests: { type: 'string' },
      'max-seconds': { type: 'string' },
      only: { type: 'string' },
      concurrency: { type: 'string' },
      'raw-concurrency': { type: 'string' },
      show: { type: 'boolean' },
    },
  });
  const seed = int(values.seed, Math.floor(Math.random() * 2 ** 31), 'seed');
  const only = values.only === undefined ? undefined : int(values.only, 0, 'only');
  if (only !== undefined && values.show) {
    console.log(describeCase(caseAt(seed, only)));
    return 0;
  }
  const o = {
    ...DEFAULTS,
    seed,
    only,
    requests: int(values.requests, DEFAULTS.requests, 'requests'),
    maxSeconds: int(values['max-seconds'], DEFAULTS.maxSeconds, 'max-seconds'),
    concurrency: int(values.concurrency, DEFAULTS.concurrency, 'concurrency'),
    rawConcurrency: int(values['raw-concurrency'], DEFAULTS.rawConcurrency, 'raw-concurrency'),
    log: (l: string) => console.log(l),
  };
  console.log(`fuzz: seed ${seed}, ${only === undefined ? `${o.requests} cases` : `case ${only} only`}, at most ${o.maxSeconds} s, loopback only`);
  const r = await runCampaign(o);
  const f = r.findings;

  console.log('\nper class (cases; answers by status):');
  for (const [klass, t] of [...f.classes].sort(([a], [b]) => a.localeCompare(b))) {
    const statuses = Object.entries(t.statuses)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([s, n]) => `${s}×${n}`)
      .join(' ');
    console.log(`  ${klass.padEnd(38)} ${String(t.cases).padStart(7)}  ${statuses}`);
  }
  console.log('\nper oracle (violations):');
  for (const [oracle, v] of f.violations) {
    const classes = Object.entries(v.byClass)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k}×${n}`)
      .join(' ');
    console.log(`  ${oracle.padEnd(22)} ${String(v.count).padStart(7)}  ${classes}`);
    for (const e of v.examples.slice(0, 2)) console.log(`      seed ${e.seed} index ${e.index ?? '-'} [${e.klass}] ${e.detail.slice(0, 240)}`);
  }

  const dir = join(REPO_ROOT, 'fuzz', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `fuzz-${seed}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        seed,
        sent: r.sent,
        seconds: r.seconds,
        stoppedBy: r.stoppedBy,
        upstreamRequests: r.upstreamRequests,
        classes: Object.fromEntries(f.classes),
        violations: Object.fromEntries(f.violations),
      },
      null,
      2,
    )}\n`,
  );
  const short = only === undefined && r.sent < o.requests;
  console.log(
    `\nfuzz summary: seed ${seed}, ${r.sent} cases in ${r.seconds.toFixed(0)} s (stopped by ${r.stoppedBy}), upstreams saw ${Object.entries(r.upstreamRequests)
      .map(([t, n]) => `${t} ${n}`)
      .join(', ')}, ` + `${f.total()} violations (${f.brief()}); findings in ${file}`,
  );
  return f.total() > 0 || short ? 1 : 0;
}

// Interrupted: exit through 'exit' so the proxy started is killed with the campaign.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`fuzz: ${e.stack ?? e.message}`);
    process.exit(2);
  },
);
