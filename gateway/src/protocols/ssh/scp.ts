/**
 * SCP observer (the legacy rcp protocol, `scp -O`; OpenSSH ≥ 9.0 uses SFTP by default, which
 * sftp.ts observes). The exec command says the mode: `scp -t DIR` receives (upload to the target),
 * `scp -f PATH` sends (download). The sending side's control lines `C<mode> <size> <name>\n` name
 * each file and its size; `D…`/`E` enter and leave directories; `T…` carries times. Pure.
 */
import type { FileOp } from './sftp.ts';

/** 'to': `scp -t` (client uploads); 'from': `scp -f` (client downloads); undefined: not scp. */
export function scpMode(command: string): 'to' | 'from' | undefined {
  const m = /^\s*(?:\S*\/)?scp\s+(.*)$/.exec(command);
  if (!m) return undefined;
  const flags = m[1]!.split(/\s+/).filter((a) => a.startsWith('-')).join(' ');
  if (/-[a-zA-Z]*t/.test(flags)) return 'to';
  if (/-[a-zA-Z]*f/.test(flags)) return 'from';
  return undefined;
}

const MAX_LINE = 4096;

export class ScpObserver {
  private line = '';
  private skip = 0;
  private readonly dirs: string[] = [];
  private readonly base: string;
  private broken = false;

  constructor(
    private readonly mode: 'to' | 'from',
    command: string,
    private readonly onOp: (op: FileOp) => void,
  ) {
    const args = command.trim().split(/\s+/);
    this.base = args[args.length - 1] ?? '';
  }

  push(direction: 'c2s' | 's2c', chunk: Buffer): void {
    // Only the sender's stream carries control lines; the other side sends 1-byte acks.
    if (this.broken || direction !== (this.mode === 'to' ? 'c2s' : 's2c')) return;
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const nl = chunk.indexOf(0x0a, i);
      const end = nl < 0 ? chunk.length : nl;
      this.line += chunk.toString('utf8', i, end);
      i = end + (nl < 0 ? 0 : 1);
      if (this.line.length > MAX_LINE) {
        this.broken = true;
        return;
      }
      if (nl >= 0) this.control(this.line);
      if (nl >= 0) this.line = '';
    }
  }

  private control(line: string): void {
    const kind = line[0];
    const m = /^[CD]([0-7]{4}) (\d+) (.*)$/.exec(line);
    if (kind === 'C' && m) {
      const size = Number(m[2]);
      const path = this.mode === 'to' ? [this.base, ...this.dirs, m[3]].join('/') : [...this.dirs, m[3]].join('/') || this.base;
      this.onOp({ op: 'open', path, direction: this.mode === 'to' ? 'upload' : 'download', bytes: size });
      this.skip = size + 1; // the data, then the sender's \0
    } else if (kind === 'D' && m) {
      this.dirs.push(m[3]!);
    } else if (kind === 'E') {
      this.dirs.pop();
    } else if (kind === '\0') {
      // an ack byte folded into the line: ignore
    }
  }
}
