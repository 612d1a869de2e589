import { Registry } from 'prom-client';
import { LeanCounter, LeanHistogram } from '../../src/metrics/lean';

describe('hot-path metric cells', () => {
  it('keeps one cell per label set, however the label values are spelled by the caller', async () => {
    const registry = new Registry();
    const c = new LeanCounter('t_requests_total', 'requests', ['tier', 'interaction', 'outcome'], registry);
    const a = c.cell('read', 'read', 'success');
    expect(c.cell('read', 'read', 'success')).toBe(a);
    // Values that would collide if joined carelessly stay apart.
    const b = c.cell('read', 'read', 'succes');
    const d = c.cell('rea', 'dread', 'success');
    expect(new Set([a, b, d]).size).toBe(3);
    a.inc();
    a.inc(2);
    d.inc();
    const text = await registry.metrics();
    expect(text).toContain('t_requests_total{tier="read",interaction="read",outcome="success"} 3');
    expect(text).toContain('t_requests_total{tier="rea",interaction="dread",outcome="success"} 1');
    expect(text).toContain('t_requests_total{tier="read",interaction="read",outcome="succes"} 0');
  });

  it('exposes histograms with cumulative buckets, sum and count', async () => {
    const registry = new Registry();
    const h = new LeanHistogram('t_seconds', 'time', ['stage'], registry, [0.001, 0.01]);
    const cell = h.cell('policy');
    for (const s of [0.0005, 0.005, 0.005, 2]) cell.observe(s);
    const text = await registry.metrics();
    expect(text).toContain('t_seconds_bucket{stage="policy",le="0.001"} 1');
    expect(text).toContain('t_seconds_bucket{stage="policy",le="0.01"} 3');
    expect(text).toContain('t_seconds_bucket{stage="policy",le="+Inf"} 4');
    expect(text).toContain('t_seconds_sum{stage="policy"} 2.0105');
    expect(text).toContain('t_seconds_count{stage="policy"} 4');
  });

  it('forgets every cell on reset', async () => {
    const registry = new Registry();
    const c = new LeanCounter('t_resets_total', 'resets', ['reason'], registry);
    const before = c.cell('policy');
    before.inc();
    c.reset();
    expect(await registry.metrics()).not.toContain('reason="policy"');
    expect(c.cell('policy')).not.toBe(before);
  });
});
