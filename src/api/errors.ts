import type { ErrorBody } from './schemas.js';

/** Shared by the CLI and the portal to read the API's uniform error body. */
export function isApiError(value: unknown): value is ErrorBody {
  const e = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof e === 'object' && e !== null && typeof e.code === 'string' && typeof e.message === 'string';
}

export function errorMessage(value: unknown, fallback = 'unexpected response'): string {
  return isApiError(value) ? `${value.error.code}: ${value.error.message}` : fallback;
}
