// Rendered Markdown (sanitised HTML from ../markdown, loaded on first use), and the Markdown
// editor with its "Write"/"Preview" toggle. Until the renderer has loaded, the source shows as
// plain text.
import { useEffect, useId, useMemo, useState, type ComponentPropsWithRef } from 'react';
import { PROSE } from '../prose';

type MarkdownModule = typeof import('../markdown');

let loaded: MarkdownModule | null = null;
let loading: Promise<MarkdownModule> | null = null;

/** Loads the renderer once (a separate chunk); later callers share the same promise. */
export function loadMarkdown(): Promise<MarkdownModule> {
  loading ??= import('../markdown').then((m) => (loaded = m));
  return loading;
}

function useMarkdownModule(): MarkdownModule | null {
  const [mod, setMod] = useState<MarkdownModule | null>(loaded);
  useEffect(() => {
    if (mod) return;
    let live = true;
    loadMarkdown().then(
      (m) => live && setMod(m),
      () => {
        loading = null; // try again next time
      },
    );
    return () => {
      live = false;
    };
  }, [mod]);
  return mod;
}

export function Markdown({
  source,
  names,
  className = '',
  testId,
}: {
  source: string;
  /** User names by id, for `<@id>` mentions. */
  names?: Record<string, string | undefined>;
  className?: string;
  testId?: string;
}) {
  const mod = useMarkdownModule();
  const namesKey = names ? JSON.stringify(names) : '';
  const html = useMemo(() => {
    if (!mod) return null;
    const map: Record<string, string | undefined> = namesKey ? JSON.parse(namesKey) : {};
    return mod.renderMarkdown(source, { mentionName: (id) => map[id] });
  }, [mod, source, namesKey]);

  if (html === null) {
    return (
      <div data-testid={testId} className={`${PROSE} whitespace-pre-wrap ${className}`}>
        {source}
      </div>
    );
  }
  return <div data-testid={testId} className={`${PROSE} ${className}`} dangerouslySetInnerHTML={{ __html: html }} />;
}

const CONTROL =
  'block w-full rounded-md border-0 bg-white px-3 py-2 text-sm text-zinc-900 shadow-sm ring-1 ring-inset ring-zinc-300 placeholder:text-zinc-500 focus-visible:outline-2 focus-visible:outline-offset-0 focus-visible:outline-indigo-600 aria-invalid:ring-red-500';

/**
 * A Markdown textarea with "Write"/"Preview" toggle buttons (aria-pressed). The preview shows
 * exactly what will be rendered.
 */
export function MarkdownEditor({
  label,
  value,
  onChange,
  error,
  hint,
  names,
  rows = 8,
  ...rest
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  error?: string | null;
  hint?: string;
  names?: Record<string, string | undefined>;
  rows?: number;
} & Omit<ComponentPropsWithRef<'textarea'>, 'value' | 'onChange'>) {
  const [preview, setPreview] = useState(false);
  const id = useId();
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const describedBy = [error ? errorId : null, hint ? hintId : null].filter(Boolean).join(' ') || undefined;
  useEffect(() => {
    void loadMarkdown();
  }, []);

  const tab = (on: boolean) =>
    `rounded-md px-3 py-1.5 text-sm font-medium ${on ? 'bg-white text-zinc-900 shadow-sm ring-1 ring-zinc-300' : 'text-zinc-600 hover:text-zinc-900'}`;

  return (
    <div className="space-y-1.5">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <label htmlFor={id} className="text-sm font-medium text-zinc-800">
          {label}
        </label>
        <div role="group" aria-label="Editor mode" className="inline-flex gap-1 rounded-lg bg-zinc-100 p-0.5">
          <button type="button" aria-pressed={!preview} className={tab(!preview)} onClick={() => setPreview(false)}>
            Write
          </button>
          <button type="button" aria-pressed={preview} className={tab(preview)} onClick={() => setPreview(true)}>
            Preview
          </button>
        </div>
      </div>
      {/* The textarea stays mounted (hidden) during preview so its label and undo history last. */}
      <textarea
        id={id}
        value={value}
        rows={rows}
        hidden={preview}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy}
        onChange={(e) => onChange(e.target.value)}
        className={`${CONTROL} min-h-32 resize-y font-mono`}
        {...rest}
      />
      {preview && (
        <div
          data-testid="markdown-preview"
          aria-label="Markdown preview"
          role="region"
          className="min-h-32 rounded-md bg-white px-3 py-2 ring-1 ring-zinc-300"
        >
          {value.trim() === '' ? <p className="text-sm text-zinc-500">Nothing to preview.</p> : <Markdown source={value} names={names} />}
        </div>
      )}
      {error && (
        <p id={errorId} className="text-sm text-red-700">
          {error}
        </p>
      )}
      {hint && (
        <p id={hintId} className="text-xs text-zinc-600">
          {hint}
        </p>
      )}
    </div>
  );
}
