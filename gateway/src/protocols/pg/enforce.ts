/**
 * Inline policy enforcement (issue 3, "Block") for one PostgreSQL session. No I/O, like the other
 * protocol cores: the session hands it every client message (`fromClient` returns the bytes to
 * forward) and every target message (`fromServer` returns the bytes to deliver); blocks are reported
 * through `onBlocked`, which the session turns into `policy.blocked` events.
 *
 * Technique — substitution, not impersonation. A blocked statement is replaced, in the bytes sent
 * to the target, by one that makes the TARGET fail at the same protocol step:
 *
 *   Query 'Q'          → Query  `SELECT "vigil_policy_block_<nonce>"`   (fails at parse analysis, 42703)
 *   Parse 'P'          → Parse  (same name) of that statement, no parameter types (fails at Parse)
 *   Bind 'B'           → Bind   (same portal) of statement "vigil_policy_block_<nonce>" (26000 at Bind)
 *   FunctionCall 'F'   → Query  as above (both end with one ReadyForQuery)
 *
 * The target itself then produces the ErrorResponse, aborts the transaction block (ReadyForQuery
 * 'E'), rolls back the implicit transaction of a multi-statement query or of an extended batch, and
 * skips to Sync — exactly PostgreSQL's protocol state, because it IS PostgreSQL's. On the way back
 * the one ErrorResponse that carries the nonce (128 random bits, never shown to the client) is
 * replaced by the gateway's: SQLSTATE of the rule (42501 by default), message naming the rule.
 * Nothing of the client's text or of the policy's message ever reaches the target, so there is
 * nothing to escape and no client_encoding to get wrong. Errors the target raises first (25P02 in an
 * aborted transaction, an earlier error in the pipeline) pass through unchanged, as PostgreSQL
 * would send them for the original statement.
 *
 * A simple Query is refused WHOLE when any of its statements is blocked: none of it runs (PostgreSQL
 * runs it as one implicit transaction anyway; this also keeps side effects of statements before the
 * blocked one, e.g. an explicit COMMIT in the string, from happening).
 *
 * Pending substitutions are matched to target responses by counting boundaries: every Query, Sync
 * and FunctionCall the client sends is answered by exactly one ReadyForQuery. A substitution still
 * pending when its boundary's ReadyForQuery arrives was skipped by the target (an earlier error) and
 * is dropped. While one is pending the session parses target messages one by one (slow path).
 *
 * Prepared statements: Parse is evaluated; the allowed analysis is kept per statement name, and each
 * Bind re-evaluates it against the policy in force (hot reload, time windows). Close removes it.
 *
 * client_encoding: the analyser reads UTF-8. Pure-ASCII text reads the same in every encoding
 * PostgreSQL accepts; non-ASCII text is analysed only while the target reports client_encoding UTF8
 * and no statement that may change it is in flight — otherwise it is 'unparsable' (blocked on
 * governed targets), since e.g. SJIS can swallow a quote's backslash and the target would see other
 * statements than the gateway.
 */
import { randomBytes } from 'node:crypto';
import { evaluate, type CompiledPolicy, type Decision, type Identity } from '../../policy/index.ts';
import type { ApprovalAction } from '../../policy/schema.ts';
import { analyseBytes, type SqlAnalyser, type SqlAnalysis } from '../../sql/analyse.ts';
import type { PolicyBlocked } from '@vigil/schemas';
import { errorResponse } from './codec.ts';

/** What the gateway holds when a policy file is configured. */
export interface PolicyRuntime {
  /** The policy in force (hot-reloaded). */
  current(): CompiledPolicy;
  /** Process-wide cached analyser. */
  readonly analyser: SqlAnalyser;
}

/** What a block reports: the `policy.blocked` event's payload. */
export type BlockReport = Pick<
  PolicyBlocked,
  'rule_id' | 'action' | 'reason' | 'code' | 'sqlstate' | 'message' | 'protocol_kind' | 'statement_name' | 'statement' | 'features' | 'relations' | 'parse_error'
>;

