// Types for tasks, comments and attachments (docs/API.md "Projects and tasks").

export type TaskStatus = 'todo' | 'in_progress' | 'done';
export type TaskPriority = 'low' | 'medium' | 'high' | 'urgent';

export const STATUSES: readonly TaskStatus[] = ['todo', 'in_progress', 'done'];
export const STATUS_LABELS: Record<TaskStatus, string> = { todo: 'To do', in_progress: 'In progress', done: 'Done' };
export const PRIORITIES: readonly TaskPriority[] = ['low', 'medium', 'high', 'urgent'];
export const PRIORITY_LABELS: Record<TaskPriority, string> = {
  low: 'Low',
  medium: 'Medium',
  high: 'High',
  urgent: 'Urgent',
};

export type Task = {
  id: string;
  project_id: string;
  title: string;
  description: string | null;
  status: TaskStatus;
  priority: TaskPriority;
  assignee_id: string | null;
  due_date: string | null;
  labels: string[];
  position: string;
  created_by: string;
  created_at: string;
  updated_at: string;
};

export type Comment = {
  id: string;
  task_id: string;
  author_id: string;
  body: string;
  created_at: string;
  updated_at: string;
};

/** Body of PATCH /api/tasks/{id}: only the fields that change (`null` clears assignee and due date). */
export type TaskPatch = Partial<{
  title: string;
  description: string;
  status: TaskStatus;
  priority: TaskPriority;
  assignee_id: string | null;
  due_date: string | null;
  labels: string[];
}>;

/** A task as last read, with the `ETag` that a PATCH or DELETE sends back as `If-Match`. */
export type TaskWithEtag = { task: Task; etag: string | null };

/** Where an attachment is in its malware scan (only `available` files download). */
export type AttachmentStatus = 'quarantined' | 'available' | 'rejected';
export type AttachmentScan = 'none' | 'pending' | 'clean' | 'infected';

export type Attachment = {
  id: string;
  task_id: string;
  project_id: string;
  filename: string;
  content_type: string;
  /** Bytes. */
  size: number;
  uploaded_by: string;
  created_at: string;
  status: AttachmentStatus;
  scan: AttachmentScan;
};

