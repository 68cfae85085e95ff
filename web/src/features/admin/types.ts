// Shapes of the admin endpoints (from the server's OpenAPI document).

export type Role = 'admin' | 'user' | 'guest';
export type UserStatus = 'active' | 'inactive' | 'deleted';

export type AdminUser = {
  id: string;
  email: string;
  name: string;
  role: Role;
  status: UserStatus;
  email_verified: boolean;
  mfa_enabled: boolean;
  created_at: string;
  updated_at: string;
};

export type Page<T> = { items: T[]; next_cursor?: string | null };

export type AuditEntry = {
  seq: number;
  event_id: string;
  action: string;
  actor_id?: string | null;
  aggregate_id: string;
  occurred_at: string;
  data: unknown;
  prev_hash: string;
  hash: string;
};

export type BrokenEntry = { seq: number; event_id?: string | null; reason: string };
export type BrokenArchive = { object_key: string; first_seq: number; last_seq: number; reason: string };

export type AuditVerification = {
  ok: boolean;
  checked: number;
  first_bad_id?: string | null;
  first_broken?: BrokenEntry | null;
  archives_checked?: number;
  broken_archive?: BrokenArchive | null;
};

export type StatsPeriod = 'day' | 'week';

export type StatsCounts = {
  signups: number;
  active_users: number;
  projects_created: number;
  tasks_created: number;
  tasks_completed: number;
};

export type StatsBucket = StatsCounts & { start: string };

export type AdminStats = {
  period: StatsPeriod;
  from: string;
  to: string;
  buckets: StatsBucket[];
  totals: StatsCounts;
};