/** A statement to hold until a human decides (issue 3, "Just-in-time approval"). */
export interface ApprovalAsk {
  readonly rule_id: string;
  readonly approval: Readonly<ApprovalAction>;
  readonly protocol_kind: 'simple' | 'extended';
  readonly statement_name?: string;
  /** The whole held message's text (every statement of a multi-statement query). */
  readonly statement: string;
  readonly features: readonly string[];
  readonly relations: readonly string[];
}

/** How a hold ended, as the client must see it. */
export type ApprovalAnswer = { readonly approved: true } | { readonly approved: false; readonly sqlstate: string; readonly message: string };

/** A client message the session must not forward until `forward` resolves (to the bytes to send). */
export interface Held {
  readonly forward: Promise<Buffer>;
}

export interface EnforcerOptions {
  runtime: PolicyRuntime;
  identity: Identity;
  target_id: string;
  onBlocked(report: BlockReport): void;
  /** Holds a statement for approval; absent (no approval service), `require_approval` is enforced as a block. */
  requestApproval?(ask: ApprovalAsk): Promise<ApprovalAnswer>;
  /** Masking's laundering check (mask-stream.ts writeVeto): a reason to block an otherwise allowed statement. */
  veto?(statement: SqlAnalysis): string | undefined;
}

const MSG = { Query: 0x51, Parse: 0x50, Bind: 0x42, Close: 0x43, Sync: 0x53, FunctionCall: 0x46 } as const;
const BE = { ReadyForQuery: 0x5a, ParameterStatus: 0x53, ErrorResponse: 0x45 } as const;
/** Statement names kept per session for Bind re-evaluation (oldest dropped beyond). */
const MAX_PREPARED = 10_000;
/** Statement text (JS bytes) kept per session across those names (oldest dropped beyond). */
const MAX_PREPARED_BYTES = 16 * 1024 * 1024;
/** Analyses kept per name (a re-Parse of a live name is refused by the target, so the old one may still be in force). */
const MAX_PER_NAME = 4;
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const NON_ASCII = /[^\x00-\x7f]/;

interface Pending {
  /** The nonce identifier's bytes, searched for in ErrorResponses. */
  readonly tag: Buffer;
  /** Index (0-based) of the Query/Sync/FunctionCall whose ReadyForQuery ends its chance. */
  readonly boundary: number;
  /** What the client receives instead of the target's error. */
  readonly error: Buffer;
}

type Kind = BlockReport['protocol_kind'];

export class PgEnforcer {
  private readonly prepared = new Map<string, SqlAnalysis[]>();
  private preparedBytes = 0;
  private pending: Pending[] = [];
  /** Query/Sync/FunctionCall messages forwarded. */
  private boundaries = 0;
  /** ReadyForQuery received after the startup one. */
  private readies = 0;
  private startupReady = false;
  private utf8 = false;
  /**
   * Boundary index of the last forwarded statement that may change client_encoding: until its
   * ReadyForQuery (readies > this) the encoding is unsettled. Counting never under-counts (a Sync
   * PostgreSQL ignores during COPY IN only makes this, and pending substitutions, end later).
   */
  private encodingUnsettledUntil = -1;
  /** standard_conforming_strings as the target last reported it (off until reported: conservative). */
  private scsOn = false;
  /** An extended-protocol batch is open (messages since the last Sync). */
  private extendedOpen = false;
  /** Statement names whose Parse was blocked (bounded like `prepared`). */
  private readonly blockedNames = new Set<string>();
  /** The target is in COPY FROM STDIN: PostgreSQL ignores Sync then, so it is not a boundary. */
  private copyIn = false;

  constructor(private readonly o: EnforcerOptions) {}

  /** True while a substituted statement's error may still come back: the session must pass target messages one by one. */
  get rewriting(): boolean {
    return this.pending.length > 0;
  }

