/**
 * Where to go after signing in or entering a workspace: only a path on the
 * same origin (never `//host` or a scheme), else `fallback`. Pure, so the
 * portal applies the same rule to its `/login?next=`.
 */
export function safeNext(next: string | undefined | null, fallback: string): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return fallback;
  return /^[\x21-\x7e]*$/.test(next) ? next : fallback;
}
