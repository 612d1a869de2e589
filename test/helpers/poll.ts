// The one way tests wait for something to become true: ask again until it is, or until the
// deadline, then fail saying what was awaited and what was last seen. A probe that throws
// counts as "not yet" (a listener not up, a socket not there); the last error is reported.

export interface PollOptions {
  /** Default 30 s: generous, since the machines are shared and loaded. */
  timeoutMs?: number;
  /** Between probes; default 50 ms. */
  intervalMs?: number;
  /** More to say when it times out (a process's log, say). */
  detail?: () => string;
  /** Why waiting is pointless now (the process awaited has exited), checked before each probe:
   * a reason fails the wait at once. */
  abort?: () => string | undefined;
}

/** Resolves with the first value `probe` gives that is neither undefined, null nor false. */
export async function poll<T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, o: PollOptions = {}): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    const why = o.abort?.();
    if (why) throw new Error(`gave up waiting for ${what}: ${why}${o.detail ? `\n${o.detail()}` : ''}`);
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${o.timeoutMs ?? 30_000} ms waiting for ${what} (last: ${seen})${o.detail ? `\n${o.detail()}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 50));
  }
}