  /**
   * A complete client message; returns the bytes to forward (the message itself unless blocked), or
   * a `Held` when it waits for approval: the session then forwards nothing more of this client until
   * the hold resolves, so the order of messages (and this enforcer's counting) is kept.
   */
  fromClient(type: number, message: Buffer): Buffer | Held {
    switch (type) {
      case MSG.Query: {
        const out = this.onQuery(message);
        this.boundaries++;
        return out;
      }
      case MSG.Parse: {
        const out = this.onParse(message);
        this.extendedOpen = true;
        return out;
      }
      case MSG.Bind: {
        const out = this.onBind(message);
        this.extendedOpen = true;
        return out;
      }
      case MSG.Close:
        if (message[5] === 0x53) {
          const name = cstring(message, 6);
          if (name !== undefined) this.forget(name.text);
        }
        return message;
      case MSG.Sync:
        if (!this.copyIn) this.boundaries++;
        this.extendedOpen = false;
        return message;
      case 0x63: // CopyDone
      case 0x66: // CopyFail
        this.copyIn = false;
        return message;
      case MSG.FunctionCall: {
        const out = this.onFunctionCall(message);
        this.boundaries++;
        return out;
      }
      default:
        return message;
    }
  }

  /** A complete target message; returns the bytes to deliver. */
  fromServer(type: number, message: Buffer): Buffer {
    if (type === BE.ReadyForQuery) {
      if (!this.startupReady) {
        this.startupReady = true;
        return message;
      }
      this.readies++;
      if (this.pending.length > 0) this.pending = this.pending.filter((p) => p.boundary >= this.readies);
      return message;
    }
    if (type === BE.ParameterStatus) {
      const name = cstring(message, 5);
      const value = name && cstring(message, name.end + 1)?.text;
      if (name?.text === 'client_encoding') this.utf8 = value?.toUpperCase() === 'UTF8';
      else if (name?.text === 'standard_conforming_strings') this.scsOn = value === 'on';
      return message;
    }
    if (type === 0x47) {
      this.copyIn = true; // CopyInResponse
      return message;
    }
    if (type === BE.ErrorResponse && this.pending.length > 0) {
      const i = this.pending.findIndex((p) => message.includes(p.tag));
      if (i >= 0) {
        const hit = this.pending[i]!;
        this.pending.splice(0, i + 1); // earlier ones were skipped by the target
        return hit.error;
      }
    }
    return message;
  }

  // ---- client messages ---------------------------------------------------------------------

  private onQuery(message: Buffer): Buffer | Held {
    if (this.ungoverned()) return message;
    const sql = cstring(message, 5);
    if (sql === undefined) return message; // malformed: the target refuses it (08P01)
    const all = this.analyse(message.subarray(5, sql.end), sql.text, false);
    const verdicts = all.map((a) => [a, this.verdict(a)] as const);
    let nonce: string | undefined;
    for (const [a, d] of verdicts) {
      if (d === undefined || this.approvable(d)) continue;
      // One error for the whole query (the first blocked statement's); an event for each blocked one.
      if (nonce === undefined) nonce = this.block(d, a, 'simple', undefined);
      else this.report(d, a, 'simple', undefined);
    }
    if (nonce !== undefined) return queryMessage(nonce);
    // Nothing blocked; a statement that needs approval holds the whole query (it runs as one
    // implicit transaction anyway). The first such statement's rule decides who may approve.
    const needs = verdicts.find(([, d]) => d !== undefined);
    if (needs !== undefined) {
      return this.hold(needs[1]!, all, sql.text, 'simple', undefined, message, (n) => queryMessage(n), () => this.noteSettings(all));
    }
    this.noteSettings(all);
    return message;
  }

