// Types for /api/projects.

export type ProjectRole = 'owner' | 'editor' | 'viewer' | (string & {});

export type Project = {
  id: string;
  name: string;
  description: string | null;
  owner_id: string;
  role: ProjectRole;
  created_at: string;
  updated_at: string;
};

export type Page<T> = { items: T[]; next_cursor: string | null };

export type NewProject = { name: string; description: string };
