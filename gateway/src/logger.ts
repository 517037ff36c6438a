/**
 * The logger the gateway needs: pino's `(obj, msg)` call shape, so a pino instance fits as is.
 * Rule of the house: never log frame bytes, SQL, tokens or passwords — log codes, ids, sizes.
 */
export type LogFn = (obj: Record<string, unknown>, msg: string) => void;

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

const noop: LogFn = () => {};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
