import type { JSX, TargetedKeyboardEvent } from 'preact';
import { useMemo } from 'preact/hooks';
import validatePoolSpec from '../../generated/pool-spec-validate.cjs';
import { type SpecCheck, validateSpecText } from '../spec-validate';

/** The pool spec typed so far, checked against the server's PoolSpec schema at every keystroke. */
export function useSpecCheck(text: string): SpecCheck {
  return useMemo(() => validateSpecText(text, validatePoolSpec), [text]);
}

/**
 * The YAML editor of a pool spec with its live errors, each starting with its field path. Ctrl+Enter (⌘+Enter)
 * submits the form, as Enter does in a one-line field.
 */
export function SpecEditor({ id, value, onInput, check }: { id: string; value: string; onInput(v: string): void; check: SpecCheck }): JSX.Element {
  const errorsId = `${id}-errors`;
  const onKeyDown = (e: TargetedKeyboardEvent<HTMLTextAreaElement>): void => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      e.currentTarget.form?.requestSubmit();
    }
  };
  return (
    <div class="spec-editor">
      <label for={id}>Pool spec (YAML)</label>
      <textarea
        id={id}
        value={value}
        rows={Math.min(30, Math.max(10, value.split('\n').length + 2))}
        spellcheck={false}
        autocapitalize="off"
        aria-invalid={check.problems.length > 0}
        aria-describedby={errorsId}
        onInput={(e) => onInput(e.currentTarget.value)}
        onKeyDown={onKeyDown}
      />
      <ul id={errorsId} aria-label="Spec errors" class="spec-errors">
        {check.problems.map((p) => (
          <li key={`${p.path}:${p.message}`}>
            <code>{p.path}</code>: {p.message}
          </li>
        ))}
      </ul>
      {check.problems.length === 0 && <p class="ok">The spec is valid (the server checks the rest: names, capacity).</p>}
    </div>
  );
}
