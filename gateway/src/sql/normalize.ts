/**
 * Cache key normalisation: numeric literals → all-'1' digits of the same length.
 *
 * Why: clients that inline values (pgbench, ORMs without server-side binding, agents writing SQL)
 * send a new text for every statement, so the analysis cache (keyed by text) misses and every
 * statement pays a parse (25–80 µs). What the analysis derives does not depend on the VALUE of a
 * numeric literal (derive.ts: features come from node kinds, relations and functions from names,
 * `whereNarrows` from column references), with one exception handled conservatively: `EXPLAIN
 * (ANALYZE 0)` reads as `ANALYZE 1` after normalisation, i.e. "it runs" — the stricter reading.
 *
 * Why same length and only digits: statement boundaries, trimmed pieces and error positions stay
 * where they are, so the caller maps every analysis back onto the original text by position, and
 * only characters '0'–'9' inside tokens that PostgreSQL's own lexer (scan.l) reads as numeric
 * literals ever change. The scanner below follows scan.l's token starts for everything that can
 * contain a digit: identifiers (ASCII letters, digits, `_`, `$`, any byte ≥ 0x80), quoted
 * identifiers, standard and E'' strings, dollar-quoted strings, parameters (`$1`), comments (nested
 * /* *\/). When it meets something it does not fully understand (an unterminated quote or comment),
 * it gives up and the caller uses the exact text: normalisation is an optimisation, never a
 * different reading.
 *
 * Not normalised: string literals (their values matter: `set_config('role', …)`), and texts with a
 * backslash outside E'' strings (their lexing depends on standard_conforming_strings).
 */

const isIdentChar = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x24 || c >= 0x80;
const isIdentStart = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** The text with numeric literals' digits replaced by '1', or undefined when unchanged or not safely scannable. */
export function normalizeNumerics(text: string): string | undefined {
  const n = text.length;
  let out: string[] | undefined;
  let copied = 0;
  let i = 0;
  const replaceDigits = (from: number, to: number): void => {
    let changed = false;
    for (let k = from; k < to; k++) if (isDigit(text.charCodeAt(k)) && text.charCodeAt(k) !== 0x31) changed = true;
    if (!changed) return;
    out ??= [];
    out.push(text.slice(copied, from));
    let s = '';
    for (let k = from; k < to; k++) s += isDigit(text.charCodeAt(k)) ? '1' : text[k];
    out.push(s);
    copied = to;
  };
  while (i < n) {
    const c = text.charCodeAt(i);
    // -- comment
    if (c === 0x2d && text.charCodeAt(i + 1) === 0x2d) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    // /* nested comment */
    if (c === 0x2f && text.charCodeAt(i + 1) === 0x2a) {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (text.charCodeAt(i) === 0x2f && text.charCodeAt(i + 1) === 0x2a) (depth++, (i += 2));
        else if (text.charCodeAt(i) === 0x2a && text.charCodeAt(i + 1) === 0x2f) (depth--, (i += 2));
        else i++;
      }
      if (depth > 0) return undefined;
      continue;
    }
    // "quoted identifier" ("" escapes a quote)
    if (c === 0x22) {
      const end = skipQuoted(text, i + 1, 0x22, false);
      if (end < 0) return undefined;
      i = end;
      continue;
    }
    // 'string' — E'…' when the E starts its own token (handled with the identifier below)
    if (c === 0x27) {
      if (text.indexOf('\\', i) >= 0 && backslashInStandardString(text, i)) return undefined;
      const end = skipQuoted(text, i + 1, 0x27, false);
      if (end < 0) return undefined;
      i = end;
      continue;
    }
    // $n parameter or $tag$ dollar quote
    if (c === 0x24) {
      if (isDigit(text.charCodeAt(i + 1))) {
        i++;
        while (i < n && isDigit(text.charCodeAt(i))) i++;
        continue;
      }
      let j = i + 1;
      if (j < n && (isIdentStart(text.charCodeAt(j)) || text.charCodeAt(j) === 0x24)) {
        while (j < n && text.charCodeAt(j) !== 0x24 && isIdentChar(text.charCodeAt(j))) j++;
        if (text.charCodeAt(j) === 0x24) {
          const tag = text.slice(i, j + 1);
          const close = text.indexOf(tag, j + 1);
          if (close < 0) return undefined;
          i = close + tag.length;
          continue;
        }
      }
      i++; // a lone '$' (an operator character here): PostgreSQL will say what it thinks
      continue;
    }
    // identifier or keyword (may be the E/B/X/U& prefix of a string)
    if (isIdentStart(c)) {
      const start = i;
      while (i < n && isIdentChar(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) === 0x27 && i - start === 1 && (c === 0x45 || c === 0x65)) {
        const end = skipQuoted(text, i + 1, 0x27, true); // E'…': backslash escapes
        if (end < 0) return undefined;
        i = end;
      }
      continue;
    }
    // numeric literal: digits, '.', exponent, 0x/0o/0b and '_' separators (PostgreSQL 16+)
    if (isDigit(c) || (c === 0x2e && isDigit(text.charCodeAt(i + 1)))) {
      const start = i;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (isDigit(d) || d === 0x2e || d === 0x5f || ((d === 0x65 || d === 0x45) && isExponent(text, i))) {
          if ((d === 0x65 || d === 0x45) && (text.charCodeAt(i + 1) === 0x2b || text.charCodeAt(i + 1) === 0x2d)) i++;
          i++;
          continue;
        }
        if (i === start + 1 && text.charCodeAt(start) === 0x30 && (d === 0x78 || d === 0x58 || d === 0x6f || d === 0x4f || d === 0x62 || d === 0x42)) {
          // 0x1F / 0o17 / 0b101: hex digits are letters too; leave the whole token as it is
          i++;
          while (i < n && isIdentChar(text.charCodeAt(i))) i++;
          return undefined;
        }
        break;
      }
      // "1..10", "1.e": leave odd tokens to PostgreSQL untouched
      if (text.slice(start, i).includes('..')) return undefined;
      // A number glued to an identifier ("1abc", "123foo") lexes differently across versions: keep exact.
      if (i < n && isIdentChar(text.charCodeAt(i))) return undefined;
      replaceDigits(start, i);
      continue;
    }
    i++;
  }
  if (out === undefined) return undefined;
  out.push(text.slice(copied));
  return out.join('');
}

/** `e`/`E` continues a number only as an exponent: followed by a digit, or a sign and a digit. */
function isExponent(text: string, i: number): boolean {
  const a = text.charCodeAt(i + 1);
  if (isDigit(a)) return true;
  return (a === 0x2b || a === 0x2d) && isDigit(text.charCodeAt(i + 2));
}

/** Index after the closing quote, or -1 if unterminated. A doubled quote is an escaped quote. */
function skipQuoted(text: string, from: number, quote: number, backslash: boolean): number {
  let i = from;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (backslash && c === 0x5c) {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (text.charCodeAt(i + 1) === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return -1;
}

/** A backslash inside the standard string starting at `open`: its lexing depends on a session setting. */
function backslashInStandardString(text: string, open: number): boolean {
  const end = skipQuoted(text, open + 1, 0x27, false);
  const close = end < 0 ? text.length : end;
  return text.slice(open, close).includes('\\');
}
