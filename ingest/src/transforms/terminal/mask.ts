/**
 * Value detectors over a terminal byte stream (one channel, one direction), before it is stored.
 *
 * A value can be split across frames: `4111 1111 ` in one SSH_MSG_CHANNEL_DATA and `1111 1111\r\n`
 * in the next, neither of which holds a card on its own. So the masker **holds back** the tail of
 * what it has seen that could still be the beginning of a value, and emits it with the next chunk
 * (or at the channel's end), once the detectors can see the whole value:
 *
 *  - the trailing run of characters values are made of (letters, digits, `_-.+/=~@:'"()`, spaces
 *    between digit groups or after `:`/`=`, a space at the very end), which covers every detector's
 *    shape (cards, phones, SSNs, IBANs in groups, e-mails, JWTs, API keys and `key = value`);
 *  - an unterminated `-----BEGIN … PRIVATE KEY-----` block, from its BEGIN line;
 *  - and, if a value found in the whole buffer crosses the cut, from that value's start.
 *
 * What is held is bounded (`hold_max_bytes`): past it the oldest bytes are emitted (masked as far
 * as the detectors can tell from what is emitted). A prompt or a finished line ends in a space or a
 * line break, so ordinary output is not held; a partial token is (an echoed keystroke appears with
 * the next one in the stored recording).
 *
 * Bytes are handled as latin1 strings (one char per byte): the detectors' patterns are ASCII, bytes
 * outside a match are re-encoded unchanged, and a multi-byte UTF-8 character split across frames is
 * never decoded half.
 */
import type { MaskPlan } from '@vigil/gateway/mask/engine';
import { findItems } from '@vigil/gateway/mask/detectors';
import { DETECTORS, type Detector } from '@vigil/gateway/policy/schema';

export const DEFAULT_HOLD_MAX_BYTES = 16 * 1024;

const enabledCache = new WeakMap<MaskPlan, ReadonlySet<Detector>>();
function enabledOf(plan: MaskPlan): ReadonlySet<Detector> {
  let e = enabledCache.get(plan);
  if (!e) enabledCache.set(plan, (e = new Set(DETECTORS.filter((d) => plan.detectorChoice(d) !== undefined))));
  return e;
}

/** Mask detected values in free text (a command line, a screen). `null` strategy → a placeholder: a terminal has no NULL. */
export function maskText(plan: MaskPlan, text: string): string {
  if (!plan.hasDetectors) return text;
  const r = plan.scan(text);
  if (!r) return text;
  if (r.text !== null) return r.text;
  let out = '';
  let at = 0;
  for (const it of findItems(text, enabledOf(plan))) {
    out += `${text.slice(at, it.start)}[REDACTED:${it.detector}]`;
    at = it.end;
  }
  return out + text.slice(at);
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
/** Characters detected values are made of. */
function isValueChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
    c === 95 /* _ */ || c === 45 /* - */ || c === 46 /* . */ || c === 43 /* + */ || c === 47 /* / */ || c === 61 /* = */ ||
    c === 126 /* ~ */ || c === 64 /* @ */ || c === 58 /* : */ || c === 39 /* ' */ || c === 34 /* " */ || c === 40 /* ( */ || c === 41 /* ) */
  );
}

/** Where the held-back tail of `text` starts (text.length: nothing to hold). */
export function holdFrom(text: string): number {
  const begin = text.lastIndexOf('-----BEGIN ');
  let pem = text.length;
  if (begin >= 0 && text.indexOf('-----END ', begin) < 0) pem = begin;
  let i = text.length;
  while (i > 0) {
    const c = text.charCodeAt(i - 1);
    if (isValueChar(c)) {
      i--;
      continue;
    }
    if (c === 32) {
      const prev = i >= 2 ? text.charCodeAt(i - 2) : -1;
      const next = i < text.length ? text.charCodeAt(i) : -1;
      if (i === text.length || isDigit(prev) || isDigit(next) || prev === 58 || prev === 61) {
        i--;
        continue;
      }
    }
    break;
  }
  return Math.min(i, pem);
}

export interface StreamMaskState {
  /** Bytes seen and not yet emitted (latin1). */
  held: string;
}

/** Push a chunk: the bytes to store now (masked), the rest stays in `state.held`. */
export function pushChunk(state: StreamMaskState, plan: MaskPlan, data: Uint8Array, holdMax = DEFAULT_HOLD_MAX_BYTES): Buffer {
  const text = state.held + Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  let cut = holdFrom(text);
  if (cut < text.length) {
    for (const it of findItems(text, enabledOf(plan))) {
      if (it.start < cut && it.end > cut) {
        cut = it.start;
        break;
      }
      if (it.start >= cut) break;
    }
  }
  if (text.length - cut > holdMax) cut = text.length - holdMax;
  state.held = text.slice(cut);
  return cut === 0 ? Buffer.alloc(0) : Buffer.from(maskText(plan, text.slice(0, cut)), 'latin1');
}

/** Emit whatever is held (the channel ended, or its output stopped being a stream). */
export function flushChunk(state: StreamMaskState, plan: MaskPlan): Buffer {
  const text = state.held;
  state.held = '';
  return text.length === 0 ? Buffer.alloc(0) : Buffer.from(maskText(plan, text), 'latin1');
}
