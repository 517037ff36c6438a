/**
 * Upstream authentication, as a pure core: the gateway logs in to the target with the target's
 * own credentials (SCRAM-SHA-256, md5, cleartext or trust). It never does I/O: `startup()` gives
 * the bytes to send first, `onMessage()` takes each server message and says what to send next or
 * how it ended. proxy.ts wires it to the socket.
 *
 * Nothing produced here for humans (outcome messages) contains the password or anything derived
 * from it; the target's own ErrorResponse text is passed along separately for logging.
 */
import { AuthCode } from './messages.ts';
import { md5Password, ScramClient, ScramError } from './scram.ts';
import { parseErrorFields, passwordMessage, saslInitialResponse, saslResponse, startupMessage } from './codec.ts';
import type { GatewayErrorCode } from '../../errors.ts';
import type { Secret } from '../../secrets.ts';

export type UpstreamAuthStep =
  /** Send these bytes to the target and wait for its next message. */
  | { kind: 'send'; data: Buffer }
  /** Nothing to send; wait for the next message (e.g. NoticeResponse during startup). */
  | { kind: 'wait' }
  /** AuthenticationOk received (and, for SCRAM, the server signature verified). */
  | { kind: 'ok'; method: UpstreamAuthMethod }
  | { kind: 'fail'; code: GatewayErrorCode; message: string; upstream?: { sqlstate?: string; message?: string } };

export type UpstreamAuthMethod = 'trust' | 'cleartext' | 'md5' | 'scram-sha-256';

export interface UpstreamAuthOptions {
  user: string;
  database: string;
  password: Secret | undefined;
  /** Client startup parameters to pass through (application_name, client_encoding, DateStyle…). */
  params: ReadonlyMap<string, string>;
  /**
   * Password methods the gateway will answer (trust needs no secret and is always accepted).
   * Default SCRAM only: a target (or an impostor at its address) that asks for cleartext or md5
   * would otherwise receive the password or a replayable hash of it.
   */
  allowed?: ReadonlySet<Exclude<UpstreamAuthMethod, 'trust'>>;
}

const DEFAULT_ALLOWED: ReadonlySet<Exclude<UpstreamAuthMethod, 'trust'>> = new Set(['scram-sha-256']);

export class UpstreamAuth {
  private password: Secret | undefined;
  private scram: ScramClient | undefined;
  private method: UpstreamAuthMethod = 'trust';
  private done = false;

  constructor(private readonly options: UpstreamAuthOptions) {
    this.password = options.password;
  }

  /** The StartupMessage for the target: its user/database first, then the client's parameters. */
  startup(): Buffer {
    const params = new Map<string, string>([
      ['user', this.options.user],
      ['database', this.options.database],
    ]);
    for (const [k, v] of this.options.params) if (!params.has(k)) params.set(k, v);
    return startupMessage(params);
  }

  private fail(code: GatewayErrorCode, message: string, upstream?: { sqlstate?: string; message?: string }): UpstreamAuthStep {
    this.done = true;
    this.password = undefined;
    return upstream ? { kind: 'fail', code, message, upstream } : { kind: 'fail', code, message };
  }

  private refuseMethod(method: Exclude<UpstreamAuthMethod, 'trust'>): UpstreamAuthStep | undefined {
    if ((this.options.allowed ?? DEFAULT_ALLOWED).has(method)) return undefined;
    return this.fail(
      'GW_ERR_UPSTREAM_AUTH',
      `target asks for ${method} authentication, which this target's auth_methods does not allow (the password is not sent)`,
    );
  }

  private needPassword(): string | undefined {
    return this.password?.reveal();
  }

