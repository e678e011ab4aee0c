/** One quota line: used of limit as a bar, with the numbers in words for screen readers. */
export function QuotaBar({ label, used, limit, usedText, limitText }: { label: string; used: number; limit: number; usedText: string; limitText: string }) {
  const pct = limit > 0 ? Math.min(100, (used / limit) * 100) : used > 0 ? 100 : 0;
  const tone = pct >= 100 ? 'full' : pct >= 80 ? 'high' : 'ok';
  return (
    <div className="quota">
      <div className="quota-label">
        <span>{label}</span>
        <span className="quota-figures">
          {usedText} of {limitText}
        </span>
      </div>
      <div
        className={`bar bar-${tone}`}
        role="meter"
        aria-label={`${label}: ${usedText} of ${limitText} used`}
        aria-valuemin={0}
        aria-valuemax={limit}
        aria-valuenow={Math.min(used, limit)}
      >
        <div className="bar-fill" style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}
