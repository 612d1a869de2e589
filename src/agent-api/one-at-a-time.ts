// Runs async work one call at a time, in order of the calls: two reloads asked at once never
// build from the same old state. Shared by the proxy's and the agent's policy reloads.

export class OneAtATime {
  private queue: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
