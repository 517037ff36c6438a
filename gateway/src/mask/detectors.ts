/**
 * Value detectors: find sensitive items inside free text (a result value, an error message, a
 * statement logged at rest). Each detector is a bounded regular expression that proposes
 * candidates plus a validator that confirms them (Luhn for cards, ISO 13616 mod-97 for IBANs, …),
 * so that "a 16-digit number" is not a card unless its check digit says so.
 *
 * Compiled once at module load; `findItems` is the hot path. Every pattern is linear: bounded
 * repetitions, no nested quantifiers over overlapping classes, and a cheap `mayContain` pre-check
 * (a substring or a character class) that skips the regex for values that cannot hold the item.
 *
 * What each detector recognises (docs/masking.md repeats this for policy authors):
 *
 * - card: 13–19 digits, optionally grouped by single spaces or dashes, passing the Luhn check, with
 *   a known issuer prefix (Visa 4, Mastercard 51–55/2221–2720, Amex 34/37, Discover 6011/65/644–649,
 *   Diners 36/38/300–305, JCB 3528–3589, UnionPay 62, Maestro 50/56–58/6).
 * - email: RFC 5321 shaped `local@domain.tld` (local ≤ 64, labels ≤ 63, a letters-only TLD ≥ 2).
 * - phone: international `+` followed by 8–15 digits (E.164, separators allowed), or a grouped
 *   national number of 10–11 digits with separators (`(555) 123-4567`, `555-123-4567`,
 *   `020 7946 0958`); never an ISO date or a time.
 * - us_ssn: `AAA-GG-SSSS` (dashes or spaces) with the SSA's never-issued ranges excluded
 *   (area 000, 666, 900–999; group 00; serial 0000).
 * - iban: country code, two check digits and the BBAN (spaces every 4 allowed), of the length the
 *   country's registry entry gives, passing mod-97 = 1.
 * - jwt: three base64url segments whose first two decode to JSON objects (`eyJ…`); an empty
 *   signature (alg none) still counts.
 * - api_key: documented prefixes of well-known providers (AWS access key ids, GitHub, GitLab,
 *   Slack, Stripe, Google, OpenAI, Anthropic, SendGrid, npm, Twilio, Hugging Face), and the
 *   heuristic "a key-like name (api_key, secret, token, password, …) followed by `:` or `=` and a
 *   16+ character value"; only the value is masked.
 * - private_key: a PEM private-key block (`-----BEGIN … PRIVATE KEY-----` up to its END line, or
 *   to the end of the text when the END line is missing: a truncated key is still a key).
 */
import type { Detector } from '../policy/schema.ts';

/** A detected item: [start, end) in the scanned string (UTF-16 indexes). */
export interface Item {
  readonly detector: Detector;
  readonly start: number;
  readonly end: number;
}

interface Spec {
  readonly detector: Detector;
  /** Cheap test that the text may hold this item (skips the regex otherwise). */
  readonly mayContain: (text: string) => boolean;
  readonly pattern: RegExp;
  /** Confirms a candidate; may narrow it to a capture group (returns [start, end]) or reject it. */
  readonly confirm: (m: RegExpExecArray) => readonly [number, number] | undefined;
}

const DIGIT4 = /\d{4}/;
const whole = (m: RegExpExecArray): readonly [number, number] => [m.index, m.index + m[0].length];

// ---- card -----------------------------------------------------------------------------------

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Issuer identification numbers of the networks whose cards are 13–19 digits long. */
function knownIssuer(d: string): boolean {
  const two = Number(d.slice(0, 2));
  const three = Number(d.slice(0, 3));
  const four = Number(d.slice(0, 4));
  if (d[0] === '4') return true; // Visa
  if (two >= 51 && two <= 55) return true; // Mastercard
  if (four >= 2221 && four <= 2720) return true; // Mastercard 2-series
  if (two === 34 || two === 37) return true; // Amex
  if (four === 6011 || two === 65 || (three >= 644 && three <= 649)) return true; // Discover
  if (two === 36 || two === 38 || (three >= 300 && three <= 305)) return true; // Diners
  if (four >= 3528 && four <= 3589) return true; // JCB
  if (two === 62) return true; // UnionPay
  if (two === 50 || (two >= 56 && two <= 58) || d[0] === '6') return true; // Maestro
  return false;
}

