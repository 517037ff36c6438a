export * from './types.ts';
export * from './errors.ts';
export * from './config.ts';
export * from './verifier.ts';
export * from './dev-issuer.ts';