  private onParse(message: Buffer): Buffer {
    const name = cstring(message, 5);
    const sql = name && cstring(message, name.end + 1);
    if (name === undefined || sql === undefined) return message;
    // Analysed even on an ungoverned target (cached by text): a prepared statement outlives the
    // Parse, and each Bind is evaluated against the policy in force then.
    const a = this.analyse(message.subarray(name.end + 1, sql.end), sql.text, true)[0]!;
    const d = this.ungoverned() ? undefined : this.verdict(a);
    // A statement that needs approval is prepared freely: each execution (Bind) is what waits.
    if (d !== undefined && !this.approvable(d)) {
      if (name.text === '') this.forget(''); // PostgreSQL drops the unnamed statement first
      this.blockedNames.add(name.text); // its Binds fail on the target (or are skipped): not reported again
      if (this.blockedNames.size > MAX_PREPARED) this.blockedNames.delete(this.blockedNames.values().next().value as string);
      return parseMessage(name.text, this.block(d, a, 'extended', name.text));
    }
    this.blockedNames.delete(name.text);
    this.remember(name.text, a);
    this.noteSettings([a]);
    return message;
  }

  private onBind(message: Buffer): Buffer | Held {
    const portal = cstring(message, 5);
    const stmt = portal && cstring(message, portal.end + 1);
    if (portal === undefined || stmt === undefined) return message;
    if (this.ungoverned()) return message;
    const kept = this.prepared.get(stmt.text);
    if (kept === undefined) {
      if (this.blockedNames.has(stmt.text)) return message;
      // A statement the gateway never analysed (prepared with SQL PREPARE, or forgotten on a Close
      // the target skipped, or evicted): judge it as unparsable rather than let it through.
      const a = unanalysable(`-- Bind of prepared statement "${stmt.text.slice(0, 64)}"`, 'the gateway has no analysis of this prepared statement (SQL PREPARE or an earlier Close)');
      const d = this.verdict(a);
      return d === undefined ? message : bindMessage(portal.text, this.block(d, a, 'extended', stmt.text));
    }
    let needs: [Decision, SqlAnalysis] | undefined;
    for (const a of kept) {
      const d = this.verdict(a);
      if (d === undefined) continue;
      if (!this.approvable(d)) return bindMessage(portal.text, this.block(d, a, 'extended', stmt.text));
      needs ??= [d, a];
    }
    if (needs !== undefined) {
      const [d, a] = needs;
      return this.hold(d, [a], a.text, 'extended', stmt.text, message, (n) => bindMessage(portal.text, n), () => {});
    }
    return message;
  }

  private onFunctionCall(message: Buffer): Buffer {
    if (this.ungoverned()) return message;
    const oid = message.length >= 9 ? message.readUInt32BE(5) : 0;
    const a = unanalysable(`-- fast-path FunctionCall of function OID ${oid}`, 'fast-path FunctionCall messages carry no SQL to analyse');
    const d = this.verdict(a);
    return d === undefined ? message : queryMessage(this.block(d, a, 'function_call', undefined));
  }

  // ---- decisions ---------------------------------------------------------------------------

  /** No rule applies to this target and the default allows: nothing to parse. */
  private ungoverned(): boolean {
    const policy = this.o.runtime.current();
    return !policy.forTarget(this.o.target_id).governed && policy.defaultDecision.action === 'allow';
  }

  private verdict(statement: SqlAnalysis): Decision | undefined {
    const d = evaluate(this.o.runtime.current(), { identity: this.o.identity, target_id: this.o.target_id, now: new Date(), statement });
    if (d.action === 'allow' && this.o.veto !== undefined && d.mask.length > 0) {
      // ---- masking hook: a write that would copy masked values somewhere unmasked.
      const why = this.o.veto(statement);
      if (why !== undefined) {
        const rule = d.mask.find((m) => m.columns.length > 0)?.rule_id ?? d.mask[0]!.rule_id;
        const message = `statement blocked: ${why} (masking, policy rule "${rule}")`;
        return { ...d, action: 'block', rule_id: rule, reason: 'rule', block: { sqlstate: '42501', message, code: 'GW_ERR_POLICY_BLOCKED' } };
      }
    }
    return d.action === 'allow' ? undefined : d;
  }

