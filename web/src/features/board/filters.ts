// The list view's filters, sort and their two faces: the page's query string (so a reload keeps
// them) and the API's query (GET /api/projects/{id}/tasks).
import { PRIORITIES, STATUSES, type TaskPriority, type TaskStatus } from '@/features/tasks/types';

export const SORT_FIELDS = ['position', 'due_date', 'priority', 'created_at', 'updated_at'] as const;
export type SortField = (typeof SORT_FIELDS)[number];
export const SORT_LABELS: Record<SortField, string> = {
  position: 'Board order',
  due_date: 'Due date',
  priority: 'Priority',
  created_at: 'Created',
  updated_at: 'Updated',
};

export type ListFilters = {
  q: string;
  status: TaskStatus | '';
  priority: TaskPriority | '';
  /** A user id, or '' for anyone. */
  assignee: string;
  label: string;
  due_before: string;
  due_after: string;
  sort: SortField;
  desc: boolean;
};

export const DEFAULT_FILTERS: ListFilters = {
  q: '',
  status: '',
  priority: '',
  assignee: '',
  label: '',
  due_before: '',
  due_after: '',
  sort: 'position',
  desc: false,
};

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads filters from the page's query string, dropping what is not valid. */
export function filtersFromSearch(params: URLSearchParams): ListFilters {
  const get = (k: string) => (params.get(k) ?? '').trim();
  const status = get('status');
  const priority = get('priority');
  const assignee = get('assignee');
  const sortRaw = get('sort');
  const desc = sortRaw.startsWith('-');
  const field = desc ? sortRaw.slice(1) : sortRaw;
  const sort = (SORT_FIELDS as readonly string[]).includes(field) ? (field as SortField) : 'position';
  return {
    q: (params.get('q') ?? '').slice(0, 200),
    status: (STATUSES as readonly string[]).includes(status) ? (status as TaskStatus) : '',
    priority: (PRIORITIES as readonly string[]).includes(priority) ? (priority as TaskPriority) : '',
    assignee: UUID.test(assignee) ? assignee : '',
    label: get('label').slice(0, 50),
    due_before: DAY.test(get('due_before')) ? get('due_before') : '',
    due_after: DAY.test(get('due_after')) ? get('due_after') : '',
    sort,
    desc: desc && (SORT_FIELDS as readonly string[]).includes(field),
  };
}

/** The `sort` parameter: the field, `-` in front for descending. */
export function sortParam(f: Pick<ListFilters, 'sort' | 'desc'>): string {
  return `${f.desc ? '-' : ''}${f.sort}`;
}

/** The page's query string for filters: defaults left out, so a bare URL means "no filters". */
export function filtersToSearch(f: ListFilters): URLSearchParams {
  const p = new URLSearchParams();
  if (f.q.trim()) p.set('q', f.q);
  if (f.status) p.set('status', f.status);
  if (f.priority) p.set('priority', f.priority);
  if (f.assignee) p.set('assignee', f.assignee);
  if (f.label.trim()) p.set('label', f.label.trim());
  if (f.due_before) p.set('due_before', f.due_before);
  if (f.due_after) p.set('due_after', f.due_after);
  if (f.sort !== 'position' || f.desc) p.set('sort', sortParam(f));
  return p;
}

/** The API's parameters (also the query key's filters): only what narrows or orders. */
export function apiParams(f: ListFilters): Record<string, string> {
  const out: Record<string, string> = { sort: sortParam(f) };
  if (f.q.trim()) out.q = f.q.trim();
  if (f.status) out.status = f.status;
  if (f.priority) out.priority = f.priority;
  if (f.assignee) out.assignee_id = f.assignee;
  if (f.label.trim()) out.label = f.label.trim();
  if (f.due_before) out.due_before = f.due_before;
  if (f.due_after) out.due_after = f.due_after;
  return out;
}

/** The URL of one page of tasks. */
export function tasksUrl(projectId: string, params: Record<string, string>, cursor: string | null, limit: number): string {
  const q = new URLSearchParams(params);
  q.set('limit', String(limit));
  if (cursor) q.set('cursor', cursor);
  return `/api/projects/${encodeURIComponent(projectId)}/tasks?${q.toString()}`;
}

/** Whether any filter narrows the list (for the empty state's wording). */
export function hasFilters(f: ListFilters): boolean {
  return Boolean(f.q.trim() || f.status || f.priority || f.assignee || f.label.trim() || f.due_before || f.due_after);
}
