import { Field, TextInput } from '../../components/ui.tsx';
import { plural } from '../../format.ts';

/** A search box over a list already loaded, with how many of it match, announced as it changes. */
export function FindBar({ label, placeholder, value, onChange, shown, total, noun }: { label: string; placeholder: string; value: string; onChange: (v: string) => void; shown: number; total: number; noun: string }) {
  return (
    <div className="admin-toolbar">
      <Field label={label}>
        {(p) => <TextInput {...p} type="search" value={value} onChange={(e) => onChange(e.target.value)} placeholder={placeholder} autoComplete="off" />}
      </Field>
      <p className="muted admin-count" aria-live="polite">
        {value.trim() ? `${shown} of ${plural(total, noun)}` : plural(total, noun)}
      </p>
    </div>
  );
}
