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

/** A project with the `ETag` it was read with (for `If-Match` on writes). */
export type VersionedProject = { project: Project; etag: string | null };

export type Page<T> = { items: T[]; next_cursor: string | null };

export type NewProject = { name: string; description: string };

/** Body of `PATCH /api/projects/{id}`: absent fields stay as they are. */
export type ProjectChanges = { name?: string; description?: string };
