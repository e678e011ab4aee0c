const PHASE_TONE: Record<string, string> = {
  running: 'ok',
  starting: 'busy',
  pending: 'busy',
  stopping: 'busy',
  stopped: 'idle',
  failed: 'bad',
  unknown: 'bad',
};

/** A workspace's phase as a coloured badge; "deleting" once it has been asked to go. */
export function PhaseBadge({ phase, desired }: { phase: string; desired?: string }) {
  const tone = desired === 'deleted' ? 'busy' : (PHASE_TONE[phase] ?? 'idle');
  const label = desired === 'deleted' ? 'deleting' : phase;
  return (
    <span className={`badge badge-${tone}`}>
      <span className="dot" aria-hidden="true" />
      {label}
    </span>
  );
}