  /** Handle one whole server message (type byte + length + body). */
  onMessage(type: number, message: Buffer): UpstreamAuthStep {
    if (this.done) return this.fail('GW_ERR_UPSTREAM_PROTOCOL', 'message after authentication ended');
    const letter = String.fromCharCode(type);
    if (letter === 'E') {
      const f = parseErrorFields(message);
      return this.fail('GW_ERR_UPSTREAM_AUTH', `target refused the login (SQLSTATE ${f.C ?? 'unknown'})`, { sqlstate: f.C, message: f.M });
    }
    if (letter === 'N' || letter === 'v') return { kind: 'wait' }; // notices; protocol negotiation (we ask 3.0)
    if (letter !== 'R' || message.length < 9) {
      return this.fail('GW_ERR_UPSTREAM_PROTOCOL', `unexpected message '${letter}' during target authentication`);
    }
    const code = message.readUInt32BE(5);
    try {
      switch (code) {
        case AuthCode.Ok:
          if (this.scram) return this.fail('GW_ERR_UPSTREAM_AUTH', 'target ended SCRAM without a server signature');
          this.done = true;
          this.password = undefined;
          return { kind: 'ok', method: this.method };
        case AuthCode.CleartextPassword: {
          const refused = this.refuseMethod('cleartext');
          if (refused) return refused;
          const pw = this.needPassword();
          if (pw === undefined) return this.fail('GW_ERR_UPSTREAM_AUTH', 'target asks for a password but none is configured');
          this.method = 'cleartext';
          return { kind: 'send', data: passwordMessage(pw) };
        }
        case AuthCode.MD5Password: {
          const refused = this.refuseMethod('md5');
          if (refused) return refused;
          const pw = this.needPassword();
          if (pw === undefined) return this.fail('GW_ERR_UPSTREAM_AUTH', 'target asks for a password but none is configured');
          if (message.length !== 13) return this.fail('GW_ERR_UPSTREAM_PROTOCOL', 'malformed AuthenticationMD5Password');
          this.method = 'md5';
          return { kind: 'send', data: passwordMessage(md5Password(this.options.user, pw, message.subarray(9, 13))) };
        }
        case AuthCode.SASL: {
          const mechanisms = message.toString('utf8', 9).split('\0').filter(Boolean);
          if (!mechanisms.includes('SCRAM-SHA-256')) {
            return this.fail('GW_ERR_UPSTREAM_AUTH', `target offers no supported SASL mechanism (${mechanisms.join(', ')})`);
          }
          const refused = this.refuseMethod('scram-sha-256');
          if (refused) return refused;
          const pw = this.needPassword();
          if (pw === undefined) return this.fail('GW_ERR_UPSTREAM_AUTH', 'target asks for a password but none is configured');
          this.method = 'scram-sha-256';
          this.scram = new ScramClient(pw);
          // SCRAM-SHA-256-PLUS (channel binding) is not offered by us; plain SCRAM over TLS is still
          // protected by the TLS session, and the server signature check below proves the target.
          return { kind: 'send', data: saslInitialResponse('SCRAM-SHA-256', Buffer.from(this.scram.clientFirst(), 'utf8')) };
        }
        case AuthCode.SASLContinue:
          if (!this.scram) return this.fail('GW_ERR_UPSTREAM_PROTOCOL', 'SASLContinue without a SASL exchange');
          return { kind: 'send', data: saslResponse(Buffer.from(this.scram.clientFinal(message.toString('utf8', 9)), 'utf8')) };
        case AuthCode.SASLFinal:
          if (!this.scram) return this.fail('GW_ERR_UPSTREAM_PROTOCOL', 'SASLFinal without a SASL exchange');
          this.scram.verifyServerFinal(message.toString('utf8', 9));
          this.scram = undefined;
          return { kind: 'wait' };
        default:
          return this.fail('GW_ERR_UPSTREAM_AUTH', `target asks for an unsupported authentication method (code ${code})`);
      }
    } catch (err) {
      if (err instanceof ScramError) return this.fail('GW_ERR_UPSTREAM_AUTH', err.message);
      throw err;
    }
  }
}
