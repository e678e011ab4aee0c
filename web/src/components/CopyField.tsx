import { useRef, useState } from 'react';
import { Button } from './Button.tsx';

/**
 * A value to copy (a command, a token): selectable text and a copy button that says when it worked.
 * The button's name always holds the word it shows ("Copy …", then "Copied …"), and a status
 * announces the copy to screen readers; when the browser refuses the clipboard, the text is
 * selected instead, ready for the keyboard's copy.
 */
export function CopyField({ value, label }: { value: string; label: string }) {
  const [copied, setCopied] = useState(false);
  const code = useRef<HTMLElement>(null);
  const word = copied ? 'Copied' : 'Copy';
  return (
    <div className="copy-field">
      <code tabIndex={0} ref={code}>
        {value}
      </code>
      <Button
        variant="ghost"
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(value);
          } catch {
            // no clipboard here (not a secure context, or refused): select it for Ctrl+C
            if (code.current) window.getSelection()?.selectAllChildren(code.current);
            return;
          }
          setCopied(true);
          setTimeout(() => setCopied(false), 1500);
        }}
        aria-label={`${word} ${label}`}
      >
        {word}
      </Button>
      <span className="sr-only" role="status">
        {copied ? `Copied ${label}` : ''}
      </span>
    </div>
  );
}
