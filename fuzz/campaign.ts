// One campaign: three recording upstreams, a real `fhirguard proxy` in front of them under
// the campaign policy, then `requests` generated cases sent with bounded concurrency (pooled
// keep-alive for HTTP-level cases, fresh sockets for framing), every answer and every
// upstream request checked as it happens, liveness checked as it goes, and every tier
// probed at the end.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Findings } from './findings';
import type { FuzzCase, RawCase } from './generate/case';
import { caseAt } from './generate/index';
import { campaignPolicy } from './harness/policy';
import { checkAlive, checkTiers } from './harness/probes';
import { startProxy, type ProxyProcess } from './harness/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from './harness/recording-upstream';
import { checkAnswer } from './oracles/response';
import { caseOf, checkUpstreamRequest } from './oracles/upstream';
import { HttpPool, rawBytesOf } from './send/http';
import { sendRaw, type RawOutcome } from './send/raw';

export interface CampaignOptions {
  seed: number;
  requests: number;
  maxSeconds: number;
  /** Run only this case (reproduce a finding). */
  only?: number;
  concurrency: number;
  rawConcurrency: number;
  /** How long a request may go unanswered (past the proxy's own upstream timeout). */
  answerTimeoutMs: number;
  /** How long a raw connection may stay open after its last write. */
  rawWaitMs: number;
  log: (line: string) => void;
}

export const DEFAULTS: Omit<CampaignOptions, 'seed' | 'log'> = {
  requests: 100_000,
  maxSeconds: 900,
  concurrency: 16,
  rawConcurrency: 8,
  answerTimeoutMs: 12_000,
  rawWaitMs: 6_000,
};

/** The proxy's upstream timeout; its header timeout bounds unfinished header sections. */
const UPSTREAM_TIMEOUT_MS = 5_000;
const PROXY_ARGS = ['--headers-timeout', '2000', '--request-timeout', '10000'];
const TIER_CHECK_EVERY = 10_000;

