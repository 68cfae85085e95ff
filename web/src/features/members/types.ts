// Types for project members.
import type { ProjectRole } from '@/features/projects/types';

export type Member = {
  user_id: string;
  role: ProjectRole;
  name?: string;
  email?: string;
  created_at?: string;
};
