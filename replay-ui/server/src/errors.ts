/**
 * Stable error codes of the API. Every error response is `application/problem+json` (RFC 9457)
 * carrying one of these codes; clients retry only when `retriable` is set. `detail` is written for
 * the caller and never contains tokens, SQL or store internals.
 */

export interface ApiErrorInfo {
  status: number;
  title: string;
  retriable: boolean;
  description: string;
}

export const API_ERRORS = {
  API_ERR_CONFIG: { status: 500, title: 'Invalid configuration', retriable: false, description: 'The `api` configuration section is invalid (every problem is listed); raised at start, never over HTTP.' },
  API_ERR_UNAUTHENTICATED: { status: 401, title: 'Authentication required', retriable: false, description: 'The request has no `Authorization: Bearer <token>` header (or it is not a Bearer credential).' },
  API_ERR_INVALID_TOKEN: { status: 401, title: 'Invalid token', retriable: false, description: 'The bearer token was refused by the identity verifier; `detail` names the ID_ERR_* reason (expired, wrong audience, bad signature, …).' },
  API_ERR_FORBIDDEN: { status: 403, title: 'Forbidden', retriable: false, description: "The token is valid but none of its roles is allowed on this route." },
  API_ERR_IDENTITY_UNAVAILABLE: { status: 503, title: 'Identity provider unavailable', retriable: true, description: "The issuer's JWKS could not be fetched, so no token can be verified right now." },
  API_ERR_BAD_REQUEST: { status: 400, title: 'Bad request', retriable: false, description: 'A parameter is missing, unknown or malformed (schema validation).' },
  API_ERR_BAD_CURSOR: { status: 400, title: 'Bad cursor', retriable: false, description: 'The pagination `cursor` was not produced by this API for this listing.' },
  API_ERR_NOT_FOUND: { status: 404, title: 'Not found', retriable: false, description: 'No such route, or no such session.' },
  API_ERR_CONFLICT: { status: 409, title: 'Conflict', retriable: false, description: 'The request conflicts with the current state: an approval already decided or expired, or a second vote by the same approver; `detail` names the GW_ERR_APPROVAL_* reason.' },
  API_ERR_APPROVALS_UNAVAILABLE: { status: 503, title: 'Approvals unavailable', retriable: true, description: 'This API process has no event log configured, or the decision could not be written to it.' },
  API_ERR_AUDIT_UNAVAILABLE: { status: 503, title: 'Access audit unavailable', retriable: true, description: 'The event log cannot take the `recording.viewed` event, so the recording is not served (fail closed).' },
  API_ERR_STORE_UNAVAILABLE: { status: 503, title: 'Store unavailable', retriable: true, description: 'The analytics store (ClickHouse / chDB) could not be reached or timed out.' },
  API_ERR_INTERNAL: { status: 500, title: 'Internal error', retriable: false, description: 'An unexpected server error (a bug); details are in the server log, not in the response.' },
} as const satisfies Record<string, ApiErrorInfo>;

export type ApiErrorCode = keyof typeof API_ERRORS;

export class ApiError extends Error {
  readonly status: number;
  readonly retriable: boolean;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApiError';
    this.status = API_ERRORS[code].status;
    this.retriable = API_ERRORS[code].retriable;
  }
}

export function apiError(code: ApiErrorCode, message: string, cause?: unknown): ApiError {
  return new ApiError(code, message, cause === undefined ? undefined : { cause });
}

/** RFC 9457 body. `type` is a stable URN per code, so clients can branch without parsing text. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ApiErrorCode;
}

export function problemOf(code: ApiErrorCode, detail: string): Problem {
  const info = API_ERRORS[code];
  return { type: `urn:vigil:problem:${code}`, title: info.title, status: info.status, detail, code };
}
