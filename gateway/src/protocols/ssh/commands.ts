/**
 * The command side of the policy model for SSH: turn a command line into the policy's
 * CommandContext (line + segments) and evaluate it. Pure.
 *
 * Segments: the line split at the shell's list and pipeline operators (`;`, `&&`, `||`, `|`, `&`,
 * newline) outside quotes, each trimmed and with runs of blanks collapsed, so that a rule
 * `commands: ["rm -rf *"]` also catches `cd / && rm  -rf x`. It is a lexical split, not a shell
 * parser: `$(…)`, backquotes, `eval`, variables and aliases are not expanded (docs/ssh.md says what
 * a line-level check cannot see).
 */
import { evaluate, type CommandContext, type CompiledPolicy, type Decision, type Identity } from '../../policy/index.ts';
import type { SshChannelKind } from '../../policy/schema.ts';

export function splitSegments(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === '\\' && quote === '"' && i + 1 < line.length) cur += c + line[++i];
      else {
        cur += c;
        if (c === quote) quote = undefined;
      }
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      cur += c;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += c + line[++i];
    } else if (c === ';' || c === '|' || c === '&' || c === '\n' || c === '\r') {
      out.push(cur);
      cur = '';
      // `&&`, `||`, `|&`, `;;` are one operator.
      if ((c === '&' || c === '|' || c === ';') && (line[i + 1] === c || line[i + 1] === '&')) i++;
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out.map(normalise).filter((s) => s.length > 0);
}

/** Trim and collapse blank runs (a double space must not dodge `rm -rf *`). */
export function normalise(s: string): string {
  return s.replace(/[ \t]+/g, ' ').trim();
}

export function commandContext(channel: SshChannelKind, line: string): CommandContext {
  return { channel, line: normalise(line), segments: splitSegments(line) };
}

export interface CommandVerdict {
  decision: Decision;
  /** What the user is shown when the command does not run. */
  message: string;
}

/**
 * The decision for one command. `message` is what the user is shown when it does not run; for
 * `require_approval` it is used only where the gateway cannot hold the command (no approval service
 * configured): channel.ts holds it otherwise (approvals/session-hold.ts).
 */
export function judgeCommand(policy: CompiledPolicy, identity: Identity, target_id: string, ctx: CommandContext, now = new Date()): CommandVerdict {
  const decision = evaluate(policy, { identity, target_id, now, command: ctx });
  let message = '';
  if (decision.action === 'block') {
    const m = decision.block?.message ?? 'blocked by policy';
    message = m.startsWith('statement blocked') ? m.replace(/^statement blocked/, 'command blocked') : `command blocked: ${m}`;
  } else if (decision.action === 'require_approval') {
    message = `command requires approval by policy rule "${decision.rule_id}", and this gateway cannot hold it for approval (no approval service): it is refused`;
  }
  return { decision, message };
}

/**
 * Channel-level decisions (forwarding, agent, X11, SFTP, SCP). `defaultDeny`: only an explicit
 * `allow` rule opens it (forwarding, agent and X11 are refused unless a rule allows them).
 */
export function judgeChannel(policy: CompiledPolicy | undefined, identity: Identity, target_id: string, ctx: CommandContext, defaultDeny: boolean): { allowed: boolean; rule_id: string | null; message: string } {
  if (!policy) return { allowed: !defaultDeny, rule_id: null, message: defaultDeny ? `${ctx.channel} is refused by default (no policy allows it)` : '' };
  const { decision, message } = judgeCommand(policy, identity, target_id, ctx);
  if (defaultDeny) {
    const allowed = decision.action === 'allow' && decision.reason === 'rule';
    return { allowed, rule_id: decision.rule_id, message: allowed ? '' : decision.action === 'allow' ? `${ctx.channel} is refused by default (no policy rule allows it)` : message };
  }
  return { allowed: decision.action === 'allow', rule_id: decision.rule_id, message };
}
