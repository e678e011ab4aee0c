/** Atrium's mark; the brand colour comes from `currentColor`. */
export function Logo() {
  return (
    <svg viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
      <rect width="32" height="32" rx="7" fill="currentColor" />
      <path d="M16 6 6 26h4.4l1.9-4h7.4l1.9 4H26L16 6Zm-2.1 12.6L16 14l2.1 4.6h-4.2Z" fill="var(--on-accent)" />
    </svg>
  );
}