const card: Spec = {
  detector: 'card',
  mayContain: (t) => DIGIT4.test(t),
  // Groups separated by ONE space or dash; not glued to other digits or letters.
  pattern: /(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w]|[.-]\d)/g,
  confirm(m) {
    const digits = m[0].replace(/[ -]/g, '');
    if (digits.length < 13 || digits.length > 19) return undefined;
    return luhnValid(digits) && knownIssuer(digits) ? whole(m) : undefined;
  },
};

// ---- email ----------------------------------------------------------------------------------

const email: Spec = {
  detector: 'email',
  mayContain: (t) => t.includes('@'),
  pattern: /(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])/g,
  confirm: whole,
};

// ---- phone ----------------------------------------------------------------------------------

const ISO_DATE = /^\d{4}-\d{2}-\d{2}/;
const phone: Spec = {
  detector: 'phone',
  mayContain: (t) => DIGIT4.test(t) || /\d[ .-]\d/.test(t),
  pattern:
    /(?<![\w+.:/-])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,4}){1,4}|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}|\d{2,4}[ .-]\d{3,4}[ .-]\d{3,4})(?![\w:/]|[.-]\d)/g,
  confirm(m) {
    const s = m[0];
    const digits = s.replace(/\D/g, '').length;
    if (s.startsWith('+')) return digits >= 8 && digits <= 15 ? whole(m) : undefined;
    if (ISO_DATE.test(s)) return undefined;
    return digits >= 10 && digits <= 11 ? whole(m) : undefined;
  },
};

// ---- US SSN ---------------------------------------------------------------------------------

const usSsn: Spec = {
  detector: 'us_ssn',
  mayContain: (t) => /\d{3}[- ]\d{2}[- ]\d{4}/.test(t),
  pattern: /(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w]|-\d)/g,
  confirm: whole,
};

// ---- IBAN -----------------------------------------------------------------------------------

/** IBAN lengths by country (SWIFT IBAN registry). */
const IBAN_LENGTH: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28, CZ: 24,
  DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27,
  GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18, NO: 15, OM: 23, PK: 24, PL: 28,
  PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28,
  TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

export function ibanValid(compact: string): boolean {
  const want = IBAN_LENGTH[compact.slice(0, 2)];
  if (want === undefined || compact.length !== want) return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let rem = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const v = code <= 57 ? code - 48 : code - 55; // A=10 … Z=35
    rem = v > 9 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
  }
  return rem === 1;
}

const iban: Spec = {
  detector: 'iban',
  mayContain: (t) => /[A-Z]{2}\d{2}/.test(t),
  pattern: /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])/g,
  confirm(m) {
    // The optional tail group can swallow a following word; retry without trailing groups.
    let s = m[0];
    for (;;) {
      const compact = s.replace(/ /g, '');
      if (ibanValid(compact)) return [m.index, m.index + s.length];
      const cut = s.lastIndexOf(' ');
      if (cut <= 4) return undefined;
      s = s.slice(0, cut);
    }
  },
};

// ---- JWT ------------------------------------------------------------------------------------

const jwt: Spec = {
  detector: 'jwt',
  mayContain: (t) => t.includes('eyJ'),
  pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,8192}\.eyJ[A-Za-z0-9_-]{4,65536}\.[A-Za-z0-9_-]{0,8192}/g,
  confirm(m) {
    const [head] = m[0].split('.');
    try {
      const decoded = Buffer.from(head!, 'base64url').toString('utf8');
      return decoded.trimStart().startsWith('{') ? whole(m) : undefined;
    } catch {
      return undefined;
    }
  },
};

