// The task's description: rendered Markdown, and for owners and editors an "Edit description"
// button that opens the Markdown editor ("Write"/"Preview") with "Save description" and "Cancel".
// Ctrl/⌘+Enter saves, Escape cancels (an unchanged editor; a changed one asks to use Cancel).
import { useEffect, useRef, useState } from 'react';
import { Button } from '@/components/ui/Button';
import { DESCRIPTION_MAX } from '../logic';
import type { Task } from '../types';
import type { TaskSaver } from '../useTaskSaver';
import { Markdown, MarkdownEditor } from './Markdown';

export function DescriptionSection({
  task,
  canEdit,
  saver,
  names,
}: {
  task: Task;
  canEdit: boolean;
  saver: TaskSaver;
  names: Record<string, string | undefined>;
}) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const editRef = useRef<HTMLButtonElement>(null);
  const editorRef = useRef<HTMLTextAreaElement>(null);
  const wasEditing = useRef(false);
  const saved = task.description ?? '';

  useEffect(() => {
    if (editing) editorRef.current?.focus();
    else if (wasEditing.current) editRef.current?.focus();
    wasEditing.current = editing;
  }, [editing]);

  function start() {
    setText(saved);
    saver.clearFieldError('description');
    setEditing(true);
  }

  async function save() {
    setBusy(true);
    const result = await saver.save({ description: text });
    setBusy(false);
    if (result === 'saved' || result === 'unchanged') setEditing(false);
  }

  function cancel() {
    saver.clearFieldError('description');
    setEditing(false);
  }

  const count = text.length;
  return (
    <section className="space-y-2">
      <div className="flex items-center justify-between gap-2">
        <h3 className="text-sm font-semibold text-zinc-900">
          Description
        </h3>
        {canEdit && !editing && (
          <button
            ref={editRef}
            type="button"
            onClick={start}
            className="inline-flex min-h-8 items-center rounded-md px-2.5 text-sm font-medium text-indigo-700 hover:bg-indigo-50"
          >
            Edit description
          </button>
        )}
      </div>
      {editing ? (
        <div
          className="space-y-2"
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              void save();
            } else if (e.key === 'Escape') {
              // Escape leaves an unchanged editor; a changed one is kept (use Cancel to discard).
              e.preventDefault();
              e.stopPropagation();
              if (text === saved) cancel();
            }
          }}
        >
          <MarkdownEditor
            ref={editorRef}
            label="Description"
            value={text}
            onChange={setText}
            names={names}
            rows={10}
            error={saver.fieldErrors.description}
            hint={`Markdown: **bold**, _italic_, lists, [links](https://…), \`code\`. ${count.toLocaleString('en')} / ${DESCRIPTION_MAX.toLocaleString('en')} characters. Ctrl+Enter saves.`}
          />
          <div className="flex flex-wrap gap-2">
            <Button onClick={() => void save()} busy={busy}>
              Save description
            </Button>
            <Button variant="secondary" onClick={cancel} disabled={busy}>
              Cancel
            </Button>
          </div>
        </div>
      ) : saved.trim() === '' ? (
        <p className="text-sm text-zinc-600">{canEdit ? 'No description yet. Add one with Edit description.' : 'No description.'}</p>
      ) : (
        <Markdown source={saved} names={names} testId="task-description" />
      )}
    </section>
  );
}
