/**
 * Every error leaves as `application/problem+json` with an API_ERR_* code: our own ApiErrors,
 * fastify's validation and framework errors, store failures, and anything unexpected (which is
 * logged, and answered without internals).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ClickHouseError } from '@clickhouse/client';
import { definePlugin } from '../plugin.ts';
import { ApiError, problemOf, type ApiErrorCode } from '../errors.ts';

/** ClickHouse error codes that mean "try again later", not "this query is wrong". */
const TRANSIENT_CLICKHOUSE_CODES = new Set([
  '159', // TIMEOUT_EXCEEDED
  '160', // TOO_SLOW
  '202', // TOO_MANY_SIMULTANEOUS_QUERIES
  '203', // NO_FREE_CONNECTION
  '209', // SOCKET_TIMEOUT
  '210', // NETWORK_ERROR
  '241', // MEMORY_LIMIT_EXCEEDED
  '242', // TABLE_IS_READ_ONLY
  '394', // QUERY_WAS_CANCELLED
]);

/**
 * `instanceof` alone is not enough: chDB's connection builds its errors from the CommonJS copy of
 * client-common while this module may get the ESM one, so recognise the shape as well.
 */
function isClickHouseError(err: unknown): err is ClickHouseError {
  return err instanceof ClickHouseError || (err instanceof Error && err.constructor.name === 'ClickHouseError' && typeof (err as { code?: unknown }).code === 'string');
}

/** Classify a failure of a store call: transport/overload → retriable 503; anything else is a bug. */
export function storeFailure(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (isClickHouseError(err) && !TRANSIENT_CLICKHOUSE_CODES.has(err.code)) {
    return new ApiError('API_ERR_INTERNAL', 'store query failed', { cause: err });
  }
  return new ApiError('API_ERR_STORE_UNAVAILABLE', 'the analytics store is unavailable; retry later', { cause: err });
}

export function sendProblem(reply: FastifyReply, code: ApiErrorCode, detail: string): FastifyReply {
  const body = problemOf(code, detail);
  if (body.status === 401) reply.header('www-authenticate', `Bearer realm="vigil"${code === 'API_ERR_INVALID_TOKEN' ? ', error="invalid_token"' : ''}`);
  if (body.status === 503) reply.header('retry-after', '5');
  return reply.code(body.status).type('application/problem+json').send(body);
}

function handleError(this: unknown, error: FastifyError | ApiError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof ApiError) {
    if (error.status >= 500) request.log.error({ code: error.code, cause: (error.cause as Error | undefined)?.message }, error.message);
    return sendProblem(reply, error.code, error.status >= 500 && error.code === 'API_ERR_INTERNAL' ? 'internal error; see the server log' : error.message);
  }
  const fe = error as FastifyError;
  if (fe.validation) {
    return sendProblem(reply, 'API_ERR_BAD_REQUEST', `${fe.validationContext ?? 'request'}${fe.validation[0]?.instancePath ?? ''} ${fe.validation[0]?.message ?? 'is invalid'}`.trim());
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // Framework refusals (bad content type, body too large, bad JSON): their messages are fixed texts.
    return sendProblem(reply, fe.statusCode === 404 ? 'API_ERR_NOT_FOUND' : 'API_ERR_BAD_REQUEST', fe.message);
  }
  request.log.error({ err: { type: error.name, message: error.message, stack: error.stack } }, 'unhandled API error');
  return sendProblem(reply, 'API_ERR_INTERNAL', 'internal error; see the server log');
}

export const problemsPlugin = definePlugin(
  async (app) => {
    app.setErrorHandler(handleError);
    app.setNotFoundHandler((request, reply) => {
      sendProblem(reply, 'API_ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
    });
  },
  { name: 'vigil-problems', global: true },
);
