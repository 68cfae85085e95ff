// Types for project members and the people who can become one.
import type { ProjectRole } from '@/features/projects/types';

/** A member as `GET /api/projects/{id}/members` lists it. */
export type Member = {
  user_id: string;
  role: ProjectRole;
  created_at: string;
};

/** A user as others see them (`{id, name}`); admins and the user themself get more. */
export type PublicUser = { id: string; name: string; email?: string };

export type UserPage = { items: PublicUser[]; next_cursor: string | null };
