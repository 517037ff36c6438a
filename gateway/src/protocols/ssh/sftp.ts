/**
 * SFTP observer (draft-ietf-secsh-filexfer-02, the version OpenSSH speaks): reads the packets of an
 * allowed `sftp` subsystem channel in both directions and reports file operations — names, bytes
 * read and written, directions — without changing a byte. Pure: `push(direction, chunk)` in,
 * `onOp` out.
 *
 * Framing is the house loop: uint32 length, reassembly with subarray, a hard maximum checked
 * before buffering. A packet larger than MAX_PACKET (OpenSSH's own limit is 256 KiB) stops the
 * observer for that direction (the bytes are still relayed and recorded as frames).
 */
export interface FileOp {
  op: string;
  path: string;
  target_path?: string;
  direction: 'upload' | 'download' | 'none';
  bytes: number;
  status?: number;
}

/** Packet types (filexfer-02 §3). */
export const SSH_FXP = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10,
  OPENDIR: 11, READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18, READLINK: 19,
  SYMLINK: 20, STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105, EXTENDED: 200, EXTENDED_REPLY: 201,
} as const;
const SSH_FXF_READ = 0x01;
const SSH_FXF_WRITE = 0x02;
const MAX_PACKET = 4 * 1024 * 1024;
const MAX_TRACKED = 4096;

/** Metadata operations reported when their STATUS arrives. */
const PATH_OPS: Record<number, string> = {
  [SSH_FXP.REMOVE]: 'remove', [SSH_FXP.MKDIR]: 'mkdir', [SSH_FXP.RMDIR]: 'rmdir', [SSH_FXP.SETSTAT]: 'setstat',
};

interface OpenFile {
  path: string;
  flags: number;
  read: number;
  written: number;
}

class Reader {
  private pos = 0;
  constructor(private readonly b: Buffer) {}
  u8(): number {
    return this.b[this.pos++]!;
  }
  u32(): number {
    const v = this.b.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  skip(n: number): void {
    this.pos += n;
  }
  bytes(): Buffer {
    const n = this.u32();
    if (this.pos + n > this.b.length) throw new RangeError('string past packet end');
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  str(): string {
    return this.bytes().toString('utf8');
  }
}

class Framer {
  private parts: Buffer[] = [];
  private have = 0;
  broken = false;
  constructor(private readonly onPacket: (p: Buffer) => void) {}
  push(chunk: Buffer): void {
    if (this.broken) return;
    this.parts.push(chunk);
    this.have += chunk.length;
    for (;;) {
      if (this.have < 4) return;
      let buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
      const len = buf.readUInt32BE(0);
      if (len > MAX_PACKET || len === 0) {
        this.broken = true;
        this.parts = [];
        return;
      }
      if (this.have < 4 + len) {
        this.parts = [buf];
        return;
      }
      this.onPacket(buf.subarray(4, 4 + len));
      buf = buf.subarray(4 + len);
      this.parts = buf.length > 0 ? [buf] : [];
      this.have = buf.length;
    }
  }
}

export class SftpObserver {
  private readonly c2s = new Framer((p) => this.request(p));
  private readonly s2c = new Framer((p) => this.reply(p));
  /** request id → what it asked, until its reply. */
  private readonly pending = new Map<number, { type: number; path?: string; target?: string; flags?: number; handle?: string }>();
  private readonly handles = new Map<string, OpenFile>();

  constructor(private readonly onOp: (op: FileOp) => void) {}

  push(direction: 'c2s' | 's2c', chunk: Buffer): void {
    try {
      (direction === 'c2s' ? this.c2s : this.s2c).push(chunk);
    } catch {
      // A malformed packet: stop observing that direction, never the relay.
      (direction === 'c2s' ? this.c2s : this.s2c).broken = true;
    }
  }

  private track(id: number, v: { type: number; path?: string; target?: string; flags?: number; handle?: string }): void {
    if (this.pending.size >= MAX_TRACKED) this.pending.delete(this.pending.keys().next().value!);
    this.pending.set(id, v);
  }

  private request(p: Buffer): void {
    const r = new Reader(p);
    const type = r.u8();
    if (type === SSH_FXP.INIT) return;
    const id = r.u32();
    switch (type) {
      case SSH_FXP.OPEN: {
        const path = r.str();
        const flags = r.u32();
        return this.track(id, { type, path, flags });
      }
      case SSH_FXP.READ:
        return this.track(id, { type, handle: r.bytes().toString('hex') });
      case SSH_FXP.WRITE: {
        const f = this.handles.get(r.bytes().toString('hex'));
        r.skip(8);
        const len = r.u32();
        if (f) f.written += len;
        return;
      }
      case SSH_FXP.CLOSE:
        return this.track(id, { type, handle: r.bytes().toString('hex') });
      case SSH_FXP.RENAME:
      case SSH_FXP.SYMLINK: {
        const path = r.str();
        const target = r.str();
        return this.track(id, { type, path, target });
      }
      default:
        if (type in PATH_OPS) return this.track(id, { type, path: r.str() });
    }
  }

  private reply(p: Buffer): void {
    const r = new Reader(p);
    const type = r.u8();
    if (type === SSH_FXP.VERSION) return;
    const id = r.u32();
    const req = this.pending.get(id);
    if (!req) return;
    this.pending.delete(id);
    if (type === SSH_FXP.HANDLE && req.type === SSH_FXP.OPEN) {
      if (this.handles.size >= MAX_TRACKED) return;
      this.handles.set(r.bytes().toString('hex'), { path: req.path!, flags: req.flags!, read: 0, written: 0 });
    } else if (type === SSH_FXP.DATA && req.type === SSH_FXP.READ) {
      const f = this.handles.get(req.handle!);
      if (f) f.read += r.u32();
    } else if (type === SSH_FXP.STATUS) {
      const status = r.u32();
      if (req.type === SSH_FXP.CLOSE) {
        const f = this.handles.get(req.handle!);
        if (f) {
          this.handles.delete(req.handle!);
          this.emitFile(f, status);
        }
      } else if (req.type === SSH_FXP.OPEN) {
        this.onOp({ op: 'open', path: req.path!, direction: openDirection(req.flags!), bytes: 0, status });
      } else if (req.type === SSH_FXP.RENAME || req.type === SSH_FXP.SYMLINK) {
        this.onOp({ op: req.type === SSH_FXP.RENAME ? 'rename' : 'symlink', path: req.path!, target_path: req.target!, direction: 'none', bytes: 0, status });
      } else if (req.type in PATH_OPS) {
        this.onOp({ op: PATH_OPS[req.type]!, path: req.path!, direction: 'none', bytes: 0, status });
      }
    }
  }

  private emitFile(f: OpenFile, status?: number): void {
    const direction = f.written > 0 || (f.flags & SSH_FXF_WRITE && f.read === 0) ? 'upload' : 'download';
    this.onOp({ op: 'open', path: f.path, direction, bytes: direction === 'upload' ? f.written : f.read, ...(status !== undefined ? { status } : {}) });
  }

  /** Channel ended: files still open are reported with what was seen. */
  finish(): void {
    for (const f of this.handles.values()) this.emitFile(f);
    this.handles.clear();
  }
}

function openDirection(flags: number): 'upload' | 'download' {
  return flags & SSH_FXF_WRITE ? 'upload' : flags & SSH_FXF_READ ? 'download' : 'download';
}
