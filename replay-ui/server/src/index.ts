export { buildApi, type BuildApiOptions, type ApiRoute } from './app.ts';
export { parseApiConfig, ApiConfigSchema, type ApiConfig } from './config.ts';
export { API_ERRORS, ApiError, type ApiErrorCode, type Problem } from './errors.ts';
export { PUBLIC_ROUTES, ROLES, type Role } from './plugins/auth.ts';