  private analyse(bytes: Buffer, text: string, one: boolean): readonly SqlAnalysis[] {
    let decoded: string;
    try {
      decoded = UTF8.decode(bytes);
    } catch {
      return analyseBytes(bytes).slice(0, 1); // invalid UTF-8: an 'unparsable' analysis (not cached)
    }
    // Text whose meaning depends on session settings — non-ASCII bytes (client_encoding) or a
    // backslash (standard_conforming_strings) — is analysed only on a quiet connection: every
    // earlier statement answered (so any change of those settings has been reported by the target,
    // however it was made: SET, set_config, UPDATE pg_settings, ROLLBACK of a SET, a function's SET
    // clause) and the reported values are the ones the analyser reads (UTF8, strings standard).
    const nonAscii = NON_ASCII.test(decoded);
    if (nonAscii || decoded.includes('\\')) {
      const quiet = this.readies >= this.boundaries && !this.extendedOpen && this.readies > this.encodingUnsettledUntil;
      const why = !quiet
        ? 'earlier statements may still change session settings'
        : nonAscii && !this.utf8
          ? 'client_encoding is not UTF8'
          : !this.scsOn
            ? 'standard_conforming_strings is off'
            : undefined;
      if (why !== undefined) {
        return [unanalysable(text, `statement text with ${nonAscii ? 'non-ASCII characters' : 'a backslash'} while ${why}: the gateway reads it only as the target would with UTF-8 and standard strings`)];
      }
    }
    const { analyser } = this.o.runtime;
    return one ? [analyser.analyseOne(decoded)] : analyser.analyse(decoded);
  }

  /** Statements that may change client_encoding: SET/RESET/DISCARD and set_config(). */
  private noteSettings(all: readonly SqlAnalysis[]): void {
    for (const a of all) {
      if (a.features.includes('session_setting') || a.kind === 'DiscardStmt' || a.functions.some((f) => f === 'set_config' || f === 'pg_catalog.set_config')) {
        this.encodingUnsettledUntil = this.boundaries;
      }
    }
  }

  private remember(name: string, a: SqlAnalysis): void {
    const kept = name === '' ? undefined : this.prepared.get(name);
    if (kept === undefined) {
      this.forget(name);
      this.prepared.set(name, [a]);
    } else if (!kept.includes(a)) {
      kept.push(a);
      if (kept.length > MAX_PER_NAME) this.preparedBytes -= kept.shift()!.text.length * 2;
    } else return;
    this.preparedBytes += a.text.length * 2;
    while (this.prepared.size > MAX_PREPARED || this.preparedBytes > MAX_PREPARED_BYTES) {
      const oldest = this.prepared.keys().next().value as string;
      if (oldest === name && this.prepared.size === 1) break;
      this.forget(oldest);
    }
  }

  private forget(name: string): void {
    const kept = this.prepared.get(name);
    if (kept === undefined) return;
    for (const a of kept) this.preparedBytes -= a.text.length * 2;
    this.prepared.delete(name);
  }

  /** A require_approval decision this session can hold (an approval service is configured). */
  private approvable(d: Decision): boolean {
    return d.action === 'require_approval' && d.approval !== undefined && this.o.requestApproval !== undefined;
  }

  /**
   * Hold `message` until a decision. Approved: the original goes to the target. Otherwise its
   * substitute goes (the same technique as a block), with the gateway's error for the client.
   * The boundary is the one the message would have had: nothing else of this client is counted
   * while it waits.
   */
  private hold(
    d: Decision,
    all: readonly SqlAnalysis[],
    text: string,
    kind: 'simple' | 'extended',
    statementName: string | undefined,
    message: Buffer,
    substitute: (nonce: string) => Buffer,
    onApproved: () => void,
  ): Held {
    const boundary = this.boundaries;
    const ask: ApprovalAsk = {
      rule_id: d.rule_id ?? '(default)',
      approval: d.approval!,
      protocol_kind: kind,
      ...(statementName !== undefined ? { statement_name: statementName } : {}),
      statement: text,
      features: [...new Set(all.flatMap((a) => a.features))],
      relations: [...new Set(all.flatMap((a) => a.relations))],
    };
    const forward = this.o.requestApproval!(ask).then((answer) => {
      if (answer.approved) {
        onApproved();
        return message;
      }
      const nonce = `vigil_policy_block_${randomBytes(16).toString('hex')}`;
      this.pending.push({ tag: Buffer.from(nonce, 'ascii'), boundary, error: errorResponse({ severity: 'ERROR', code: answer.sqlstate, message: answer.message }) });
      return substitute(nonce);
    });
    return { forward };
  }

