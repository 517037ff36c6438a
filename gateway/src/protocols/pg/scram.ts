/**
 * SCRAM-SHA-256 client (RFC 5802 with RFC 7677's hash), as PostgreSQL speaks it: no channel
 * binding (gs2 header "n,,"), and PostgreSQL ignores the SCRAM user name (it uses the startup
 * user), so callers pass '' there. Pure: strings in, strings out; node:crypto only.
 *
 * The server's signature is verified in constant time: a target that cannot prove it knows the
 * password verifier is treated as an impostor (authentication fails even after AuthenticationOk).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export class ScramError extends Error {}

/** Upper bound on the server-chosen iteration count: a hostile target must not burn our CPU. */
const MAX_ITERATIONS = 1_000_000;

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** RFC 5802 saslname: ',' and '=' escaped. */
const saslName = (s: string): string => s.replace(/=/g, '=3D').replace(/,/g, '=2C');

/**
 * SASLprep (RFC 4013), approximated: ASCII passwords are used as is; others are NFKC-normalised
 * with non-ASCII spaces mapped to ' ' and "commonly mapped to nothing" characters removed. Like
 * libpq, a password SASLprep would reject is used raw rather than refused.
 */
function saslPrep(password: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  return password
    .replace(/[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g, ' ')
    .replace(/[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g, '')
    .normalize('NFKC');
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new ScramError('malformed SCRAM message');
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

export class ScramClient {
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private expectedServerSignature: Buffer | undefined;
  private state: 'initial' | 'first-sent' | 'final-sent' | 'done' = 'initial';

  constructor(
    private password: string,
    user = '',
    nonce = randomBytes(18).toString('base64'),
  ) {
    this.clientNonce = nonce;
    this.clientFirstBare = `n=${saslName(user)},r=${nonce}`;
  }

  /** client-first-message (the SASLInitialResponse data). */
  clientFirst(): string {
    if (this.state !== 'initial') throw new ScramError('SCRAM exchange already started');
    this.state = 'first-sent';
    return `n,,${this.clientFirstBare}`;
  }

  /** Given server-first-message, produce client-final-message (the SASLResponse data). */
  clientFinal(serverFirst: string): string {
    if (this.state !== 'first-sent') throw new ScramError('unexpected SCRAM server-first-message');
    const attrs = attributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw new ScramError('SCRAM server nonce does not extend the client nonce');
    }
    if (!salt) throw new ScramError('SCRAM server-first-message has no salt');
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
      throw new ScramError(`SCRAM iteration count out of range (1..${MAX_ITERATIONS})`);
    }
    const salted = pbkdf2Sync(saslPrep(this.password), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    this.password = ''; // not needed any more; do not keep it around
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = sha256(clientKey);
    const withoutProof = `c=biws,r=${nonce}`; // biws = base64("n,,")
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    this.state = 'final-sent';
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Check server-final-message; throws ScramError unless the server proved knowledge of the verifier. */
  verifyServerFinal(serverFinal: string): void {
    if (this.state !== 'final-sent' || !this.expectedServerSignature) throw new ScramError('unexpected SCRAM server-final-message');
    const attrs = attributes(serverFinal);
    const error = attrs.get('e');
    if (error !== undefined) throw new ScramError(`SCRAM server error: ${error}`);
    const v = Buffer.from(attrs.get('v') ?? '', 'base64');
    if (v.length !== this.expectedServerSignature.length || !timingSafeEqual(v, this.expectedServerSignature)) {
      throw new ScramError('SCRAM server signature is invalid');
    }
    this.state = 'done';
  }
}

/** PostgreSQL's md5 password answer: "md5" + md5hex(md5hex(password ‖ user) ‖ salt). */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user, 'utf8').digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner, 'latin1'), salt])).digest('hex');
}