// ---- API keys -------------------------------------------------------------------------------

const API_KEY_PREFIXES =
  /(?<![A-Za-z0-9])(?:(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}|glpat-[A-Za-z0-9_-]{20,64}|xox[abposr]-[A-Za-z0-9-]{10,255}|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,255}|AIza[0-9A-Za-z_-]{35}|sk-ant-[A-Za-z0-9_-]{20,255}|sk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,255}|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}|npm_[A-Za-z0-9]{36}|SK[0-9a-f]{32}|hf_[A-Za-z0-9]{34,64})(?![A-Za-z0-9])/g;
/** `api_key = "…"`, `"client_secret": "…"`, `token: …`: a key-like name, then the value (group 1). */
const API_KEY_ASSIGNMENT =
  /(?:api[_-]?key|apikey|access[_-]?key|secret(?:[_-]?key)?|client[_-]?secret|auth[_-]?token|access[_-]?token|token|password|passwd|pwd)["']?\s{0,4}[:=]\s{0,4}["']?([A-Za-z0-9_\-./+=~]{16,512})/gi;

function entropyBits(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

const apiKeyPrefixed: Spec = {
  detector: 'api_key',
  mayContain: (t) => t.length >= 20,
  pattern: API_KEY_PREFIXES,
  confirm: whole,
};

const apiKeyAssigned: Spec = {
  detector: 'api_key',
  mayContain: (t) => t.includes('=') || t.includes(':'),
  pattern: API_KEY_ASSIGNMENT,
  confirm(m) {
    const value = m[1]!;
    // Heuristic: a secret looks random (≥ 3 bits of entropy per character, not a plain word).
    if (entropyBits(value) < 3) return undefined;
    const start = m.index + m[0].length - value.length;
    return [start, start + value.length];
  },
};

// ---- private keys ---------------------------------------------------------------------------

const privateKey: Spec = {
  detector: 'private_key',
  mayContain: (t) => t.includes('PRIVATE KEY'),
  pattern: /-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----|[\s\S]*$)/g,
  confirm: whole,
};

const SPECS: Readonly<Record<Detector, readonly Spec[]>> = {
  card: [card],
  email: [email],
  phone: [phone],
  us_ssn: [usSsn],
  iban: [iban],
  jwt: [jwt],
  api_key: [apiKeyPrefixed, apiKeyAssigned],
  private_key: [privateKey],
};

/**
 * Order in which overlapping items are resolved: the more specific detector wins a tie (a JWT
 * is not re-read as an API key; an SSN-shaped phone number is an SSN).
 */
const PRIORITY: readonly Detector[] = ['private_key', 'jwt', 'api_key', 'iban', 'card', 'us_ssn', 'email', 'phone'];

/**
 * Every item of the enabled detectors in `text`, sorted by start, never overlapping (the earlier
 * item wins; at equal starts the longer; then the more specific detector).
 */
export function findItems(text: string, enabled: ReadonlySet<Detector>): Item[] {
  const found: Item[] = [];
  for (const detector of PRIORITY) {
    if (!enabled.has(detector)) continue;
    for (const spec of SPECS[detector]) {
      if (!spec.mayContain(text)) continue;
      const re = spec.pattern;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        const span = spec.confirm(m);
        if (span !== undefined) found.push({ detector, start: span[0], end: span[1] });
      }
    }
  }
  if (found.length <= 1) return found;
  found.sort((a, b) => a.start - b.start || b.end - b.start - (a.end - a.start) || PRIORITY.indexOf(a.detector) - PRIORITY.indexOf(b.detector));
  const out: Item[] = [];
  let end = -1;
  for (const it of found) {
    if (it.start < end) continue;
    out.push(it);
    end = it.end;
  }
  return out;
}
