/**
 * Failed sign-ins per client address in a sliding window: past `max_failures`, that address is
 * refused until its oldest failure leaves the window. Per address, so one guesser cannot lock the
 * admin out from everywhere; bounded, so many addresses cannot grow it without limit.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();
  constructor(
    private readonly max_failures = 10,
    private readonly window_ms = 60_000,
    private readonly max_addresses = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  private recent(addr: string): number[] {
    const t = this.now() - this.window_ms;
    const list = (this.failures.get(addr) ?? []).filter((x) => x > t);
    if (list.length) this.failures.set(addr, list);
    else this.failures.delete(addr);
    return list;
  }

  blocked(addr: string): boolean {
    return this.recent(addr).length >= this.max_failures;
  }

  fail(addr: string): void {
    const list = this.recent(addr);
    if (!this.failures.has(addr) && this.failures.size >= this.max_addresses) this.failures.delete(this.failures.keys().next().value as string);
    list.push(this.now());
    this.failures.set(addr, list);
  }

  succeed(addr: string): void {
    this.failures.delete(addr);
  }
}