  /** Registers a substitution and reports it; returns the nonce identifier to put in the substitute. */
  private block(d: Decision, a: SqlAnalysis, kind: Kind, statementName: string | undefined): string {
    const nonce = `vigil_policy_block_${randomBytes(16).toString('hex')}`;
    const { sqlstate, message } = blockText(d);
    const detail = a.error !== undefined ? `The statement could not be analysed: ${a.error}` : undefined;
    this.pending.push({
      tag: Buffer.from(nonce, 'ascii'),
      boundary: this.boundaries,
      error: errorResponse({ severity: 'ERROR', code: sqlstate, message, ...(detail ? { detail } : {}) }),
    });
    this.report(d, a, kind, statementName);
    return nonce;
  }

  private report(d: Decision, a: SqlAnalysis, kind: Kind, statementName: string | undefined): void {
    const { sqlstate, message, code } = blockText(d);
    this.o.onBlocked({
      rule_id: d.rule_id,
      action: d.action === 'require_approval' ? 'require_approval' : 'block',
      reason: d.reason,
      code,
      sqlstate,
      message,
      protocol_kind: kind,
      ...(statementName !== undefined ? { statement_name: statementName } : {}),
      statement: a.text,
      features: [...a.features],
      relations: [...a.relations],
      ...(a.error !== undefined ? { parse_error: a.error } : {}),
    });
  }
}

/** SQLSTATE, client message and error code of a non-allow decision. */
export function blockText(d: Decision): { sqlstate: string; message: string; code: string } {
  if (d.block !== undefined) return { sqlstate: d.block.sqlstate, message: d.block.message, code: d.block.code };
  // require_approval where the gateway cannot hold the statement (no approval service configured,
  // or a fast-path FunctionCall, which has no text an approver could judge): enforced as a block.
  return {
    sqlstate: '42501',
    message: `statement requires approval under policy rule "${d.rule_id}", and this gateway cannot hold it for approval: it was not run`,
    code: 'GW_ERR_POLICY_BLOCKED',
  };
}

function unanalysable(text: string, error: string): SqlAnalysis {
  return { text, kind: 'unparsable', features: ['unparsable'], relations: [], functions: [], error, code: 'GW_ERR_SQL_INVALID_ENCODING' };
}

/** NUL-terminated string at `off` (UTF-8, lossy: for names and matching only); `end` is the NUL's index. */
function cstring(message: Buffer, off: number): { text: string; end: number } | undefined {
  const end = message.indexOf(0, off);
  return end < 0 ? undefined : { text: message.toString('utf8', off, end), end };
}

// ---- substitutes (all ASCII: the nonce is hex) -------------------------------------------------

function typed(type: string, parts: string[], tail: number[]): Buffer {
  const strings = Buffer.from(parts.map((p) => `${p}\0`).join(''), 'utf8');
  const buf = Buffer.alloc(5 + strings.length + tail.length * 2);
  buf[0] = type.charCodeAt(0);
  buf.writeUInt32BE(buf.length - 1, 1);
  strings.copy(buf, 5);
  tail.forEach((v, i) => buf.writeInt16BE(v, 5 + strings.length + i * 2));
  return buf;
}

const failingSql = (nonce: string): string => `SELECT "${nonce}"`;
/** Query of the failing statement. */
const queryMessage = (nonce: string): Buffer => typed('Q', [failingSql(nonce)], []);
/** Parse under the client's statement name, no parameter types. */
const parseMessage = (name: string, nonce: string): Buffer => typed('P', [name, failingSql(nonce)], [0]);
/** Bind of a statement that does not exist: no formats, no parameters, no result formats. */
const bindMessage = (portal: string, nonce: string): Buffer => typed('B', [portal, nonce], [0, 0, 0]);