export interface CampaignResult {
  findings: Findings;
  sent: number;
  seconds: number;
  stoppedBy: 'requests' | 'time' | 'proxy-died';
  upstreamRequests: Record<string, number>;
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignResult> {
  const findings = new Findings(o.seed);
  const dir = mkdtempSync(join(tmpdir(), 'fhirguard-fuzz-'));
  const forwarded = new Map<number, number>();
  const onUpstream = (r: Parameters<typeof checkUpstreamRequest>[0]) => {
    const index = caseOf(r) ?? null;
    if (index !== null) forwarded.set(index, (forwarded.get(index) ?? 0) + 1);
    const violations = checkUpstreamRequest(r);
    if (violations.length === 0) return;
    const c = index === null ? undefined : caseAt(o.seed, index);
    for (const v of violations) findings.violate(v.oracle, index, c?.klass ?? 'unknown', `${v.detail} [upstream ${r.tier} saw ${r.method} ${r.url.slice(0, 300)}]`, c);
  };
  const ups: RecordingUpstream[] = [];
  let proxy: ProxyProcess | undefined;
  const started = Date.now();
  let sent = 0;
  let stoppedBy: CampaignResult['stoppedBy'] = 'requests';
  try {
    for (const tier of ['read', 'write', 'ops']) ups.push(await startRecordingUpstream(tier, onUpstream));
    proxy = await startProxy(dir, campaignPolicy({ read: ups[0].url, write: ups[1].url, ops: ups[2].url }, UPSTREAM_TIMEOUT_MS), PROXY_ARGS);
    const p = proxy;
    const pool = new HttpPool(p.origin, o.concurrency);
    const indices = o.only === undefined ? undefined : [o.only];
    const total = indices ? 1 : o.requests;
    const deadline = started + o.maxSeconds * 1000;
    let next = 0;
    let rawSlots = o.rawConcurrency;
    const rawWaiters: (() => void)[] = [];
    const acquireRaw = async () => {
      while (rawSlots === 0) await new Promise<void>((r) => rawWaiters.push(r));
      rawSlots--;
    };
    const releaseRaw = () => {
      rawSlots++;
      rawWaiters.shift()?.();
    };
    let stop = false;
    /** Cases under way and since when: the progress line names the oldest. */
    const inflight = new Map<number, number>();

    const runRaw = async (index: number, c: RawCase, raw: RawCase): Promise<void> => {
      await acquireRaw();
      let out: RawOutcome;
      try {
        out = await sendRaw(p.port, raw, o.rawWaitMs);
      } finally {
        releaseRaw();
      }
      checkRaw(findings, index, c, out, forwarded.get(index) ?? 0);
      forwarded.delete(index);
    };

    const runOne = async (index: number): Promise<void> => {
      const c: FuzzCase = caseAt(o.seed, index);
      if (c.kind === 'raw') return runRaw(index, c, c);
      const out = await pool.send(c, o.answerTimeoutMs);
      if (out.kind === 'client-refused') {
        const raw: RawCase = { kind: 'raw', klass: c.klass, writes: [rawBytesOf(c, 'fhirguard.test')], gapMs: 0, end: true };
        return runRaw(index, c.klass === 'path' ? { ...raw, klass: 'path' } : raw, raw);
      }
      forwarded.delete(index);
      if (out.kind === 'no-answer') {
        findings.countCase(c.klass, 'none');
        findings.violate('answered', index, c.klass, `no answer: ${out.why}`, c);
        return;
      }
      findings.countCase(c.klass, String(out.answer.status));
      for (const v of checkAnswer(out.answer)) findings.violate(v.oracle, index, c.klass, v.detail, c);
    };

    const worker = async () => {
      while (!stop) {
        if (Date.now() > deadline) {
          stoppedBy = 'time';
          break;
        }
        const i = next++;
        if (i >= total) break;
        const index = indices ? indices[i] : i;
        inflight.set(index, Date.now());
        await runOne(index);
        inflight.delete(index);
        sent++;
        if (sent % TIER_CHECK_EVERY === 0) await tierCheck(p, findings, sent);
      }
    };

    let lastSent = 0;
    let lastAt = Date.now();
    const ticker = setInterval(() => {
      void (async () => {
        const now = Date.now();
        const rate = ((sent - lastSent) * 1000) / Math.max(1, now - lastAt);
        lastSent = sent;
        lastAt = now;
        const [oldest, since] = [...inflight].sort((a, b) => a[1] - b[1])[0] ?? [];
        const stuck = since !== undefined && now - since > 10_000 ? `, case ${oldest} under way for ${Math.round((now - since) / 1000)} s (${inflight.size} under way)` : '';
        o.log(`fuzz: ${sent}/${total} cases, ${rate.toFixed(0)}/s, ${Math.round((now - started) / 1000)} s, violations: ${findings.brief()}${stuck}`);
        const dead = await checkAlive(p, 5_000);
        if (dead) {
          findings.violate(dead.oracle, null, 'liveness', dead.detail);
          if (p.exit()) {
            stop = true;
            stoppedBy = 'proxy-died';
          }
        }
      })();
    }, 10_000);
    const workers = o.concurrency + o.rawConcurrency;
    await Promise.all(Array.from({ length: workers }, worker));
    clearInterval(ticker);
    await pool.close();
    const dead = await checkAlive(p, 5_000);
    if (dead) {
      findings.violate(dead.oracle, null, 'liveness', dead.detail);
      stoppedBy = 'proxy-died';
    } else {
      await tierCheck(p, findings, sent);
    }
  } finally {
    await proxy?.stop();
    await Promise.all(ups.map((u) => u.close()));
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    findings,
    sent,
    seconds: (Date.now() - started) / 1000,
    stoppedBy,
    upstreamRequests: Object.fromEntries(ups.map((u) => [u.tier, u.seen()])),
  };
}

async function tierCheck(p: ProxyProcess, findings: Findings, sent: number): Promise<void> {
  for (const f of await checkTiers(p, 15_000)) findings.violate(f.oracle, null, 'tier-check', `after ${sent} cases: ${f.detail}`);
}

function checkRaw(findings: Findings, index: number, c: FuzzCase, out: RawOutcome, upstreamSaw: number): void {
  const final = out.responses.filter((r) => r.status >= 200);
  findings.countCase(c.klass, final.map((r) => r.status).join('+') || (out.closed ? 'closed' : 'open'));
  // Raw answers are not matched to their requests: a connection that sends HEAD may get bodiless answers.
  const head = c.kind === 'raw' ? c.writes.some((w) => /(^|\n)HEAD /.test(w.toString('latin1'))) : c.method === 'HEAD';
  for (const r of final) for (const v of checkAnswer({ status: r.status, headers: r.headers, body: r.body, head })) findings.violate(v.oracle, index, c.klass, v.detail, c);
  if (!out.closed) findings.violate('connection-bounded', index, c.klass, `connection still open ${final.length ? `after ${final.length} answers` : 'with nothing answered'}`, c);
  // A client that half-closes (FIN) after its last write has said it is gone: the front door
  // aborts what it still has under way and closes, as nginx (499) and Go's servers do
  // (docs/http.md). Answers it does not get then are not findings.
  const gone = c.kind === 'raw' && c.end;
  if (out.closed && final.length === 0 && !gone) findings.violate('refusal-is-outcome', index, c.klass, `connection closed without any answer${out.error ? ` (${out.error})` : ''}`, c);
  const answeredByUpstream = final.filter((r) => r.headers['x-served-by'] !== undefined).length;
  if (upstreamSaw > answeredByUpstream && !gone)
    findings.violate(
      'forwarded-answered',
      index,
      c.klass,
      `the upstream saw ${upstreamSaw} request(s) of this connection, the client got ${answeredByUpstream} upstream answer(s) (statuses ${final.map((r) => r.status).join(', ') || 'none'})`,
      c,
    );
}
