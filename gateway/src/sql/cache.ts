/**
 * A bounded LRU cache for verdicts keyed by statement text. Applications send the same few hundred
 * statement texts over and over, so the hot path parses a text once and then only hashes it (Map
 * lookup). Bounded by entries and by approximate bytes, because the keys come from untrusted
 * clients: a stream of distinct statements evicts old ones, it never grows memory.
 *
 * Map iteration order is insertion order, so "move to the back on hit, evict from the front" is an
 * LRU without a linked list of our own.
 */

export interface LruOptions<V> {
  /** At most this many entries. */
  max_entries: number;
  /** At most this many bytes of keys and values, as estimated by `sizeOf` (default: key only). */
  max_bytes: number;
  /** Keys longer than this (in UTF-16 code units × 2, i.e. JS bytes) are never stored: they would evict many. */
  max_key_bytes?: number;
  /** Estimated bytes of one value, counted with its key. */
  sizeOf?: (value: V) => number;
}

export interface LruStats {
  hits: number;
  misses: number;
  evictions: number;
  /** Lookups whose key was too large to be stored (each is also a miss). */
  uncacheable: number;
  entries: number;
  bytes: number;
}

export class LruCache<V> {
  private readonly map = new Map<string, { value: V; bytes: number }>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly maxKeyBytes: number;
  private readonly sizeOf: (value: V) => number;
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private uncacheable = 0;

  constructor(options: LruOptions<V>) {
    if (!(options.max_entries >= 1) || !(options.max_bytes >= 1)) throw new RangeError('LruCache needs max_entries ≥ 1 and max_bytes ≥ 1');
    this.maxEntries = Math.floor(options.max_entries);
    this.maxBytes = Math.floor(options.max_bytes);
    this.maxKeyBytes = options.max_key_bytes ?? Math.floor(this.maxBytes / 16);
    this.sizeOf = options.sizeOf ?? (() => 0);
  }

  /** The cached value (now most recently used), or undefined. Counts a hit or a miss. */
  get(key: string): V | undefined {
    const entry = this.map.get(key);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  /** Stores a value, evicting least recently used entries to stay within both bounds. */
  set(key: string, value: V): void {
    const keyBytes = key.length * 2;
    if (keyBytes > this.maxKeyBytes) return;
    const bytes = keyBytes + this.sizeOf(value);
    if (bytes > this.maxBytes) return;
    const old = this.map.get(key);
    if (old !== undefined) {
      this.bytes -= old.bytes;
      this.map.delete(key);
    }
    this.map.set(key, { value, bytes });
    this.bytes += bytes;
    while (this.map.size > this.maxEntries || this.bytes > this.maxBytes) {
      const oldest = this.map.keys().next().value as string;
      this.bytes -= this.map.get(oldest)!.bytes;
      this.map.delete(oldest);
      this.evictions++;
    }
  }

  /** get, or compute once and store. The hot path's one call. */
  getOrCompute(key: string, compute: (key: string) => V): V {
    const cached = this.get(key);
    if (cached !== undefined) return cached;
    const value = compute(key);
    if (key.length * 2 > this.maxKeyBytes) this.uncacheable++;
    else this.set(key, value);
    return value;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  delete(key: string): boolean {
    const entry = this.map.get(key);
    if (entry === undefined) return false;
    this.bytes -= entry.bytes;
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  get size(): number {
    return this.map.size;
  }

  stats(): LruStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      uncacheable: this.uncacheable,
      entries: this.map.size,
      bytes: this.bytes,
    };
  }
}
