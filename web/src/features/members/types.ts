// Types for project members and the people who can become one.
import type { ProjectRole } from '@/features/projects/types';
import type { PublicUser } from '@/features/users/api';

/** A member as `GET /api/projects/{id}/members` lists it. */
export type Member = {
  user_id: string;
  role: ProjectRole;
  created_at: string;
};

export type { PublicUser };

export type UserPage = { items: PublicUser[]; next_cursor: string | null };
