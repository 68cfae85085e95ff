// Every TanStack Query key of the app in one place, so a live event or a mutation can
// invalidate exactly what it changed (e.g. `keys.tasks(projectId)` covers every list view).
export const keys = {
  me: ['me'] as const,
  preferences: (userId: string) => ['preferences', userId] as const,
  sessions: ['sessions'] as const,
  projects: ['projects'] as const,
  project: (id: string) => ['project', id] as const,
  members: (projectId: string) => ['members', projectId] as const,
  /** Every task query of a project (board and list, whatever the filters). */
  tasks: (projectId: string) => ['tasks', projectId] as const,
  taskList: (projectId: string, filters: Record<string, string>) => ['tasks', projectId, filters] as const,
  task: (taskId: string) => ['task', taskId] as const,
  comments: (taskId: string) => ['comments', taskId] as const,
  attachments: (taskId: string) => ['attachments', taskId] as const,
  user: (id: string) => ['user', id] as const,
  users: (filters: Record<string, string>) => ['users', filters] as const,
  search: (q: string) => ['search', q] as const,
  auditLog: (filters: Record<string, string>) => ['audit-log', filters] as const,
  stats: (period: string) => ['stats', period] as const,
};
