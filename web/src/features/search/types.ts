// Types for GET /api/search.

export type SearchKind = 'project' | 'task' | 'comment';

/** One result: `title` is the project's name or the task's title (for a comment, its task's). */
export type SearchResult = {
  kind: SearchKind;
  id: string;
  project_id: string;
  task_id?: string | null;
  title: string;
  /** Plain text around the first match (no markup); may start or end with "…". */
  snippet: string;
  rank: number;
};

export type SearchPage = { items: SearchResult[]; next_cursor: string | null };
