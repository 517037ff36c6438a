/**
 * Terminal replay view: an xterm.js screen driven by `TerminalPlayer`, controls (play/pause,
 * speed, a seek bar with the command markers on it, live), and the command list beside the screen
 * (click one to jump to it). `at_us` (from the URL's `t`, e.g. an alert's moment) opens the
 * recording paused at that instant. The view only renders what the player reports.
 */
import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent } from 'react';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { recordedTerminalDriver } from '../replay/terminal-driver.ts';
import { TerminalPlayer as Player, type Screen } from '../replay/terminal-player.ts';
import { PlayerState } from '../replay/player-state.ts';
import { mirrorXtermStyles } from '../replay/xterm-csp.ts';

const SPEEDS = [0.5, 1, 2, 4, 8];

/** µs → m:ss.t */
export function clock(us: number): string {
  const s = Math.max(0, us) / 1e6;
  const m = Math.floor(s / 60);
  return `${m}:${(s % 60).toFixed(1).padStart(4, '0')}`;
}

export function TerminalPlayer({ sessionId, at_us }: { sessionId: string; at_us?: number }) {
  const host = useRef<HTMLDivElement>(null);
  const [player, setPlayer] = useState<Player | null>(null);
  const [, setVersion] = useState(0);
  const driver = useMemo(() => recordedTerminalDriver(sessionId), [sessionId]);

  useEffect(() => {
    const el = host.current!;
    const unmirror = mirrorXtermStyles(el);
    const term = new Terminal({ cols: 80, rows: 24, scrollback: 0, disableStdin: true, cursorBlink: false, convertEol: false, fontSize: 13 });
    term.open(el);
    const screen: Screen = {
      reset: (cols, rows) => {
        term.reset();
        term.resize(cols, rows);
      },
      resize: (cols, rows) => term.resize(cols, rows),
      write: (d) => term.write(d),
    };
    let frame = 0;
    const p = new Player(driver, screen, sessionId, () => {
      // Re-render at most once per animation frame, however many events were written.
      if (!frame) frame = requestAnimationFrame(() => ((frame = 0), setVersion((v) => v + 1)));
    });
    setPlayer(p);
    void p.load(at_us);
    return () => {
      p.dispose();
      cancelAnimationFrame(frame);
      term.dispose();
      unmirror();
    };
    // at_us is read once: later changes are seeks (below), not a new player.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [driver, sessionId]);

  useEffect(() => {
    if (player?.info && at_us !== undefined) void player.seek(at_us);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [at_us]);

  const info = player?.info;
  const state = player?.state ?? PlayerState.Loading;
  const pos = player?.position_us ?? 0;
  const dur = player?.duration_us ?? 0;
  const seekTo = (us: number) => void player?.seek(us);
  const onBar = (e: MouseEvent<HTMLDivElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    seekTo(((e.clientX - r.left) / r.width) * dur);
  };
  const onKey = (e: KeyboardEvent<HTMLDivElement>) => {
    const step = e.shiftKey ? 30e6 : 5e6;
    if (e.key === 'ArrowRight') seekTo(pos + step);
    else if (e.key === 'ArrowLeft') seekTo(pos - step);
    else if (e.key === 'Home') seekTo(0);
    else if (e.key === 'End') seekTo(dur);
    else return;
    e.preventDefault();
  };
  const current = info ? info.markers.filter((m) => m.t_us <= pos).length - 1 : -1;

  return (
    <div className="terminal-replay" data-testid="terminal-player" data-state={state} data-position-us={Math.round(pos)} data-duration-us={dur} data-seeks={player?.seeks ?? 0}>
      <div className="term-main">
        <div className="term-screen" ref={host} data-testid="terminal-screen" />
        <div className="term-controls">
          {state === PlayerState.Playing ? (
            <button onClick={() => player?.pause()} aria-label="Pause">Pause</button>
          ) : (
            <button onClick={() => player?.play()} aria-label="Play" disabled={!info || state === PlayerState.Loading || state === PlayerState.Live || state === PlayerState.Failed}>
              Play
            </button>
          )}
          <select aria-label="Speed" value={player?.speed ?? 1} onChange={(e) => player?.setSpeed(Number(e.target.value))}>
            {SPEEDS.map((s) => <option key={s} value={s}>{s}×</option>)}
          </select>
          <span className="mono time" data-testid="player-time">{clock(pos)} / {clock(dur)}</span>
          <div
            className="seekbar"
            role="slider"
            tabIndex={0}
            aria-label="Seek"
            aria-valuemin={0}
            aria-valuemax={Math.round(dur / 1e6)}
            aria-valuenow={Math.round(pos / 1e6)}
            aria-valuetext={clock(pos)}
            data-testid="seekbar"
            onClick={onBar}
            onKeyDown={onKey}
          >
            <span className="played" style={{ width: `${dur ? Math.min(100, (pos / dur) * 100) : 0}%` }} />
            {info?.markers.map((m) => (
              <span key={`${m.seq}-${m.label}`} className={`tick${m.label.startsWith('blocked: ') ? ' blocked' : ''}`} style={{ left: `${dur ? (m.t_us / dur) * 100 : 0}%` }} title={m.label} />
            ))}
          </div>
          {info?.live || state === PlayerState.Live ? (
            <button className={state === PlayerState.Live ? 'live-on' : ''} onClick={() => player?.goLive()} disabled={state === PlayerState.Live}>
              {state === PlayerState.Live ? '● Live' : 'Go live'}
            </button>
          ) : null}
          <span className="muted small">{state}</span>
        </div>
        {player?.error && <p className="error" role="alert">{player.error}</p>}
      </div>
      <aside className="commands" aria-label="Commands">
        <h2>Commands</h2>
        {info && info.markers.length === 0 && <p className="muted">No command recorded.</p>}
        <ol data-testid="command-list">
          {info?.markers.map((m, i) => (
            <li key={`${m.seq}-${m.label}`} className={`${i === current ? 'current' : ''}${m.label.startsWith('blocked: ') ? ' blocked' : ''}`}>
              <button className="cmd" onClick={() => seekTo(m.t_us)} data-t-us={m.t_us}>
                <span className="mono muted">{clock(m.t_us)}</span> <code>{m.label}</code>
              </button>
            </li>
          ))}
        </ol>
      </aside>
    </div>
  );
}
